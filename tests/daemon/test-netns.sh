#!/bin/sh
# SPDX-License-Identifier: MIT
# End to end through home NATs, in network namespaces (netns-world.sh):
#
#   inet: R, a public node (relay) and the DHT's bootstrap node, at
#         11.0.0.1:4747 (TCP and UDP)
#   h1 behind r1 (miniupnpd): A, maps its port by UPnP, peer R
#   h2 behind r2 (no UPnP):   B, cannot be mapped, no peers: it finds R
#                             as a relay on the DHT and keeps a session
#   h3 behind r3 (NAT-PMP only): C, maps its port by NAT-PMP, no peers
#   h4 behind r4 (no UPnP):   D, no peers
#   h5 behind r5 (NAT-PMP only): E, no peers, never dials what peer
#                             exchange names (NVX_TEST_NO_PEX_DIAL=1)
# Every node runs the DHT with R as its only bootstrap node. A and C run
# --no-relay, so that R is the only relay announced on the DHT and B's
# only way in.
#
# 0. DHT: C fetches A's model m3 given only its id (no peer, no ticket, no
#    session yet): a DHT lookup finds A's announce, which carries the port
#    r1 maps (the address is the announce's source: r1's), and C dials it.
# 1. mapped: C fetches A's model given only `nvx ticket` from A (the
#    mapped address 11.0.1.2:4747 through r1's real UPnP port mapping).
# 2. reversal: A fetches B's model given only R (A's direct dial to B's
#    router fails; R relays A's REVERSE_REQ, B dials A's mapped address).
#    B runs with NVX_TEST_NO_PEX_DIAL=1 so that it does not dial A on its
#    own after peer exchange: only reversal can connect them.
# 2b. DHT + reversal: E fetches B's model m5 given only its id. The DHT
#    names r2:4747, which maps nothing; E finds R under the DHT's relay key
#    and connects to it; R has B ask E (REVERSE_AT by address, or
#    REVERSE_REQ by id once R's gossip named B); B dials E back.
# 3. A stops cleanly: its mapping is gone from r1.
#
# Prints the time from `nvx fetch` to its first byte and to the end.
# Passed 5 of 5 runs with NW_LOSS=0.1 (10% loss at every router and at the
# public hosts: about 27% per round trip through R).
# Usage: test-netns.sh BUILD_DIR. Exit 77 (skip) where namespaces cannot
# be made. NW_LOSS=0.05 drops 5% of packets at every router (netns-world.sh);
# NW_KEEP=DIR keeps the logs of a failed run there. A DHT test can reuse the world: a bootstrap node in inet.
set -eu
build=$(cd "${1:?usage: test-netns.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
nvx="$build/cli/nvx"
nvxd="$build/daemon/nvxd-test"
mkmodel="$build/tests/tools/nvx-mkmodel"
. "$here/netns-world.sh"

if ! why=$(nw_can_run); then
    echo "test-netns: SKIP: $why"
    exit 77
fi
trap nw_down EXIT
trap 'exit 130' INT TERM

# Deadlines grow with the load (the test must pass beside a busy build).
cpus=$(nproc 2>/dev/null || echo 1)
load=$(cut -d' ' -f1 /proc/loadavg | cut -d. -f1)
limit_s=$((20 * (1 + load / cpus)))

say() { printf 'test-netns: %s\n' "$*"; }
fail() {
    say "FAIL: $*"
    if [ -n "${NW_KEEP:-}" ]; then # the whole run's logs and stores, for a post-mortem
        rm -rf "$NW_KEEP" && cp -r "$NW_DIR" "$NW_KEEP" && say "kept $NW_DIR in $NW_KEEP"
    fi
    for n in r a b c d e; do
        printf '\n== nvx status of %s\n' "$n"
        "$nvx" --store "$NW_DIR/$n" status 2>&1 | grep -i "dht\|reach\|nat" || true
    done
    for f in "$NW_DIR"/*.log; do
        printf '\n== %s\n' "$f"
        tail -n 40 "$f"
    done
    exit 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_for WHAT CMD...: polls CMD until it succeeds or limit_s passes.
wait_for() {
    what=$1
    shift
    end=$(($(date +%s) + limit_s))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt $end ] || fail "$what (not within ${limit_s}s)"
        sleep 0.05
    done
}

nw_up 5 "1" "3 5" || fail "cannot build the namespaces"
R_ADDR="$(nw_inet_addr 1):4747"
DHT="--dht --dht-bootstrap $R_ADDR" # R's DHT listens on the same port, UDP

start() { # name ns env... -- nvxd args...
    name=$1
    ns=$2
    shift 2
    mkdir -p "$NW_DIR/$name"
    nw_spawn "$ns" "$NW_DIR/$name.log" env "$@" --store "$NW_DIR/$name" --no-discovery \
        --http off --log-level debug
    wait_for "nvxd $name up" "$nvx" --store "$NW_DIR/$name" status
}
status_has() { "$nvx" --store "$NW_DIR/$1" status | grep -q "$2"; }

# The models go in before the nodes start: a node announces what its store
# holds at start (and at its next rescan, a minute later).
"$mkmodel" -o "$NW_DIR/m1.gguf" --dim 64 --layers 2 --name nvx-netns-1 --seed 1 >/dev/null
"$mkmodel" -o "$NW_DIR/m2.gguf" --dim 64 --layers 2 --name nvx-netns-2 --seed 2 >/dev/null
m1=$("$nvx" --store "$NW_DIR/a" -q add "$NW_DIR/m1.gguf" --pin | awk 'END { print $NF }')
[ -n "$m1" ] || fail "nvx add printed no id"
m2=$("$nvx" --store "$NW_DIR/b" -q add "$NW_DIR/m2.gguf" --pin | awk 'END { print $NF }')
"$mkmodel" -o "$NW_DIR/m3.gguf" --dim 64 --layers 2 --name nvx-netns-3 --seed 3 >/dev/null
"$mkmodel" -o "$NW_DIR/m4.gguf" --dim 64 --layers 2 --name nvx-netns-4 --seed 4 >/dev/null
m3=$("$nvx" --store "$NW_DIR/a" -q add "$NW_DIR/m3.gguf" --pin | awk 'END { print $NF }')
m4=$("$nvx" --store "$NW_DIR/a" -q add "$NW_DIR/m4.gguf" --pin | awk 'END { print $NF }')
"$mkmodel" -o "$NW_DIR/m5.gguf" --dim 64 --layers 2 --name nvx-netns-5 --seed 5 >/dev/null
m5=$("$nvx" --store "$NW_DIR/b" -q add "$NW_DIR/m5.gguf" --pin | awk 'END { print $NF }')

# shellcheck disable=SC2086 # $DHT is several arguments
{
    start r inet "$nvxd" --listen "$R_ADDR" --no-upnp --dht --dht-bootstrap none
    start a h1 "$nvxd" --listen 0.0.0.0:4747 --peer "$R_ADDR" --no-relay $DHT
    start b h2 NVX_TEST_NO_PEX_DIAL=1 "$nvxd" --listen 0.0.0.0:4747 $DHT
    start c h3 "$nvxd" --listen 0.0.0.0:4747 --no-relay $DHT
    start d h4 "$nvxd" --listen 0.0.0.0:4747 --no-upnp $DHT
    start e h5 NVX_TEST_NO_PEX_DIAL=1 "$nvxd" --listen 0.0.0.0:4747 --no-relay $DHT
}

wait_for "A mapped by UPnP" status_has a "reachable at $(nw_wan_addr 1):4747 (UPnP"
wait_for "B reachable by reversal (R found on the DHT)" \
    status_has b "behind NAT, reachable by reversal through 1 relay"
wait_for "C mapped by NAT-PMP" status_has c "reachable at $(nw_wan_addr 3):4747 (NAT-PMP"
wait_for "E mapped by NAT-PMP" status_has e "reachable at $(nw_wan_addr 5):4747 (NAT-PMP"

# fetch_timed NAME TARGET WHAT: fetches on node NAME; prints the time to
# the first byte (a transfer in `nvx status --json` with bytes done) and to
# the end.
fetch_timed() {
    t0=$(now_ms)
    "$nvx" --store "$NW_DIR/$1" --json fetch "$2" --timeout "$limit_s" >"$NW_DIR/$1.fetch" \
        2>"$NW_DIR/$1.fetch.err" &
    fpid=$!
    first=""
    while kill -0 $fpid 2>/dev/null; do
        if [ -z "$first" ] && "$nvx" --store "$NW_DIR/$1" --json status 2>/dev/null |
            grep -q '"bytes_done": *[1-9]'; then
            first=$(now_ms)
        fi
    done
    wait $fpid || fail "node $1: nvx fetch failed: $(cat "$NW_DIR/$1.fetch.err")"
    t1=$(now_ms)
    [ -n "$first" ] || first=$t1 # done before a status showed bytes
    say "$3: first byte after $((first - t0)) ms, done after $((t1 - t0)) ms"
    "$nvx" --store "$NW_DIR/$1" -q verify "$(sed -n 's/.*"id": *"\([0-9a-f]*\)".*/\1/p' \
        "$NW_DIR/$1.fetch")" || fail "node $1: the fetched model does not verify"
}

# 0. Given only the id: the DHT finds A at r1's mapped port.
fetch_timed c "$m3" "DHT + mapped (UPnP), id only"
grep -q "dht: provider $(nw_wan_addr 1):4747" "$NW_DIR/c.log" ||
    fail "C did not find A's mapped address on the DHT"

# 1. Through the mapped port, given a ticket.
ticket=$("$nvx" --store "$NW_DIR/a" ticket "$m1")
case $ticket in nvx1*) ;; *) fail "nvx ticket printed '$ticket'" ;; esac
fetch_timed c "$ticket" "mapped (UPnP), ticket"
grep -q "$(nw_wan_addr 1):4747" "$NW_DIR/c.log" || fail "C did not dial A's mapped address"

