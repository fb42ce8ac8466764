#!/usr/bin/env bash
# Fails when a C file under src/, include/ or tests/ differs from the project's
# .clang-format (Debian 12's clang-format 14). Fix with:
#   clang-format -i $(git ls-files 'src/*.[ch]' 'include/*.h' 'tests/*.[ch]')
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find src include tests -name '*.[ch]' | sort)
clang-format --dry-run --Werror "${files[@]}"
echo "check-format: ${#files[@]} files match .clang-format"
