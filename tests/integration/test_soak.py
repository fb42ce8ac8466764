#!/usr/bin/env python3
"""The fault-injection soak (tests/soak/soak.py) for 2 minutes at seed 1: every
invariant must hold (it prints a summary table and exits non-zero otherwise)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOAK = os.path.join(HERE, "..", "soak", "soak.py")

if __name__ == "__main__":
    minutes = os.environ.get("RD_SOAK_MINUTES", "2")
    seed = os.environ.get("RD_SOAK_SEED", "1")
    # RD_TEST_NAME: scripts/valgrind.sh names runnerd's memcheck logs after this test.
    env = dict(os.environ, RD_TEST_NAME=os.environ.get("RD_TEST_NAME", "test_soak"))
    sys.exit(subprocess.call([sys.executable, SOAK, "--minutes", minutes, "--seed", seed], env=env))
