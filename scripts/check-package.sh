#!/usr/bin/env bash
# The install and packaging checks of the CI (DESIGN.md section 6), after
# scripts/build.sh build:
#  1. cmake --install into a scratch prefix and the layout checks of
#     tests/integration/test_install.py (prefix in the unit, man pages without
#     groff warnings, systemd-analyze security);
#  2. scripts/build-deb.sh, then lintian (no error: any E: line fails) and
#     dpkg-deb -c / -I: the binaries, the unit, the sysusers file, the man pages,
#     /etc/runnerd/runnerd.yaml as a conffile, shlibs-derived Depends and the
#     Recommends.
set -euo pipefail
cd "$(dirname "$0")/.."
CI=${CI:-true} RUNNERD_SRC=$PWD RUNNERD_BUILD=$PWD/build python3 tests/integration/test_install.py

deb=$(scripts/build-deb.sh | tail -1)
echo "check-package: built $deb"
lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges' || true)
[ -z "$lint" ] || printf '%s\n' "$lint"
if printf '%s\n' "$lint" | grep -q '^E: '; then
    echo "check-package: FAILED: lintian reports errors" >&2
    exit 1
fi
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
fail=0
for f in ./usr/bin/runnerd ./usr/bin/runnerctl ./lib/systemd/system/runnerd.service \
         ./usr/lib/sysusers.d/runnerd.conf ./etc/runnerd/runnerd.yaml \
         ./usr/share/man/man8/runnerd.8.gz ./usr/share/man/man5/runnerd.yaml.5.gz \
         ./usr/share/man/man1/runnerctl.1.gz ./usr/share/doc/runnerd/copyright \
         ./usr/share/doc/runnerd/install.md.gz; do
    printf '%s\n' "$contents" | grep -qx -- "$f" || { echo "check-package: $f missing from $deb" >&2; fail=1; }
done
ctl=$(mktemp -d "${TMPDIR:-/tmp}/runnerd-debctl.XXXXXX")
trap 'rm -rf "$ctl"' EXIT
dpkg-deb -e "$deb" "$ctl"
grep -qx /etc/runnerd/runnerd.yaml "$ctl/conffiles" || { echo "check-package: runnerd.yaml is not a conffile" >&2; fail=1; }
dep=$(sed -n 's/^Depends: //p' "$ctl/control")
for lib in libc6 libcurl4 libuv1 libjson-c5 libyaml-0-2 libssl3 libhttp-parser2.9; do
    case ", $dep" in *", $lib"*) ;; *) echo "check-package: Depends lacks $lib: $dep" >&2; fail=1 ;; esac
done
grep -qx 'Recommends: docker.io | podman' "$ctl/control" || { echo "check-package: Recommends" >&2; fail=1; }
grep -q 'systemd-sysusers' "$ctl/postinst" || { echo "check-package: postinst creates no user" >&2; fail=1; }
if grep -q 'deb-systemd-invoke start\|deb-systemd-helper enable' "$ctl/postinst" &&
    ! grep -q 'was-enabled' "$ctl/postinst"; then
    echo "check-package: postinst enables or starts the service before it is configured" >&2; fail=1
fi
grep -q 'deb-systemd-invoke.*start' "$ctl/postinst" && { echo "check-package: postinst starts the service" >&2; fail=1; }
[ $fail -eq 0 ] || exit 1
echo "check-package: $deb: lintian clean, layout, conffile, Depends, Recommends, user, not started"
