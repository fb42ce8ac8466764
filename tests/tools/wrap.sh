#!/bin/sh
# ctest runs every unit test binary through this: as is, or under the command
# prefix in $RD_TEST_WRAPPER when that is set (scripts/valgrind.sh sets it to
# valgrind memcheck). "{test}" in the prefix becomes the binary's name, so
# that each test's memcheck logs can be told apart. The integration tests wrap
# their binaries the same way in Python (tests/integration/rdtest.py, wrap()).
# The prefix is split on blanks: no spaces in its paths.
[ -n "${RD_TEST_WRAPPER:-}" ] || exec "$@"
name=$(basename "$1")
# shellcheck disable=SC2046 # the split is the point
exec $(printf '%s\n' "$RD_TEST_WRAPPER" | sed "s|{test}|$name|g") "$@"
