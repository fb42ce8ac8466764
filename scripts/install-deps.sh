#!/usr/bin/env bash
# Install everything runnerd needs to build, test and run its demo, from Debian's
# archive. Idempotent: does nothing when every package is already there.
set -euo pipefail

pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev libjson-c-dev libyaml-dev
      libssl-dev libhttp-parser-dev libcmocka-dev python3 python3-cryptography openssl curl
      docker.io busybox-static qemu-user-static binfmt-support clang libclang-rt-14-dev valgrind
      procps iproute2 ca-certificates clang-format prometheus
      debhelper dpkg-dev lintian groff man-db git systemd)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    echo "install-deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-deps: all packages present"
