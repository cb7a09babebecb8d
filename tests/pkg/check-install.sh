#!/bin/sh
# SPDX-License-Identifier: MIT
# `meson install` into a temp DESTDIR, then checks what a package needs:
# binaries, the three man pages (no groff warnings, no words run together,
# no reference to a missing page), units whose ExecStart is the installed
# nvxd (systemd-analyze verify, with the DESTDIR's bindir mounted over the
# real one in a private mount namespace so its existence check looks at
# what was installed), the sysusers.d entry, the system node's settings and
# the completions. Usage: check-install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
dest=$(mktemp -d /tmp/nvx-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

meson install -C "$build" --no-rebuild --destdir "$dest" --quiet >/dev/null
opt() { meson introspect "$build" --buildoptions | python3 -c \
    "import json,sys; print([o['value'] for o in json.load(sys.stdin) if o['name']=='$1'][0])"; }
prefix=$(opt prefix)
bindir=$(opt bindir)
case $bindir in /*) ;; *) bindir=$prefix/$bindir ;; esac
mandir=$(opt mandir)
case $mandir in /*) ;; *) mandir=$prefix/$mandir ;; esac
sysconfdir=$(opt sysconfdir)
case $sysconfdir in /*) ;; *) sysconfdir=$prefix/$sysconfdir ;; esac
unitdir=$(opt systemdunitdir)
[ -n "$unitdir" ] || unitdir=$prefix/lib/systemd

for f in "$bindir/nvx" "$bindir/nvxd" "$mandir/man1/nvx.1" "$mandir/man8/nvxd.8" \
    "$mandir/man5/nvxd.conf.5" "$unitdir/system/nvxd.service" "$unitdir/user/nvxd.service" \
    "$prefix/lib/sysusers.d/nvx.conf" "$sysconfdir/nvx/nvxd.conf"; do
    [ -f "$dest$f" ] || fail "meson install did not install $f"
done
echo "installed: binaries, man pages, units, sysusers.d, nvxd.conf"

# Man pages.
python3 "$src/tests/pkg/check-man.py" "$dest$mandir"/man*/* || fail "man page lint"
if command -v groff >/dev/null 2>&1; then
    for p in "$dest$mandir"/man*/*; do
        w=$(groff -man -ww -z "$p" 2>&1)
        [ -z "$w" ] || fail "groff warns on $p: $w"
    done
    echo "man pages: no groff warnings"
fi

# Units: paths from meson.
grep -qx "ExecStart=$bindir/nvxd --store %S/nvx --config $sysconfdir/nvx/nvxd.conf" \
    "$dest$unitdir/system/nvxd.service" || fail "system unit's ExecStart is not $bindir/nvxd"
grep -q "^ExecStart=$bindir/nvxd " "$dest$unitdir/user/nvxd.service" ||
    fail "user unit's ExecStart is not $bindir/nvxd"
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "skipping systemd-analyze verify: systemd-analyze is absent (apt-get install systemd)"
elif [ "$(id -u)" != 0 ] || ! unshare -m true 2>/dev/null; then
    echo "skipping systemd-analyze verify: needs root and mount namespaces (unshare -m)"
else
    run=$(mktemp -d /tmp/nvx-xdg-XXXXXX)
    # shellcheck disable=SC2016
    out=$(unshare -m sh -c '
        mount -t tmpfs nvx-bindir "$1" && cp "$2$1/nvxd" "$2$1/nvx" "$1/" || exit 90
        export MANPATH="$2$3" XDG_RUNTIME_DIR="$4"
        systemd-analyze verify "$2$5/system/nvxd.service" &&
            systemd-analyze --user verify "$2$5/user/nvxd.service"
    ' sh "$bindir" "$dest" "$mandir" "$run" "$unitdir" 2>&1) || {
        rm -rf "$run"
        fail "systemd-analyze verify: $out"
    }
    rm -rf "$run"
    [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
    echo "systemd-analyze verify: system and user units pass"
fi
if command -v systemd-sysusers >/dev/null 2>&1; then
    root=$(mktemp -d /tmp/nvx-sysusers-XXXXXX)
    out=$(systemd-sysusers --dry-run --root="$root" "$dest$prefix/lib/sysusers.d/nvx.conf" 2>&1)
    rm -rf "$root"
    echo "$out" | grep -q "Creating user 'nvx'" || fail "sysusers.d/nvx.conf: $out"
    echo "sysusers.d: creates user and group nvx"
fi
grep -qx "control-group = nvx" "$dest$sysconfdir/nvx/nvxd.conf" ||
    fail "the system node's nvxd.conf does not give group nvx the control socket"
echo "all install checks passed"
