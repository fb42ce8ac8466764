#!/usr/bin/env bash
# Build the Debian package runnerd_<version>_<arch>.deb with debhelper from
# contrib/debian/ (the top level stays as it is: the packaging is copied to
# debian/ in a scratch copy of the tree). Writes the package into build/ and
# prints its path as the last line. Needs: debhelper, dpkg-dev, the build
# dependencies of contrib/debian/control (scripts/install-deps.sh has them all).
#   scripts/build-deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
version=$(sed -n 's/^project(runnerd VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
[ -n "$version" ] || { echo "build-deb: no version in CMakeLists.txt" >&2; exit 1; }
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
work=$(mktemp -d "${TMPDIR:-/tmp}/runnerd-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree=$work/runnerd-$version
mkdir -p "$tree"
# The files git knows (tracked, and new ones not ignored): no build trees.
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | tar -c --null -T - -f - | tar -x -C "$tree" -f -
cp -r contrib/debian "$tree/debian"
# The Debian changelog follows the project's version; the project's own
# history is CHANGELOG.md (installed with the docs).
date=$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
cat >"$tree/debian/changelog" <<EOT
runnerd ($version) unstable; urgency=medium

  * Upstream release $version; see /usr/share/doc/runnerd/CHANGELOG.md.gz.

 -- runnerd maintainers <runnerd@example.com>  $date
EOT
(cd "$tree" && dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
    tail -50 "$work/build.log" >&2
    echo "build-deb: dpkg-buildpackage failed" >&2
    exit 1
}
deb=runnerd_${version}_${arch}.deb
mkdir -p "$src/build"
mv "$work/$deb" "$src/build/$deb"
echo "$src/build/$deb"
