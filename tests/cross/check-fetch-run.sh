#!/bin/sh
# SPDX-License-Identifier: MIT
# Two nodes over the loopback, one of them emulated: a native nvxd seeds a
# small real model; an nvxd of the cross build (ARCH, under qemu-user)
# dials it, `nvx fetch` under qemu fetches the model by id, `nvx verify`
# and `nvx run` under qemu check and run it (greedy, 16 tokens), and both
# nodes stop cleanly on SIGTERM. Prints the emulated run's tokens/s and
# peak RSS and the emulated nvxd's (qemu's, so the guest's plus the
# emulator's) for the README.
# Usage: check-fetch-run.sh NATIVE_BUILD CROSS_BUILD QEMU MODELS_DIR
set -eu
native=$(cd "$1" && pwd)
cross=$(cd "$2" && pwd)
qemu=$3
models=$4
arch=$(basename "$cross")
say() { printf 'fetch-run %s: %s\n' "$arch" "$*" >&2; }
fail() {
    say "FAIL: $*"
    for l in "$work"/*.log; do
        [ -f "$l" ] && { echo "--- $l" >&2; tail -n 20 "$l" >&2; }
    done
    exit 1
}
model=$models/aidreams260K-Q8_0-ffndownF16.gguf
if [ ! -f "$model" ]; then
    say "skipping: $model is absent (shared models folder)"
    exit 0
fi
work=$(mktemp -d /tmp/nvx-cross-XXXXXX)
seed_pid=""
leech_pid=""
trap '[ -z "$seed_pid" ] || kill -9 $seed_pid 2>/dev/null; [ -z "$leech_pid" ] || kill -9 $leech_pid 2>/dev/null; rm -rf "$work"' EXIT
nvx_n() { "$native/cli/nvx" --store "$work/seed" "$@"; }
nvx_q() { "$qemu" "$cross/cli/nvx" --store "$work/leech" "$@"; }

# Polls (bounded, scaled for emulation on a loaded machine) until "$@" passes.
wait_for() {
    what=$1
    shift
    i=0
    until "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 1200 ] || fail "$what: not within 120 s"
        sleep 0.1
    done
}

"$native/daemon/nvxd" --store "$work/seed" --listen 127.0.0.1:0 --http off --no-discovery \
    --no-dht --no-upnp \
    >"$work/seed.log" 2>&1 &
seed_pid=$!
wait_for "native nvxd listening" grep -q "listening on 127.0.0.1:" "$work/seed.log"
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/seed.log" | head -n 1)
id=$(nvx_n add "$model" --pin -q)

"$qemu" "$cross/daemon/nvxd" --store "$work/leech" --listen 127.0.0.1:0 --http off \
    --no-discovery --no-dht --no-upnp --peer "127.0.0.1:$port" >"$work/leech.log" 2>&1 &
leech_pid=$!
wait_for "emulated nvxd answering" nvx_q status
t0=$(date +%s)
nvx_q -q fetch "$id" >"$work/fetch.log" 2>&1 || fail "emulated nvx fetch $id failed"
say "fetched $(basename "$model") from the native node in $(($(date +%s) - t0)) s"
nvx_q verify "$id" >"$work/verify.log" 2>&1 || fail "emulated nvx verify $id failed"
/usr/bin/time -f "%M" -o "$work/rss" "$qemu" "$cross/cli/nvx" --store "$work/leech" run "$id" \
    -p "Once upon a time" -n 16 -t 0 --stats >"$work/run.out" 2>"$work/run.log" ||
    fail "emulated nvx run $id failed"
[ -s "$work/run.out" ] || fail "emulated nvx run printed nothing"
say "run: $(tr '\n' ' ' <"$work/run.out" | cut -c1-60)"
say "run stats (emulated): $(grep -i 'tok' "$work/run.log" | tail -n 1); peak RSS $(cat "$work/rss") KiB (qemu)"

say "emulated nvxd after the fetch: $(grep VmHWM /proc/$leech_pid/status | tr -s ' \t' ' ') (qemu)"
kill -TERM "$leech_pid"
wait "$leech_pid" || fail "the emulated nvxd did not stop cleanly"
leech_pid=""
kill -TERM "$seed_pid"
wait "$seed_pid" || fail "the native nvxd did not stop cleanly"
seed_pid=""
say "passed"
