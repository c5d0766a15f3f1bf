#!/usr/bin/env bash
# virtio-vsock benchmark: guest-shim's vsockecho under flint (--vsock, the
# hybrid Unix socket scheme, bridged by flint's VMM thread in userspace) and
# under QEMU microvm with vhost-vsock-device (the host kernel's vhost_vsock
# moves the packets: no userspace on the data path), in one run, printed as
# flint/QEMU ratios. So this compares flint's userspace bridge with
# in-kernel vhost, not two userspace devices. bench/vsockclient is the host
# side: a Unix socket ("CONNECT <port>") for flint, AF_VSOCK for QEMU.
# Needs KVM and root (/dev/vhost-vsock): run it as
#   tests/kvm-run bench/vsock.sh [BUILD_DIR]
# (tools/bench vsock does that). Only the ratios and counts mean something
# in the nested sandbox.
#
# Per VMM: guest to host (vsockecho connect= sends to a host listener),
# round trips of 64 B and 4 KiB one at a time on the echo port, an echoed
# stream (both directions at once) and host to guest (the sink port).
# Environment: FLINT_BENCH_RR round trips per size (default 2000),
# FLINT_BENCH_MIB MiB per stream (default 32).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
flint=$build/monitor/flint
guest=$build/guest-shim/vsockecho.elf
client=$build/bench/vsockclient
rr_count=${FLINT_BENCH_RR:-2000}
mib=${FLINT_BENCH_MIB:-32}
cid=3
echo_port=1234
sink_port=1235
ctl_port=9999
g2h_port=5000
uds=/tmp/flint-vsock-bench-$$.sock
results=$(mktemp /tmp/flint-vsock-bench-XXXXXX.txt)
vmlog=$(mktemp /tmp/flint-vsock-bench-XXXXXX.log)
acclog=$(mktemp /tmp/flint-vsock-bench-XXXXXX.acc)
vm_pid=
acc_pid=

cleanup() {
  local p
  for p in $vm_pid $acc_pid; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -f "$uds" "${uds}_$g2h_port" "$results" "$vmlog" "$acclog"
}
trap cleanup EXIT

[ -e /dev/vhost-vsock ] || modprobe vhost_vsock 2>/dev/null || true
[ -e /dev/vhost-vsock ] || { echo "bench/vsock.sh: no /dev/vhost-vsock (modprobe vhost_vsock)" >&2; exit 1; }

# Guest to host first: the listener must exist before the guest boots,
# as vsockecho connects once at start.
start_listener() {
  "$client" "$1" "$g2h_port" accept "$mib" >"$acclog" 2>&1 &
  acc_pid=$!
  for _ in $(seq 1 100); do grep -q listening "$acclog" && return; sleep 0.1; done
  echo "bench/vsock.sh: the guest-to-host listener did not start" >&2
  cat "$acclog" >&2
  exit 1
}

# One client run, its line tagged with the VMM's name; a failure is
# reported and the run goes on. $1 name, the rest vsockclient's arguments.
run_client() {
  local name=$1
  shift
  "$client" "$@" | sed "s/^/$name /" | tee -a "$results" || echo "$name: vsockclient $* failed" >&2
}

# $1 name, $2 address (unix:PATH or vsock:CID).
measure() {
  local name=$1 addr=$2
  wait "$acc_pid" || echo "$name: guest to host failed" >&2
  acc_pid=
  grep -v listening "$acclog" | sed "s/^/$name /" | tee -a "$results"
  for _ in $(seq 1 300); do
    "$client" "$addr" "$echo_port" rr 64 1 >/dev/null 2>&1 && break
    sleep 0.1
  done
  run_client "$name" "$addr" "$echo_port" rr 64 "$rr_count"
  run_client "$name" "$addr" "$echo_port" rr 4096 "$rr_count"
  run_client "$name" "$addr" "$echo_port" stream "$mib"
  run_client "$name" "$addr" "$sink_port" sink "$mib"
}

# vsockecho's control port ends the VM with status 0 (QEMU's exit device
# makes that 1); vsockecho prints its own counters first.
stop_guest() {
  "$client" "$1" "$ctl_port" say $'exit 0\n' || true
  for _ in $(seq 1 100); do kill -0 "$vm_pid" 2>/dev/null || break; sleep 0.1; done
  kill -TERM "$vm_pid" 2>/dev/null || true
  wait "$vm_pid" 2>/dev/null || true
  vm_pid=
}

cmdline="port=$echo_port sink=$sink_port ctl=$ctl_port connect=$g2h_port bytes=$((mib << 20))"

echo "== flint (userspace: hybrid Unix socket bridge on the VMM thread)"
rm -f "$uds"
start_listener "unix:$uds"
"$flint" run --kernel "$guest" --mem 64 --vsock "$cid,$uds" --cmdline "$cmdline" --stats \
  >"$vmlog" 2>&1 &
vm_pid=$!
measure flint "unix:$uds"
stop_guest "unix:$uds"
grep -E 'vsockecho: (rx|connect|FAIL)' "$vmlog" || true
sed -n '/^flint stats:/,$p' "$vmlog"

# acpi=off and force-legacy=false as in bench/blk.sh (interrupts through
# the IOAPIC, virtio 1.x registers).
echo "== qemu microvm (in-kernel: vhost-vsock-device, guest-cid=$cid)"
: >"$vmlog"
start_listener "vsock:$cid"
qemu-system-x86_64 -M microvm,acpi=off,x-option-roms=off,rtc=off \
  -global virtio-mmio.force-legacy=false -accel kvm -cpu host -m 64 \
  -nodefaults -no-user-config -display none -serial "file:$vmlog" -no-reboot \
  -device isa-debug-exit,iobase=0xf4,iosize=4 \
  -device vhost-vsock-device,guest-cid="$cid" \
  -kernel "$guest" -append "$cmdline" &
vm_pid=$!
measure qemu "vsock:$cid"
stop_guest "vsock:$cid"
grep -E 'vsockecho: (rx|connect|FAIL)' "$vmlog" || true

echo "== ratios (above 1 means flint is better: latency qemu/flint, throughput flint/qemu)"
get() { sed -n "s/^$1 vsockclient: $2 .*$3=\([0-9.]*\).*/\1/p" "$results" | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "n/a" }'; }
for size in 64 4096; do
  for stat in mean_us p50_us; do
    f=$(get flint "rr size=$size" "$stat")
    q=$(get qemu "rr size=$size" "$stat")
    printf 'rr %4s B %-7s flint %8s us   qemu %8s us   ratio %s\n' "$size" "${stat%_us}" \
      "${f:-?}" "${q:-?}" "$(ratio "$q" "$f")"
  done
done
for mode in accept stream sink; do
  case $mode in
  accept) what="guest->host" ;;
  stream) what="echo both ways" ;;
  sink) what="host->guest" ;;
  esac
  f=$(get flint "$mode" mbit_s)
  q=$(get qemu "$mode" mbit_s)
  printf '%-15s %3s MiB  flint %8s Mbit/s   qemu %8s Mbit/s   ratio %s\n' "$what" "$mib" \
    "${f:-?}" "${q:-?}" "$(ratio "$f" "$q")"
done
