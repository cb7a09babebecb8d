#!/bin/sh
# SPDX-License-Identifier: MIT
# The README demo (run by `contrib/nvx-dev demo`): makes a small synthetic
# model (random weights, byte vocabulary: it needs no download, and its text
# is gibberish by design), publishes it on node A, fetches it by id on node B
# over an authenticated, encrypted session on 127.0.0.1, verifies, exports,
# compares and runs it there, then stops both nodes.
# Usage: contrib/demo.sh BUILD_DIR
set -eu
build=$(cd "${1:-build}" && pwd)
nvx="$build/cli/nvx"
nvxd="$build/daemon/nvxd"
mkmodel="$build/tests/tools/nvx-mkmodel"
work=$(mktemp -d "${TMPDIR:-/tmp}/nvx-demo-XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n== %s\n' "$*"; }

start_node() { # name
    "$nvxd" --store "$work/$1" --listen 127.0.0.1:0 --no-discovery --no-upnp 2>"$work/$1.log" &
    pids="$pids $!"
    i=0
    until "$nvx" --store "$work/$1" status >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || { cat "$work/$1.log" >&2; echo "demo: nvxd $1 did not start" >&2; exit 1; }
        sleep 0.1
    done
    "$nvx" --store "$work/$1" status | sed -n 's/^node *//p;s/^listening *//p' | tr '\n' ' '
    echo "(node $1)"
}

step "make a small model: demo.gguf"
"$mkmodel" -o "$work/demo.gguf" --dim 128 --layers 4 --name nvx-demo --seed 7

step "start two nodes on 127.0.0.1 with separate stores"
start_node a
start_node b
addr_a=$("$nvx" --store "$work/a" status | sed -n 's/^listening *//p' | head -n 1)

step "node A: add the model (tensor-aware chunks), pin it, publish it as alice/demo"
id=$("$nvx" --store "$work/a" add "$work/demo.gguf" --pin --name demo | tee /dev/stderr |
    awk 'END { print $NF }')
NVX_PASSPHRASE= "$nvx" --store "$work/a" key new --key "$work/demo.key" --unencrypted >/dev/null
"$nvx" --store "$work/a" sign "$id" --key "$work/demo.key"
"$nvx" --store "$work/a" publish "$id" demo --key "$work/demo.key"

step "node B: connect to A and fetch the model by id"
"$nvx" --store "$work/b" peer add "$addr_a"
"$nvx" --store "$work/b" fetch "$id" --pin
"$nvx" --store "$work/b" verify "$id"

step "node B: trust alice's key and resolve the signed name alice/demo"
"$nvx" --store "$work/b" trust add "$work/demo.pub" alice
i=0
until "$nvx" --store "$work/b" resolve alice/demo 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 50 ] || { echo "demo: the name record did not reach node B" >&2; exit 1; }
    sleep 0.1
done

step "node B: the signature came with the model; check it against alice's key"
i=0
until "$nvx" --store "$work/b" verify "$id" --require-trusted >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 50 ] || { echo "demo: alice's signature did not reach node B" >&2; exit 1; }
    sleep 0.1
done
"$nvx" --store "$work/b" verify "$id" --require-trusted

step "node B: export and compare bit for bit"
"$nvx" --store "$work/b" export "$id" -o "$work/copy.gguf"
cmp "$work/demo.gguf" "$work/copy.gguf" && echo "identical: $(wc -c <"$work/copy.gguf") bytes"

step "node B: run it (greedy, 24 tokens)"
"$nvx" --store "$work/b" run "$id" -p "hello" -n 24 -t 0 --stats
echo

step "node B: status"
"$nvx" --store "$work/b" status

step "stop both nodes"
for p in $pids; do kill -TERM "$p"; done
for p in $pids; do wait "$p"; done
pids=""
echo "both nodes stopped cleanly"
