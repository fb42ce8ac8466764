#!/usr/bin/env python3
"""The fleet-mode soak (tests/soak/soak_fleet.py) for 1.5 minutes at seed 1: three hosts,
faults at the broker and the hosts; every invariant must hold."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOAK = os.path.join(HERE, "..", "soak", "soak_fleet.py")

if __name__ == "__main__":
    minutes = os.environ.get("RD_SOAK_MINUTES", "1.5")
    seed = os.environ.get("RD_SOAK_SEED", "1")
    env = dict(os.environ, RD_TEST_NAME=os.environ.get("RD_TEST_NAME", "test_soak_fleet"))
    sys.exit(subprocess.call([sys.executable, SOAK, "--minutes", minutes, "--seed", seed],
                             env=env))
