#!/usr/bin/env bash
# virtio-net benchmark: guest-shim's netecho behind a tap under flint and
# under QEMU microvm (virtio-net-device, userspace tap backend, vhost=off as
# flint is userspace too), in one run, printed as flint/QEMU ratios. UDP
# round-trip latency and echoed throughput from bench/netclient in a
# network namespace of its own. Needs KVM and root: run it as
#   tests/kvm-run bench/net.sh [BUILD_DIR]
# (tools/bench net does that). Only the ratios mean something in the
# nested sandbox.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
flint=$build/monitor/flint
guest=$build/guest-shim/netecho.elf
client=$build/bench/netclient
ns=flintbench$$
tap=fbtap0
host_ip=10.0.7.1
guest_ip=10.0.7.2
port=7
rr_count=${FLINT_BENCH_RR:-2000}
stream_count=${FLINT_BENCH_STREAM:-20000}
vm_pid=

cleanup() {
  [ -n "$vm_pid" ] && kill "$vm_pid" 2>/dev/null && wait "$vm_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$ns"
nsx() { ip netns exec "$ns" "$@"; }
nsx ip link set lo up
nsx ip tuntap add dev "$tap" mode tap
nsx ip addr add "$host_ip/24" dev "$tap"
nsx ip link set "$tap" up

# Wait until the guest answers a round trip, then measure.
measure() {
  local name=$1 i
  for i in $(seq 1 300); do
    nsx "$client" rr "$guest_ip" "$port" 64 1 >/dev/null 2>&1 && break
    sleep 0.1
  done
  nsx "$client" rr "$guest_ip" "$port" 64 "$rr_count" | sed "s/^/$name /"
  nsx "$client" stream "$guest_ip" "$port" 1400 "$stream_count" 32 | sed "s/^/$name /"
}

# netecho ends the VM (status 0) on "netecho exit 0"; flint then prints
# its --stats.
stop_guest() {
  nsx bash -c "printf 'netecho exit 0' >/dev/udp/$guest_ip/$port" || true
  for _ in $(seq 1 100); do kill -0 "$vm_pid" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$vm_pid" 2>/dev/null || true
  wait "$vm_pid" 2>/dev/null || true
  vm_pid=
}

results=$(mktemp)
cmdline="ip=$guest_ip"

echo "== flint"
nsx "$flint" run --kernel "$guest" --mem 64 --net "$tap" --cmdline "$cmdline" --stats \
  >/tmp/flint-net-bench.log 2>&1 &
vm_pid=$!
measure flint | tee -a "$results"
stop_guest
grep -E 'vm exits|virtio-net' /tmp/flint-net-bench.log || true

echo "== qemu microvm"
nsx qemu-system-x86_64 -M microvm,acpi=off,x-option-roms=off,rtc=off \
  -global virtio-mmio.force-legacy=false -accel kvm -cpu host -m 64 \
  -nodefaults -no-user-config -display none -serial file:/tmp/qemu-net-bench.log -no-reboot \
  -device isa-debug-exit,iobase=0xf4,iosize=4 \
  -netdev tap,id=n0,ifname="$tap",script=no,downscript=no,vhost=off \
  -device virtio-net-device,netdev=n0 \
  -kernel "$guest" -append "$cmdline" &
vm_pid=$!
measure qemu | tee -a "$results"
stop_guest

echo "== ratios (above 1 means flint is better)"
get() { sed -n "s/^$1 netclient: $2 .*$3=\([0-9.]*\).*/\1/p" "$results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
printf 'udp rr 64 B mean latency: flint %s us, qemu %s us, ratio (qemu/flint) %s\n' \
  "$(get flint rr mean_us)" "$(get qemu rr mean_us)" "$(ratio "$(get qemu rr mean_us)" "$(get flint rr mean_us)")"
printf 'udp stream 1400 B: flint %s Mbit/s, qemu %s Mbit/s, ratio (flint/qemu) %s\n' \
  "$(get flint stream mbit_s)" "$(get qemu stream mbit_s)" "$(ratio "$(get flint stream mbit_s)" "$(get qemu stream mbit_s)")"
rm -f "$results"
