# SPDX-License-Identifier: MIT
# shellcheck shell=sh
#
# A small internet in network namespaces, for end-to-end tests of nvxd
# across NAT routers. Source it, then:
#
#   nw_up HOMES UPNP_HOMES [PMP_HOMES]
#                            e.g. nw_up 3 "1" "3": homes 1..3, home 1's
#                            router runs miniupnpd (UPnP-IGD and NAT-PMP),
#                            home 3's miniupnpd with NAT-PMP only.
#                            NW_LOSS=0.05: every router and the public
#                            hosts drop 5% of packets at random (iptables
#                            statistic; netem is often not in the kernel)
#   nw_exec NS CMD...        run CMD in namespace NS: inet, r1.., h1..
#   nw_spawn NS LOG CMD...   the same in the background; NW_PID = its pid
#   nw_down                  kill what runs in the namespaces, delete them
#                            (install it as a trap: trap nw_down EXIT)
#
# Layout (every name carries a per-run prefix, so parallel runs never
# clash; nothing is created in the caller's namespace):
#
#   inet   the "internet": public hosts on its loopback at
#          $NW_NET.0.1 .. $NW_NET.0.9 (nw_inet_addr N), one link per router,
#          forwarding between them. A relay or a DHT bootstrap node runs here.
#   rI     home I's router: wan $NW_NET.I.2/24 (gateway $NW_NET.I.1 in inet),
#          lan 10.0.I.1/24, IPv4 forwarding, iptables MASQUERADE out of wan;
#          for homes in UPNP_HOMES (PMP_HOMES: NAT-PMP only), miniupnpd on
#          lan, mapping ports to 10.0.I.0/24 only.
#   hI     a host at home: eth0 10.0.I.2/24, default route via 10.0.I.1.
#
# Why $NW_NET is 11.0 and not 198.18.0.0/15 (reserved for tests):
# miniupnpd 2.3 refuses every reserved range on its external interface
# (198.18/15, the TEST-NETs, 100.64/10), with no switch to allow one. No
# namespace here has a link to the host's network or a route out of this
# topology, so no packet with these addresses can leave the machine.
#
# Needs root (ip netns), iproute2, iptables, nft and miniupnpd;
# nw_can_run says why not (tests skip with that message).

NW_NET=${NW_NET:-11.0}
NW_P=""
NW_DIR=""

nw_can_run() {
    if [ "$(id -u)" != 0 ]; then
        echo "needs root to create network namespaces"
        return 1
    fi
    for t in ip iptables nft miniupnpd; do
        command -v "$t" >/dev/null 2>&1 || {
            echo "needs $t (contrib/nvx-dev installs it)"
            return 1
        }
    done
    p="nvxprobe$$"
    if ! ip netns add "$p" 2>/dev/null; then
        echo "cannot create a network namespace here (a container without CAP_SYS_ADMIN?)"
        return 1
    fi
    ip netns del "$p"
    return 0
}

nw_ns() { echo "$NW_P-$1"; }
nw_exec() {
    ns=$1
    shift
    ip netns exec "$NW_P-$ns" "$@"
}
nw_inet_addr() { echo "$NW_NET.0.$1"; }
nw_wan_addr() { echo "$NW_NET.$1.2"; }
nw_home_addr() { echo "10.0.$1.2"; }

nw_spawn() {
    ns=$1
    log=$2
    shift 2
    ip netns exec "$NW_P-$ns" "$@" >"$log" 2>&1 &
    NW_PID=$!
}