# 2. Through connection reversal, given only the relay.
fetch_timed a "$m2" "reversal through R"
grep -q "reversal: .* asks us to connect to $(nw_wan_addr 1):4747" "$NW_DIR/b.log" ||
    fail "B was not asked to connect by reversal"

# 2b. Given only the id, from a seeder no one can dial: DHT + reversal.
fetch_timed e "$m5" "DHT + reversal through R, id only"
grep -q "dht: provider $(nw_wan_addr 2):4747" "$NW_DIR/e.log" ||
    fail "E did not find B's address on the DHT"
grep -q "dht: dialing relay $R_ADDR" "$NW_DIR/e.log" || fail "E did not find R on the DHT"
grep -q "reversal: .* asks us to connect to $(nw_wan_addr 5):4747" "$NW_DIR/b.log" ||
    fail "B was not asked to connect to E by reversal"
if grep -q "reversal: asked .* relays for the node at" "$NW_DIR/e.log"; then
    say "E asked R by address (REVERSE_AT)"
else
    say "E asked R by node id (REVERSE_REQ): R's gossip named B first"
fi

# 3. A name through BEP 44, for a node with no session to anyone.
"$nvx" --store "$NW_DIR/a" key new --unencrypted --key "$NW_DIR/pub.key" >/dev/null ||
    fail "nvx key new failed"
