#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds the .deb from a copy of the source (dpkg-buildpackage -us -uc -b,
# tests skipped: DEB_BUILD_OPTIONS=nocheck), requires lintian to report no
# error or warning, installs it with dpkg -i, smoke-tests the installed
# programs (nvxd started by hand on a temp store with --http off and the
# loopback, nvx add, nvx run of a small real model, nvx rm) and removes the
# package again (dpkg --purge; the nvx user and group too when this run
# created them). Installing needs root: CI runs as root on a throwaway
# machine. A machine that already has the nvx package is left alone.
# Usage: check-deb.sh SOURCE_DIR MODELS_DIR
set -eu
src=$(cd "$1" && pwd)
models=$2
say() { printf 'check-deb: %s\n' "$*" >&2; }
fail() {
    say "FAIL: $*"
    exit 1
}
[ "$(id -u)" = 0 ] || fail "needs root to install the package (run it in CI or as root)"
# The installed package is machine-wide: a second check-deb.sh (the test
# command run twice at once) waits for the first to install, check and
# purge, instead of finding nvx installed or dpkg locked.
exec 9>/run/lock/nvx-check-deb.lock
flock -w 1800 9 || fail "another check-deb.sh has held /run/lock/nvx-check-deb.lock for 30 min: wait for it, then rerun"
if dpkg-query -W -f='${Status}' nvx 2>/dev/null | grep -q "install ok"; then
    fail "the package nvx is already installed here: remove it (dpkg --purge nvx) and rerun"
fi
work=$(mktemp -d /tmp/nvx-deb-XXXXXX)
pid=""
had_user=0
getent passwd nvx >/dev/null 2>&1 && had_user=1
cleanup() {
    [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
    if dpkg-query -W -f='${Status}' nvx 2>/dev/null | grep -q "installed"; then
        dpkg --purge nvx >/dev/null 2>&1 || say "could not remove the package nvx"
    fi
    if [ "$had_user" = 0 ] && getent passwd nvx >/dev/null 2>&1; then
        userdel nvx 2>/dev/null || true
        groupdel nvx 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# 1. Build from the files git knows (no build dirs), in a temp dir: the
# .deb lands beside the copy, not beside the clone.
mkdir "$work/nvx"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$src" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - --no-recursion) |
        tar -C "$work/nvx" -xf -
else
    (cd "$src" && tar -cf - --exclude='./build*' --exclude=./.git .) | tar -C "$work/nvx" -xf -
fi
t0=$(date +%s)
(cd "$work/nvx" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
    >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    fail "dpkg-buildpackage failed"
}
deb=$(ls "$work"/nvx_*.deb)
say "built $(basename "$deb") in $(($(date +%s) - t0)) s"

# 2. lintian: no errors, no warnings (overrides, each with its reason, in
# debian/nvx.lintian-overrides).
if command -v lintian >/dev/null 2>&1; then
    lintian --fail-on error,warning "$work"/nvx_*.changes >"$work/lintian.log" 2>&1 || {
        cat "$work/lintian.log" >&2
        fail "lintian reports errors or warnings"
    }
    grep -E '^[EW]:' "$work/lintian.log" >&2 && fail "lintian reports errors or warnings"
    say "lintian: no errors or warnings"
else
    fail "lintian is absent (apt-get install lintian)"
fi

# 3. Install, then what the package put where.
dpkg -i "$deb" >"$work/install.log" 2>&1 || {
    cat "$work/install.log" >&2
    fail "dpkg -i failed"
}
for f in /usr/bin/nvx /usr/bin/nvxd /usr/share/man/man8/nvxd.8.gz /usr/share/man/man5/nvxd.conf.5.gz \
    /usr/share/man/man1/nvx.1.gz /lib/systemd/system/nvxd.service /etc/nvx/nvxd.conf \
    /usr/lib/sysusers.d/nvx.conf /usr/share/bash-completion/completions/nvx \
    /usr/share/zsh/vendor-completions/_nvx; do
    dpkg -L nvx | grep -qx "$f" || fail "the package lacks $f"
done
getent group nvx >/dev/null || fail "installing did not create the group nvx"
/usr/bin/nvx --version >/dev/null

# 4. Smoke test: the installed nvxd by hand on a temp store.
store=$work/store
/usr/bin/nvxd --store "$store" --listen 127.0.0.1:0 --http off --no-discovery --no-dht --no-upnp \
    >"$work/nvxd.log" 2>&1 &
pid=$!
i=0
until /usr/bin/nvx --store "$store" status >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || {
        cat "$work/nvxd.log" >&2
        fail "the installed nvxd exited"
    }
    i=$((i + 1))
    [ $i -lt 600 ] || fail "the installed nvxd did not answer nvx status within 60 s"
    sleep 0.1
done
model=$models/aidreams260K-Q8_0-ffndownF16.gguf
if [ -f "$model" ]; then
    id=$(/usr/bin/nvx --store "$store" add "$model" --pin -q)
    out=$(/usr/bin/nvx --store "$store" run "$id" -p "Once upon a time" -n 16)
    [ -n "$out" ] || fail "nvx run printed nothing"
    /usr/bin/nvx --store "$store" rm "$id" --force >/dev/null
    /usr/bin/nvx --store "$store" ls | grep -q "$id" && fail "nvx rm left the model"
    say "installed nvx: add, run, rm of $(basename "$model") with nvxd up"
else
    say "skipping add/run/rm: $model is absent (shared models folder)"
fi
kill -TERM "$pid"
wait "$pid" || fail "the installed nvxd did not stop cleanly on SIGTERM"
pid=""

# 5. Remove.
dpkg --purge nvx >/dev/null
[ ! -e /usr/bin/nvxd ] || fail "dpkg --purge left /usr/bin/nvxd"
say "installed, smoke-tested and removed"
