#!/usr/bin/env bash
# Build runnerd's test runner images from Debian's busybox-static, offline
# (no registry): runnerd-test-runner:x64 from the host's /bin/busybox and
# runnerd-test-runner:arm64 from the arm64 busybox-static package, both
# FROM scratch with contrib/runner-image/{Dockerfile,entrypoint.sh}. Makes sure
# qemu-user-static's aarch64 binfmt handler is registered with the F flag, so
# that arm64 containers run on an x64 host. Idempotent: an image whose label
# runnerd.test-image matches the hash of its sources is kept. Then checks that
# each image runs and reports its architecture.
#   DOCKER=/usr/bin/docker scripts/build-runner-images.sh   (another CLI)
#   scripts/build-runner-images.sh --force                   (rebuild)
set -euo pipefail
cd "$(dirname "$0")/.."

DOCKER=${DOCKER:-docker}
REPO=runnerd-test-runner
force=0
[ "${1:-}" = "--force" ] && force=1
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

die() { echo "build-runner-images: ERROR: $*" >&2; exit 1; }
say() { echo "build-runner-images: $*"; }

hash=$(cat contrib/runner-image/Dockerfile contrib/runner-image/entrypoint.sh | sha256sum | cut -c1-16)

# --- binfmt: qemu-aarch64 with the F (fix binary) flag --------------------
# F makes the kernel open the interpreter at registration time, so it works
# inside containers whose rootfs has no /usr/libexec/qemu-binfmt.
binfmt_register_from_conf() {
    local conf=/usr/lib/binfmt.d/qemu-aarch64.conf line flags
    [ -r "$conf" ] || die "$conf not found: install qemu-user-static (scripts/install-deps.sh)"
    line=$(grep -v '^[#;]' "$conf" | grep -m1 '^:qemu-aarch64:')
    flags=${line##*:}
    case "$flags" in *F*) ;; *) line="${line}F" ;; esac
    printf '%s\n' "$line" | $SUDO tee /proc/sys/fs/binfmt_misc/register >/dev/null \
        || die "could not register qemu-aarch64 in binfmt_misc (privileges?)"
}

ensure_binfmt() {
    local dir=/proc/sys/fs/binfmt_misc entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
    [ -x /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -x /usr/bin/qemu-aarch64-static ] \
        || die "qemu-user-static is not installed (scripts/install-deps.sh)"
    if [ ! -e "$dir/register" ]; then
        $SUDO mount -t binfmt_misc binfmt_misc "$dir" || die "cannot mount binfmt_misc on $dir"
    fi
    if [ ! -e "$entry" ] && command -v update-binfmts >/dev/null 2>&1; then
        $SUDO update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    fi
    [ -e "$entry" ] || binfmt_register_from_conf
    if ! grep -q '^flags:.*F' "$entry"; then
        say "re-registering qemu-aarch64 with the F flag"
        echo -1 | $SUDO tee "$entry" >/dev/null
        binfmt_register_from_conf
    fi
    grep -q '^enabled' "$entry" || echo 1 | $SUDO tee "$entry" >/dev/null
    grep -q '^flags:.*F' "$entry" || die "qemu-aarch64 binfmt handler still lacks the F flag"
}

# --- busybox binaries ------------------------------------------------------
is_static() { ! ldd "$1" >/dev/null 2>&1; }

host_busybox() {
    [ -x /bin/busybox ] || die "/bin/busybox missing: install busybox-static"
    is_static /bin/busybox || die "/bin/busybox is dynamically linked: install busybox-static"
    echo /bin/busybox
}

# Prints the path of an arm64 static busybox extracted from Debian's package
# (and nothing else on stdout: the caller takes it with $(...)).
arm64_busybox() {
    local dir=$1
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        say "dpkg --add-architecture arm64" >&2
        $SUDO dpkg --add-architecture arm64 >&2
    fi
    if ! apt-cache show busybox-static:arm64 >/dev/null 2>&1; then
        say "apt-get update (arm64 package lists)" >&2
        $SUDO apt-get update -qq >&2
    fi
    # (apt warns when _apt cannot write the folder; the download works anyway)
    if ! (cd "$dir" && apt-get download -q busybox-static:arm64 >"$dir/apt.log" 2>&1); then
        cat "$dir/apt.log" >&2
        die "apt-get download busybox-static:arm64 failed"
    fi
    dpkg-deb -x "$dir"/busybox-static_*_arm64.deb "$dir/deb"
    [ -f "$dir/deb/bin/busybox" ] || die "no bin/busybox in the arm64 busybox-static package"
    echo "$dir/deb/bin/busybox"
}

# --- images ----------------------------------------------------------------
image_current() {
    [ "$force" -eq 0 ] &&
    [ "$($DOCKER image inspect -f '{{index .Config.Labels "runnerd.test-image"}}' "$1" 2>/dev/null)" = "$hash" ]
}

build_image() { # TAG PLATFORM BUSYBOX WORKDIR
    local tag=$1 platform=$2 bb=$3 ctx=$4/ctx-${1##*:} a
    mkdir -p "$ctx/rootfs/bin" "$ctx/rootfs/tmp"
    cp "$bb" "$ctx/rootfs/bin/busybox"
    chmod 755 "$ctx/rootfs/bin/busybox"
    chmod 1777 "$ctx/rootfs/tmp"
    # applet links (same busybox version and configuration on both arches)
    for a in $(/bin/busybox --list); do
        [ "$a" = busybox ] || ln -sf busybox "$ctx/rootfs/bin/$a"
    done
    cp contrib/runner-image/Dockerfile contrib/runner-image/entrypoint.sh "$ctx/"
    chmod 755 "$ctx/entrypoint.sh"
    say "building $tag ($platform)"
    # The legacy builder honours --platform for FROM scratch (BuildKit and
    # `docker import` would label an arm64 rootfs amd64); it warns that it is
    # deprecated, so its output is shown only when it fails.
    if ! DOCKER_BUILDKIT=0 $DOCKER build -q --platform "$platform" --label "runnerd.test-image=$hash" \
            -t "$tag" "$ctx" >"$4/build.log" 2>&1; then
        cat "$4/build.log" >&2
        die "docker build of $tag failed"
    fi
}

check_image() { # TAG PLATFORM EXPECTED_ARCH
    local got
    got=$($DOCKER run --rm --pull never --platform "$2" --network none "$1" uname -m 2>&1) \
        || die "$1 does not run: $got"
    [ "$got" = "$3" ] || die "$1 reports '$got', expected $3"
    say "$1 ok (uname -m: $got)"
}

$DOCKER info >/dev/null 2>&1 || die "dockerd does not answer (scripts/start-dockerd.sh)"
ensure_binfmt
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if image_current "$REPO:x64"; then
    say "$REPO:x64 is up to date"
else
    build_image "$REPO:x64" linux/amd64 "$(host_busybox)" "$work"
fi
if image_current "$REPO:arm64"; then
    say "$REPO:arm64 is up to date"
else
    mkdir -p "$work/arm64"
    bb=$(arm64_busybox "$work/arm64")
    build_image "$REPO:arm64" linux/arm64 "$bb" "$work"
fi
check_image "$REPO:x64" linux/amd64 x86_64
check_image "$REPO:arm64" linux/arm64 aarch64