"$nvx" --store "$NW_DIR/a" -q publish "$m4" netns-m4 --key "$NW_DIR/pub.key" >/dev/null ||
    fail "nvx publish failed"
"$nvx" --store "$NW_DIR/d" -q trust add "$NW_DIR/pub.pub" pub >/dev/null || fail "nvx trust add"
pk=$(sed -n 2p "$NW_DIR/pub.pub" | base64 -d | od -An -tx1 -j10 -N32 | tr -d ' \n')
wait_for "A's name item on the DHT" "$nvx" --store "$NW_DIR/d" dht get "$pk" netns-m4
fetch_timed d pub/netns-m4 "BEP 44 name + DHT + mapped (UPnP)"
grep -q "\"name\": *\"pub/netns-m4\"" "$NW_DIR/d.fetch" || fail "D's fetch did not keep the name"

# 4. A clean stop removes the mapping from the router.
mapped() { nw_exec r1 nft list chain inet filter prerouting_miniupnpd | grep -q "dport 4747"; }
mapped || fail "r1 holds no mapping for A"
stop() { # name ns: SIGTERM, then nvxd must log "stopped" (and no sanitizer report)
    for pid in $(ip netns pids "$(nw_ns "$2")"); do kill "$pid"; done
    wait_for "nvxd $1 stopped" sh -c "[ -z \"\$(ip netns pids $(nw_ns "$2"))\" ]"
    grep -q "stopped" "$NW_DIR/$1.log" || fail "nvxd $1 did not stop cleanly"
    if grep -q "Sanitizer" "$NW_DIR/$1.log"; then fail "nvxd $1: sanitizer report"; fi
}
stop a h1
mapped && fail "A's mapping is still on r1 after a clean stop"
stop b h2
stop c h3
stop d h4
stop e h5
stop r inet
say "ok"