# miniupnpd's nftables backend expects its table and chains to exist.
nw__upnp_start() { # home, yes|no (UPnP-IGD besides NAT-PMP)
    i=$1
    nw_exec "r$i" nft -f - <<EOF
table inet filter {
  chain miniupnpd {
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    jump miniupnpd
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
  }
}
EOF
    cat >"$NW_DIR/miniupnpd-r$i.conf" <<EOF
ext_ifname=wan
listening_ip=lan
http_port=0
enable_natpmp=yes
enable_upnp=$2
secure_mode=yes
system_uptime=yes
lease_file=$NW_DIR/miniupnpd-r$i.leases
uuid=00000000-0000-4000-8000-00000000000$i
allow 1024-65535 10.0.$i.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
    nw_spawn "r$i" "$NW_DIR/miniupnpd-r$i.log" miniupnpd -d -f "$NW_DIR/miniupnpd-r$i.conf" \
        -P "$NW_DIR/miniupnpd-r$i.pid"
    # Up once it listens for NAT-PMP (it logs it after binding SSDP and HTTP).
    n=0
    until grep -q "Listening for NAT-PMP" "$NW_DIR/miniupnpd-r$i.log" 2>/dev/null; do
        n=$((n + 1))
        if [ $n -gt 200 ] || ! kill -0 "$NW_PID" 2>/dev/null; then
            cat "$NW_DIR/miniupnpd-r$i.log" >&2
            echo "netns-world: miniupnpd on r$i did not start" >&2
            return 1
        fi
        sleep 0.05
    done
}

nw_up() {
    homes=$1
    upnp=$2
    pmp=${3:-}
    NW_P="nvx$$$(od -An -N2 -tx2 /dev/urandom | tr -d ' ')"
    NW_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nvx-netns-XXXXXX")
    ip netns add "$NW_P-inet" || return 1
    nw_exec inet ip link set lo up
    for k in 1 2 3 4 5 6 7 8 9; do
        nw_exec inet ip addr add "$NW_NET.0.$k/32" dev lo
    done
    nw_exec inet sysctl -qw net.ipv4.ip_forward=1
    if [ -n "${NW_LOSS:-}" ]; then # and what reaches the public hosts
        nw_exec inet iptables -A INPUT -m statistic --mode random --probability "$NW_LOSS" \
            -j DROP || return 1
    fi
    i=1
    while [ $i -le "$homes" ]; do
        ip netns add "$NW_P-r$i" || return 1
        ip netns add "$NW_P-h$i" || return 1
        ip -n "$NW_P-inet" link add "r$i" type veth peer name wan netns "$NW_P-r$i"
        ip -n "$NW_P-r$i" link add lan type veth peer name eth0 netns "$NW_P-h$i"
        nw_exec inet ip addr add "$NW_NET.$i.1/24" dev "r$i"
        nw_exec inet ip link set "r$i" up
        nw_exec "r$i" ip link set lo up
        nw_exec "r$i" ip addr add "$NW_NET.$i.2/24" dev wan
        nw_exec "r$i" ip link set wan up
        nw_exec "r$i" ip addr add "10.0.$i.1/24" dev lan
        nw_exec "r$i" ip link set lan up
        nw_exec "r$i" ip route add default via "$NW_NET.$i.1"
        nw_exec "r$i" sysctl -qw net.ipv4.ip_forward=1
        nw_exec "r$i" iptables -t nat -A POSTROUTING -o wan -j MASQUERADE
        nw_exec "h$i" ip link set lo up
        nw_exec "h$i" ip addr add "10.0.$i.2/24" dev eth0
        nw_exec "h$i" ip link set eth0 up
        nw_exec "h$i" ip route add default via "10.0.$i.1"
        if [ -n "${NW_LOSS:-}" ]; then # what the home's router forwards, both ways
            nw_exec "r$i" iptables -A FORWARD -m statistic --mode random \
                --probability "$NW_LOSS" -j DROP || return 1
        fi
        for u in $upnp; do
            if [ "$u" = "$i" ]; then
                nw__upnp_start "$i" yes || return 1
            fi
        done
        for u in $pmp; do
            if [ "$u" = "$i" ]; then
                nw__upnp_start "$i" no || return 1
            fi
        done
        i=$((i + 1))
    done
}

nw_down() {
    [ -n "$NW_P" ] || return 0
    for ns in $(ip netns list | awk '{ print $1 }' | grep "^$NW_P-"); do
        # Only processes inside the namespaces this run created.
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill "$pid" 2>/dev/null || true
        done
    done
    for ns in $(ip netns list | awk '{ print $1 }' | grep "^$NW_P-"); do
        n=0
        while [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] && [ $n -lt 100 ]; do
            n=$((n + 1))
            sleep 0.05
        done
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -9 "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$NW_DIR"
    NW_P=""
}
