#!/usr/bin/env bash
# Builds K test hosts on this machine: network namespaces PREFIX-h0..h(K-1), each with one veth link
# to a bridge in the namespace PREFIX-sw, addresses SUBNET.1 .. SUBNET.K (/24, only inside these
# namespaces; SUBNET defaults to 10.231.0, and a harness running beside another picks its own). Optional shaping on every host's link: --rate (tc tbf, e.g. 1gbit) and --delay (tc netem,
# e.g. 2ms). Needs root (ip, tc from iproute2). Undo with down.sh.
# Usage: cluster/netns/up.sh K [--prefix srdpr] [--subnet 10.231.0] [--rate RATE] [--delay DELAY]
set -euo pipefail
k="${1:?usage: up.sh K [--prefix P] [--subnet A.B.C] [--rate RATE] [--delay DELAY]}"; shift
prefix=srdpr subnet=10.231.0 rate="" delay=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix="$2"; shift 2 ;;
        --subnet) subnet="$2"; shift 2 ;;
        --rate) rate="$2"; shift 2 ;;
        --delay) delay="$2"; shift 2 ;;
        *) echo "up.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$k" in ''|*[!0-9]*) echo "up.sh: K must be a number of hosts (1-200), got '$k'" >&2; exit 2 ;; esac
if [ "$k" -lt 1 ] || [ "$k" -gt 200 ]; then echo "up.sh: K must be 1-200" >&2; exit 2; fi
[[ "$subnet" =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || { echo "up.sh: --subnet must be three octets like 10.231.0, got '$subnet'" >&2; exit 2; }

sw="$prefix-sw"
# A half-built topology is removed again, so a failed call leaves nothing behind.
trap 'echo "up.sh: failed; removing the partial setup (netem needs the sch_netem kernel module, which some sandboxes lack)" >&2; "$(dirname "$0")/down.sh" --prefix "$prefix"' ERR
ip netns add "$sw"
ip -n "$sw" link add br0 type bridge
ip -n "$sw" link set br0 up
ip -n "$sw" link set lo up
for i in $(seq 0 $((k - 1))); do
    host="$prefix-h$i"
    ip netns add "$host"
    ip -n "$host" link set lo up
    # One veth pair per host: eth0 inside the host, p$i on the bridge.
    ip link add "${prefix}t$i" type veth peer name "${prefix}p$i"
    ip link set "${prefix}t$i" netns "$host"
    ip link set "${prefix}p$i" netns "$sw"
    ip -n "$host" link set "${prefix}t$i" name eth0
    ip -n "$sw" link set "${prefix}p$i" master br0
    ip -n "$sw" link set "${prefix}p$i" up
    ip -n "$host" addr add "$subnet.$((i + 1))/24" dev eth0
    ip -n "$host" link set eth0 up
    if [ -n "$delay" ] && [ -n "$rate" ]; then
        ip netns exec "$host" tc qdisc add dev eth0 root handle 1: netem delay "$delay"
        ip netns exec "$host" tc qdisc add dev eth0 parent 1: handle 2: tbf rate "$rate" burst 256kb latency 50ms
    elif [ -n "$delay" ]; then
        ip netns exec "$host" tc qdisc add dev eth0 root netem delay "$delay"
    elif [ -n "$rate" ]; then
        ip netns exec "$host" tc qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 50ms
    fi
done
echo "hosts: $(for i in $(seq 0 $((k - 1))); do printf '%s=%s.%d ' "$prefix-h$i" "$subnet" $((i + 1)); done)"
