#!/usr/bin/env bash
# bzImage boot benchmark: tools/build-kernel's bzImage and the test
# initramfs, from process start to the first line init prints, under
#   flint --no-kernel-unpack   the bzImage decompresses itself in the guest
#   flint --no-kernel-cache    flint unpacks the payload on the host, every boot
#   flint                      the unpacked vmlinux from the cache (primed once)
#   flint vmlinux              the same kernel's vmlinux: what the cache should match
#   QEMU microvm               the same bzImage (its linuxboot option ROM)
# interleaved, in one run. Needs KVM:
#   FLINT_LINUX_KERNEL_DIR=DIR tests/kvm-run bench/bzimage.sh [BUILD_DIR]
# (tools/bench bzimage does all of it). Sandbox seconds are 50-200x
# hardware; the ratios are what carry over.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
flint=$build/monitor/flint
watch=$build/bench/bootwatch
initrd=$build/tests/e2e/linux-initramfs.cpio.gz
runs=${FLINT_BENCH_RUNS:-5}
kdir=${FLINT_LINUX_KERNEL_DIR:?set FLINT_LINUX_KERNEL_DIR to tools/build-kernel\'s directory}
kernel=$kdir/bzImage
for f in "$flint" "$watch" "$initrd" "$kernel"; do
  [[ -f $f ]] || { echo "bench/bzimage.sh: $f is missing (tools/build, tools/build-kernel)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/flint-bench-bzimage-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export FLINT_KERNEL_CACHE=$tmp/cache

marker=flint-bench-booted
args="console=ttyS0 panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd quiet flint.cmd=\"echo $marker\""

run_flint() { # NAME RUN [flint options]
  local name=$1 i=$2
  shift 2
  "$watch" "$marker" "$tmp/$name.$i.log" "$flint" run --kernel "$kernel" --initrd "$initrd" \
    --mem 256 --cmdline "$args reboot=k" --stats --level Info "$@" >"$tmp/$name.$i.res" ||
    echo "$name run $i: marker not seen" >&2
}
run_qemu() {
  "$watch" "$marker" "$tmp/qemu.$1.log" qemu-system-x86_64 \
    -M microvm,acpi=off,rtc=off -accel kvm -cpu host -m 256 -smp 1 \
    -nodefaults -no-user-config -display none -serial stdio -no-reboot \
    -kernel "$kernel" -initrd "$initrd" -append "$args reboot=t" >"$tmp/qemu.$1.res" ||
    echo "qemu run $1: marker not seen" >&2
}
us() { sed -n 's/^boot_us //p' "$1" 2>/dev/null; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }

grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug ||
  echo "bench/bzimage.sh: no debugfs: KVM counters will be missing" >&2
run_flint prime 0 # fills the cache
grep -h "kernel .*:" "$tmp/prime.0.log" || true
names="inguest hostunpack cached vmlinux qemu"
for i in $(seq 1 "$runs"); do
  run_flint inguest "$i" --no-kernel-unpack
  run_flint hostunpack "$i" --no-kernel-cache
  run_flint cached "$i"
  kernel=$kdir/vmlinux run_flint vmlinux "$i"
  run_qemu "$i"
  printf 'run %d:' "$i"
  for n in $names; do printf ' %s %s us,' "$n" "$(us "$tmp/$n.$i.res")"; done
  echo
done
echo
echo "== process start -> first init line, median of $runs (us) [min max]"
for n in $names; do
  vals=$(for i in $(seq 1 "$runs"); do us "$tmp/$n.$i.res"; done)
  printf '%-11s %10s  [%s %s]\n' "$n" "$(echo "$vals" | median)" \
    "$(echo "$vals" | sort -n | head -n 1)" "$(echo "$vals" | sort -n | tail -n 1)"
done
grep -h "unpacked ELF" "$tmp/cached.1.log" | head -n 1 || true
echo
echo "== KVM counters up to the init line, run 1 (/sys/kernel/debug/kvm)"
printf '%-16s' counter; for n in $names; do printf ' %11s' "$n"; done; echo
for stat in exits io_exits mmio_exits pf_fixed irq_injections; do
  printf '%-16s' "$stat"
  for n in $names; do v=$(sed -n "s/^kvm $stat //p" "$tmp/$n.1.res"); printf ' %11s' "${v:--}"; done
  echo
done
echo
echo "== flint's exits to user space, run 1 (--stats)"
for n in inguest cached; do echo "-- $n"; sed -n '/vm exits:/,/device accesses/p' "$tmp/$n.1.log"; done
