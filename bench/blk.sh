#!/usr/bin/env bash
# virtio-blk benchmark: the blkbench guest on the same image under flint and
# under QEMU microvm (virtio-blk-device, aio=io_uring), in one run, printed
# as flint/QEMU ratios. Needs KVM: run it as
#   tests/kvm-run bench/blk.sh [BUILD_DIR]
# (tools/bench does that). Timings inside the nested sandbox are 50-200x
# slower than hardware; only the ratios mean something.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
flint=$build/monitor/flint
guest=$build/bench/blkbench.elf
img=$(mktemp /tmp/flint-bench-XXXXXX.img)
trap 'rm -f "$img"' EXIT
mib=${FLINT_BENCH_MIB:-64}
ops=${FLINT_BENCH_OPS:-2000}
cmdline="ops=$ops mib=$mib"

# 256 MiB of non-zero data so reads move real pages.
dd if=/dev/urandom of="$img" bs=1M count=256 status=none

echo "== flint"
flint_out=$("$flint" run --kernel "$guest" --mem 256 --drive "$img" --cmdline "$cmdline" --stats 2>&1)
echo "$flint_out" | grep -E 'blkbench|vm exits|virtio-blk'

# acpi=off: microvm then appends virtio_mmio.device= entries to the command
# line itself, and its interrupts reach the guest's IOAPIC routing (with ACPI
# on, guest-shim, which reads no ACPI tables, gets none). force-legacy=false
# gives virtio 1.x registers.
echo "== qemu microvm"
qemu_out=$(qemu-system-x86_64 -M microvm,acpi=off,x-option-roms=off,rtc=off \
  -global virtio-mmio.force-legacy=false -accel kvm -cpu host -m 256 \
  -nodefaults -no-user-config -display none -serial stdio -no-reboot \
  -device isa-debug-exit,iobase=0xf4,iosize=4 \
  -drive id=d0,file="$img",format=raw,if=none,aio=io_uring,cache=writeback \
  -device virtio-blk-device,drive=d0 \
  -kernel "$guest" -append "$cmdline" 2>&1 || true)
echo "$qemu_out" | grep -E 'blkbench'

echo "== ratios (flint / qemu; above 1 means flint is faster)"
for t in randread-4k-qd1 randread-4k-qd32 seqread-128k-qd8 seqwrite-128k-qd8; do
  f=$(echo "$flint_out" | sed -n "s/.*blkbench: $t .*iops=\([0-9]*\).*/\1/p")
  q=$(echo "$qemu_out" | sed -n "s/.*blkbench: $t .*iops=\([0-9]*\).*/\1/p")
  if [ -n "$f" ] && [ -n "$q" ] && [ "$q" -gt 0 ]; then
    printf '%-20s flint %8s IOPS   qemu %8s IOPS   ratio %s\n' "$t" "$f" "$q" \
      "$(awk -v a="$f" -v b="$q" 'BEGIN { printf "%.2f", a / b }')"
  else
    echo "$t: missing result (flint '$f', qemu '$q')"
  fi
done
