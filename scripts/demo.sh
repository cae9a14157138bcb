#!/usr/bin/env bash
# The demo on local defaults: install and build, boot the test guest with a NIC, snapshot
# it, restore it in a new process, then live-migrate it between two local "hosts" (network
# namespaces), its UDP echo answering on each host's tap.
# Usage: scripts/demo.sh   (as root on Debian 12 with /dev/kvm)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build >/dev/null

godwit=$PWD/build/cli/godwit
guest=$PWD/build/tests/guest/godwit-test-guest.elf
work=$(mktemp -d /tmp/godwit-demo.XXXXXX)
ns_a=gwdemo$$-a ns_b=gwdemo$$-b
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del "$ns_a" 2>/dev/null || true
	ip netns del "$ns_b" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

api() { # api SOCKET JSON: one request, one reply
	python3 -c 'import socket,sys
s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode()+b"\n")
print(s.makefile().readline().strip())' "$1" "$2"
}
wait_hb() { # wait_hb FILE N: until FILE holds N heartbeat lines
	for _ in $(seq 600); do
		n=$(grep -c '^HB ' "$1" 2>/dev/null || true)
		[ "${n:-0}" -ge "$2" ] && return 0
		sleep 0.1
	done
	echo "no heartbeat in $1" >&2
	return 1
}
last_hb() { grep '^HB ' "$1" | tail -1; }
echo_udp() { # echo_udp NS: 100 datagrams to the guest's UDP echo from host NS
	ip netns exec "$1" python3 -c 'import socket
s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); ok=0
for i in range(100):
    m=b"demo %d " % i * 20; s.sendto(m, ("10.204.0.2", 7)); ok += s.recv(4096) == m
print("   UDP echo of the guest at 10.204.0.2, from this host: %d of 100 back" % ok)'
}

echo "== 1. two hosts: network namespaces $ns_a (10.203.0.1) and $ns_b (10.203.0.2) on a veth,"
echo "      each with a tap gwtap (10.204.0.1/24) for the guest's NIC"
ip netns add "$ns_a"; ip netns add "$ns_b"
ip link add "${ns_a}v" type veth peer name "${ns_b}v"
ip link set "${ns_a}v" netns "$ns_a"; ip link set "${ns_b}v" netns "$ns_b"
ip -n "$ns_a" addr add 10.203.0.1/24 dev "${ns_a}v"; ip -n "$ns_b" addr add 10.203.0.2/24 dev "${ns_b}v"
for ns in "$ns_a" "$ns_b"; do
	ip -n "$ns" link set lo up; ip -n "$ns" link set "${ns}v" up
	ip -n "$ns" tuntap add dev gwtap mode tap; ip -n "$ns" addr add 10.204.0.1/24 dev gwtap
	ip -n "$ns" link set gwtap up
done

echo "== 2. boot the test guest on host A: 2 vCPUs, 512 MiB, a 64 MiB working set rewritten"
echo "      at 32 MiB/s, a disk, and a NIC on tap gwtap (address 10.204.0.2, UDP echo)"
truncate -s 256M disk.img
ip netns exec "$ns_a" "$godwit" run --kernel "$guest" --mem 512M --cpus 2 --disk disk.img \
	--net tap=gwtap --api vm1.sock --console vm1.log \
	--cmdline "mb=64 rate=32 verify=1 disk=w:0:2048:42 ip=10.204.0.2" &
pids+=($!)
wait_hb vm1.log 5
echo "   $(last_hb vm1.log)"
echo_udp "$ns_a"

echo "== 3. snapshot it twice while it runs (full, then incremental) into an encrypted repository"
"$godwit" repo init --repo repo --key-file repo.key >/dev/null
"$godwit" snapshot --api vm1.sock --repo repo --key-file repo.key
sleep 1
snap=$("$godwit" snapshot --api vm1.sock --repo repo --key-file repo.key)
"$godwit" images list --repo repo --key-file repo.key
api vm1.sock '{"cmd":"quit"}' >/dev/null
wait
pids=()
echo "   the original VM is gone; its last heartbeat: $(last_hb vm1.log)"

echo "== 4. restore snapshot $snap on host A: the guest goes on where it was, NIC included"
ip netns exec "$ns_a" "$godwit" restore --repo repo --key-file repo.key --snapshot "$snap" --disk disk-a.img \
	--net tap=gwtap --api a.sock --console a.log &
pids+=($!)
wait_hb a.log 5
echo "   $(head -1 a.log)"
echo "   $(last_hb a.log)"
echo_udp "$ns_a"

echo "== 5. live-migrate it from host A to host B over TLS 1.3 (pre-shared key)"
openssl rand -hex 32 > psk; chmod 600 psk
ip netns exec "$ns_b" "$godwit" receive --listen 10.203.0.2:7070 --psk-file psk \
	--disk disk-b.img --net tap=gwtap --api b.sock --console b.log 2>/dev/null &
pids+=($!)
sleep 0.5
"$godwit" migrate --api a.sock --to 10.203.0.2:7070 --psk-file psk --with-disk
wait_hb b.log 5
echo "   on host B: $(last_hb b.log)"
echo_udp "$ns_b"
api b.sock '{"cmd":"quit"}' >/dev/null
wait || true
echo "== done: same boot id throughout, counter always growing, e=0 (no corrupted page),"
echo "   and the guest's NIC answered on each host (udp= counts every echo it made)"
