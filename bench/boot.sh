#!/usr/bin/env bash
# Boot benchmark: the same Linux kernel (tools/build-kernel's vmlinux, PVH
# entry) and initramfs (build/tests/e2e/linux-initramfs.cpio.gz) under flint
# and under QEMU microvm, in one run: time from process start to the guest's
# init (a line it prints on the serial console, caught by bench/bootwatch)
# and KVM's exit counters for the VM at that moment (debugfs). Needs KVM:
#   FLINT_LINUX_KERNEL_DIR=DIR tests/kvm-run bench/boot.sh [BUILD_DIR]
# (tools/bench boot does all of it). Timings inside the nested sandbox are
# 50-200x slower than hardware; the ratio and the exit counts are what carry
# over.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
flint=$build/monitor/flint
watch=$build/bench/bootwatch
initrd=$build/tests/e2e/linux-initramfs.cpio.gz
runs=${FLINT_BENCH_RUNS:-5}
kdir=${FLINT_LINUX_KERNEL_DIR:?set FLINT_LINUX_KERNEL_DIR to tools/build-kernel\'s directory}
kernel=$kdir/vmlinux
for f in "$flint" "$watch" "$initrd" "$kernel"; do
  [[ -f $f ]] || { echo "bench/boot.sh: $f is missing (tools/build, tools/build-kernel)" >&2; exit 1; }
done
grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug ||
  echo "bench/boot.sh: no debugfs: exit counts will be missing" >&2
tmp=$(mktemp -d /tmp/flint-bench-boot-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

marker=flint-bench-booted
# The same command line for both, quiet so that the console does not
# dominate; flint resets through the i8042 (reboot=k), microvm has none and
# ends with a triple fault (reboot=t, -no-reboot). Both happen after the mark.
args="console=ttyS0 panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd quiet flint.cmd=\"echo $marker\""

run_flint() {
  "$watch" "$marker" "$tmp/flint.$1.log" "$flint" run --kernel "$kernel" --initrd "$initrd" \
    --mem 256 --cmdline "$args reboot=k" --boot-timer --stats
}
# The same with guest memory on 2 MiB huge pages (--huge-pages 2M,
# Firecracker's huge_pages "2M"): KVM can then map the guest with 2 MiB
# pages, as it does QEMU's anonymous memory with transparent huge pages.
run_flint2m() {
  "$watch" "$marker" "$tmp/flint2m.$1.log" "$flint" run --kernel "$kernel" --initrd "$initrd" \
    --mem 256 --cmdline "$args reboot=k" --boot-timer --stats --huge-pages 2M
}
hp=/proc/sys/vm/nr_hugepages
hp_old=$(cat "$hp")
trap 'echo "$hp_old" >"$hp" 2>/dev/null; rm -rf "$tmp"' EXIT
if ! { echo $((hp_old + 128)) >"$hp" && [ "$(cat "$hp")" -ge $((hp_old + 128)) ]; }; then
  echo "bench/boot.sh: cannot reserve 128 huge pages: the --huge-pages 2M runs will fail" >&2
fi
run_qemu() {
  "$watch" "$marker" "$tmp/qemu.$1.log" qemu-system-x86_64 \
    -M microvm,acpi=off,x-option-roms=off,rtc=off -accel kvm -cpu host -m 256 -smp 1 \
    -nodefaults -no-user-config -display none -serial stdio -no-reboot \
    -kernel "$kernel" -initrd "$initrd" -append "$args reboot=t"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }

for i in $(seq 1 "$runs"); do
  run_flint "$i" >"$tmp/flint.$i.res" || echo "flint run $i: marker not seen" >&2
  run_flint2m "$i" >"$tmp/flint2m.$i.res" || echo "flint --huge-pages 2M run $i: marker not seen" >&2
  run_qemu "$i" >"$tmp/qemu.$i.res" || echo "qemu run $i: marker not seen" >&2
  printf 'run %d: flint %s us, flint 2M %s us, qemu %s us\n' "$i" \
    "$(sed -n 's/^boot_us //p' "$tmp/flint.$i.res")" \
    "$(sed -n 's/^boot_us //p' "$tmp/flint2m.$i.res")" "$(sed -n 's/^boot_us //p' "$tmp/qemu.$i.res")"
done

f_med=$(cat "$tmp"/flint.*.res | sed -n 's/^boot_us //p' | median)
q_med=$(cat "$tmp"/qemu.*.res | sed -n 's/^boot_us //p' | median)
h_med=$(cat "$tmp"/flint2m.*.res | sed -n 's/^boot_us //p' | median)
bt_med=$(cat "$tmp"/flint.*.log | sed -n 's/.*Guest-boot-time = *\([0-9]*\) us.*/\1/p' | median)
echo
echo "== process start -> guest init, median of $runs (us)"
printf 'flint %10s   (its boot timer: %s)\n' "$f_med" "$bt_med"
printf 'flint --huge-pages 2M %10s\n' "$h_med"
printf 'qemu  %10s\n' "$q_med"
awk -v f="$f_med" -v q="$q_med" 'BEGIN { if (f > 0) printf "ratio qemu/flint %.2f (above 1: flint boots faster)\n", q / f }'
awk -v f="$h_med" -v q="$q_med" 'BEGIN { if (f > 0) printf "ratio qemu/flint-2M %.2f\n", q / f }'

echo
echo "== KVM exits up to guest init (run 1; /sys/kernel/debug/kvm)"
printf '%-22s %10s %10s %10s\n' counter flint flint-2M qemu
for stat in exits io_exits mmio_exits halt_exits irq_exits irq_window_exits signal_exits \
  insn_emulation hypercalls irq_injections pf_fixed pages_4k pages_2m preemption_reported; do
  f=$(sed -n "s/^kvm $stat //p" "$tmp/flint.1.res")
  h=$(sed -n "s/^kvm $stat //p" "$tmp/flint2m.1.res")
  q=$(sed -n "s/^kvm $stat //p" "$tmp/qemu.1.res")
  printf '%-22s %10s %10s %10s\n' "$stat" "${f:--}" "${h:--}" "${q:--}"
done

echo
echo "== flint's own count of exits to user space, whole run 1 (--stats)"
sed -n '/vm exits:/,$p' "$tmp/flint.1.log"
