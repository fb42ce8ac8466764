#!/usr/bin/env bash
# Fails when a C file under src/ or include/ differs from the project's
# .clang-format (Debian 12's clang-format 14). Fix with:
#   clang-format -i $(git ls-files 'src/*.[ch]' 'include/*.h')
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find src include -name '*.[ch]' | sort)
clang-format --dry-run --Werror "${files[@]}"
echo "check-format: ${#files[@]} files match .clang-format"
