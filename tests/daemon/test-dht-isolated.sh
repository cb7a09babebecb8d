#!/bin/sh
# SPDX-License-Identifier: MIT
# nvxd with the DHT on (the default) and an explicit local bootstrap list
# sends nothing beyond 127.0.0.1: two nodes in a network namespace this
# test creates, whose only way out is a veth with a default route, join
# each other's DHT while an iptables rule counts every packet a process in
# the namespace sends through anything but lo: it must stay 0. Then a node
# with the built-in (public) bootstrap list starts there and the count must
# rise (its DNS lookups), which shows the check can fail. Those packets go
# to the veth's other end in the same test namespace, nowhere else.
#
# Needs root, ip and iptables (CI runs as root); skips (77) otherwise.
set -eu

build=${NVX_BUILD_ROOT:?NVX_BUILD_ROOT is not set (run through meson test)}
nvx=$build/cli/nvx
nvxd=$build/daemon/nvxd
skip() {
    echo "SKIP: $*"
    exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root for a network namespace"
command -v ip >/dev/null 2>&1 || skip "needs ip (iproute2)"
command -v iptables >/dev/null 2>&1 || skip "needs iptables"

ns=nvxdht$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nvx-dht-isolated.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns" || skip "cannot create a network namespace"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 || true
ip -n "$ns" link set lo up
ip link add nvxo0 netns "$ns" type veth peer name nvxo1 netns "$ns"
ip -n "$ns" addr add 192.0.2.1/31 dev nvxo0
ip -n "$ns" link set nvxo0 up
ip -n "$ns" route add default via 192.0.2.0 dev nvxo0 onlink
in_ns iptables -w -A OUTPUT ! -o lo -j ACCEPT || skip "iptables does not work in a namespace here"

sent() { in_ns iptables -w -L OUTPUT -v -x -n | awk '$3 == "ACCEPT" { print $1; exit }'; }

# start NAME ARGS...: nvxd in the namespace, up when its control socket answers.
start() {
    name=$1
    shift
    # ip netns exec execs nvxd in place: $! is nvxd itself (a shell
    # function would put a subshell in between).
    ip netns exec "$ns" "$nvxd" --store "$tmp/$name" --listen 127.0.0.1:0 --no-discovery \
        --http off --log-level debug "$@" </dev/null >/dev/null 2>"$tmp/$name.log" &
    pids="$pids $!"
    end=$(($(date +%s) + 20))
    until in_ns "$nvx" --store "$tmp/$name" status >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || {
            cat "$tmp/$name.log" >&2
            echo "nvxd $name did not start" >&2
            exit 1
        }
        sleep 0.05
    done
}
dht_field() { # name key
    in_ns "$nvx" --store "$tmp/$1" --json dht | tr ',{}' '\n\n\n' | sed -n "s/^ *\"$2\": *//p"
}
wait_field() { # name key min
    end=$(($(date +%s) + 20))
    while [ "$(dht_field "$1" "$2")" -lt "$3" ]; do
        [ "$(date +%s)" -lt "$end" ] || {
            cat "$tmp/$1.log" >&2
            echo "DHT of $1: $2 stayed below $3" >&2
            exit 1
        }
        sleep 0.05
    done
}

start a --dht-bootstrap none
start b --dht-bootstrap "127.0.0.1:$(dht_field a port)"
wait_field b nodes 1
wait_field a nodes 1
n=$(sent)
echo "packets out of the namespace with a local bootstrap list: $n"
[ "$n" = 0 ] || {
    cat "$tmp/a.log" "$tmp/b.log" >&2
    echo "FAIL: nvxd sent $n packets beyond the loopback" >&2
    exit 1
}

# The control: the built-in public list makes it look the routers up.
start c
end=$(($(date +%s) + 20))
while [ "$(sent)" = 0 ]; do
    [ "$(date +%s)" -lt "$end" ] || {
        echo "FAIL: the default bootstrap list sent nothing: the counter does not see packets" >&2
        exit 1
    }
    sleep 0.05
done
echo "with the public bootstrap list: $(sent) packets (to the test's own veth)"
