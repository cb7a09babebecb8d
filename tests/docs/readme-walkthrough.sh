#!/bin/sh
# SPDX-License-Identifier: MIT
# The README's "Run a node" walkthrough, run for real: two nodes (alice,
# bob) on 127.0.0.1 with their own stores, publish, trust, fetch by name,
# run, share (a third node fetches from bob after alice is gone).
#
#   tests/docs/readme-walkthrough.sh BUILD_DIR            print the transcript
#   tests/docs/readme-walkthrough.sh BUILD_DIR README.md  compare it with the
#       README's block between the "walkthrough" markers, modulo ports, ids,
#       keys and sequence numbers (the meson test readme-walkthrough)
#
# The transcript is what a user sees: each command after "$ ", then its
# stdout and stderr. Ports are ephemeral (the README shows 4747, 4757, 4767)
# and nodes run without the HTTP API, so parallel tests never collide.
set -eu
build=$(cd "$1" && pwd)
readme=${2:-}
NVX_BIN=$build/cli/nvx
NVXD_BIN=$build/daemon/nvxd
mkmodel=$build/tests/tools/nvx-mkmodel
work=$(mktemp -d "${TMPDIR:-/tmp}/nvx-walkthrough-XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cd "$work"
export NVX_PASSPHRASE=

nvx() { "$NVX_BIN" "$@"; }

# Shows a command as the README does, then runs exactly that text.
step() {
    printf '$ %s\n' "$1"
    eval "$1" 2>&1
}

# Waits (bounded: 30 s, scaled by NVX_TIMEOUT_SCALE under load) until the
# node answers and prints its listening address.
wait_node() { # store
    i=0
    limit=$((300 * ${NVX_TIMEOUT_SCALE:-1}))
    until "$NVX_BIN" --store "$1" status >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -ge $limit ]; then
            cat "$1.log" >&2
            echo "walkthrough: nvxd $1 did not start" >&2
            exit 1
        fi
        sleep 0.1
    done
}

start_node() { # store, shown port
    printf '$ nvxd --store %s --listen 127.0.0.1:%s --no-discovery --no-upnp --no-dht --http off &\n' "$1" "$2"
    "$NVXD_BIN" --store "$1" --listen 127.0.0.1:0 --no-discovery --no-upnp --no-dht --http off 2>"$1.log" &
    pids="$pids $!"
    wait_node "$1"
}

addr_of() {
    "$NVX_BIN" --store "$1" status | sed -n 's/^listening *//p' | head -n 1
}

# Polls until bob's node has alice's name record (gossip), bounded.
wait_name() {
    i=0
    until "$NVX_BIN" --store "$1" resolve "$2" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt $((300 * ${NVX_TIMEOUT_SCALE:-1})) ] || {
            echo "walkthrough: $2 did not reach $1" >&2
            exit 1
        }
        sleep 0.1
    done
}

# Polls until alice's signature, which travels beside the model, is on
# bob's node (it may land just after the fetch returns), bounded.
wait_sig() {
    i=0
    until "$NVX_BIN" --store "$1" verify "$2" --require-trusted >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt $((300 * ${NVX_TIMEOUT_SCALE:-1})) ] || {
            echo "walkthrough: the signature of $2 did not reach $1" >&2
            exit 1
        }
        sleep 0.1
    done
}

transcript() {
    "$mkmodel" -o dreams.gguf --dim 64 --layers 2 --seq 64 --type q8_0 --seed 3 \
        --name dreams >/dev/null 2>&1
    echo "# Two nodes on one machine, each with its own store:"
    start_node alice 4747
    start_node bob 4757
    a=$(addr_of alice)
    echo
    echo "# alice adds a model, makes a key, signs the model and publishes it as dreams:"
    step 'nvx --store alice add dreams.gguf --name dreams'
    id=$("$NVX_BIN" --store alice -q ls)
    step 'nvx --store alice key new --key alice.key --unencrypted'
    step 'nvx --store alice sign dreams --key alice.key'
    step 'nvx --store alice publish dreams dreams --key alice.key'
    echo
    echo "# bob dials alice, trusts her key and fetches the model by its name:"
    step "nvx --store bob peer add $a"
    step 'nvx --store bob trust add alice.pub alice'
    wait_name bob alice/dreams
    step 'nvx --store bob fetch alice/dreams'
    wait_sig bob alice/dreams
    step 'nvx --store bob verify alice/dreams --require-trusted'
    step 'nvx --store bob run alice/dreams -p "Once upon a time" -n 12 -t 0'
    step 'nvx --store bob ls'
    echo
    echo "# Later: bob's node restarts, alice's is gone; carol knows only bob:"
    kill -TERM $pids
    wait $pids
    pids=""
    start_node bob 4757
    start_node carol 4767
    b=$(addr_of bob)
    step "nvx --store carol peer add $b"
    step "nvx --store carol fetch $id"
    step 'nvx --store carol ls'
}

normalize() {
    sed -E -e 's/127\.0\.0\.1:[0-9]+/127.0.0.1:PORT/g' \
        -e 's/[0-9a-f]{64}/<id>/g' \
        -e 's/\b[0-9a-f]{12}\b/<short-id>/g' \
        -e 's/\b[0-9A-F]{8,16}\b/<key-id>/g' \
        -e 's/RW[A-Za-z0-9+\/]{54}/<public-key>/g' \
        -e 's/sequence [0-9]+/sequence N/g' \
        -e 's/[0-9.]+ (s|ms|tok\/s)\b/T \1/g'
}

if [ -z "$readme" ]; then
    transcript
    exit 0
fi
transcript >out.txt
sed -n '/^<!-- walkthrough: begin -->$/,/^<!-- walkthrough: end -->$/p' "$readme" |
    sed -e '1,2d' -e '$d' | sed -e '$d' >want.txt
[ -s want.txt ] || {
    echo "walkthrough: no block between the walkthrough markers in $readme" >&2
    exit 1
}
normalize <want.txt >want.norm
normalize <out.txt >out.norm
if ! diff -u want.norm out.norm; then
    echo "walkthrough: the README's walkthrough differs from what the code prints (above:" >&2
    echo "- README, + now); regenerate it with: tests/docs/readme-walkthrough.sh build" >&2
    exit 1
fi
echo "walkthrough: README matches ($(grep -c '^\$ ' out.txt) commands)"
