#!/usr/bin/env bash
# Cold-start benchmark (issue 12): in one sandbox run, interleaved,
#  - the hello guest, process start -> exit, under each guest-memory
#    backing (--huge-pages none, transparent, 2M);
#  - Linux (tools/build-kernel's vmlinux through PVH and its bzImage through
#    the 64-bit boot protocol; 1 and 2 vCPUs; the e2e initramfs, whose init
#    prints one line) from process start to that line, flint with each
#    backing against QEMU microvm;
# medians and spread (min-max), resident memory at the line, and KVM's exit
# counters by kind for one quiet Linux boot per VMM (debugfs, through
# bench/bootwatch). Needs KVM:
#   FLINT_LINUX_KERNEL_DIR=DIR tests/kvm-run bench/start.sh [BUILD_DIR]
# (tools/bench start does all of it). FLINT_BENCH_RUNS sets the runs per
# case (default 10). Sandbox seconds are 50-200x hardware: compare ratios.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
flint=$build/monitor/flint
watch=$build/bench/bootwatch
initrd=$build/tests/e2e/linux-initramfs.cpio.gz
runs=${FLINT_BENCH_RUNS:-10}
kdir=${FLINT_LINUX_KERNEL_DIR:?set FLINT_LINUX_KERNEL_DIR to tools/build-kernel\'s directory}
for f in "$flint" "$watch" "$initrd" "$kdir/vmlinux" "$kdir/bzImage"; do
  [[ -f $f ]] || { echo "bench/start.sh: $f is missing (tools/build, tools/build-kernel)" >&2; exit 1; }
done
grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug ||
  echo "bench/start.sh: no debugfs: exit counts will be missing" >&2
tmp=$(mktemp -d /tmp/flint-bench-start-XXXXXX)
hp=/proc/sys/vm/nr_hugepages
hp_old=$(cat "$hp")
trap 'echo "$hp_old" >"$hp" 2>/dev/null; rm -rf "$tmp"' EXIT
# 256 MiB guests on 2 MiB pages: 128 pages, given back at the end.
if ! { echo $((hp_old + 128)) >"$hp" && [ "$(cat "$hp")" -ge $((hp_old + 128)) ]; }; then
  echo "bench/start.sh: cannot reserve 128 huge pages: the 2M runs will fail" >&2
fi

marker=flint-bench-booted
args="console=ttyS0 panic=1 pci=off i8042.noaux i8042.nomux i8042.dumbkbd quiet flint.cmd=\"echo $marker\""
backings="none transparent 2M"

run_hello() { # backing run
  "$watch" "Hello from flint guest-shim" "$tmp/hello-$1.$2.log" "$flint" run --stats \
    --huge-pages "$1" >"$tmp/hello-$1.$2.res" 2>&1 || echo "hello $1 run $2 failed" >&2
}
run_flint() { # image vcpus backing run
  "$watch" "$marker" "$tmp/$1-$2-flint-$3.$4.log" "$flint" run --kernel "$kdir/$1" \
    --initrd "$initrd" --mem 256 --vcpus "$2" --cmdline "$args reboot=k" --stats \
    --huge-pages "$3" >"$tmp/$1-$2-flint-$3.$4.res" 2>&1 || echo "flint $1 $2 $3 run $4: marker not seen" >&2
}
run_qemu() { # image vcpus run
  "$watch" "$marker" "$tmp/$1-$2-qemu.$3.log" qemu-system-x86_64 \
    -M microvm,acpi=off,x-option-roms=off,rtc=off -accel kvm -cpu host -m 256 -smp "$2" \
    -nodefaults -no-user-config -display none -serial stdio -no-reboot \
    -kernel "$kdir/$1" -initrd "$initrd" -append "$args reboot=t" \
    >"$tmp/$1-$2-qemu.$3.res" 2>&1 || echo "qemu $1 $2 run $3: marker not seen" >&2
}

# Interleaved: every case once per round, so drifts in the shared
# machine's load hit every case alike.
for i in $(seq 1 "$runs"); do
  for b in $backings; do run_hello "$b" "$i"; done
  for img in vmlinux bzImage; do
    for n in 1 2; do
      for b in $backings; do run_flint "$img" "$n" "$b" "$i"; done
      run_qemu "$img" "$n" "$i"
    done
  done
  echo "round $i of $runs done" >&2
done

# "median min max" of one field over a case's runs, in ms.
stat_of() { # field files...
  local field=$1
  shift
  cat "$@" 2>/dev/null | sed -n "s/^$field //p" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "%.0f %.0f %.0f", v[int((NR + 1) / 2)] / 1000, v[1] / 1000, v[NR] / 1000; else printf "- - -" }'
}
rss_of() { # files...
  cat "$@" 2>/dev/null | sed -n "s/^rss_kib //p" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'
}
row() { # label field glob
  local s
  s=$(stat_of "$2" $3)
  set -- "$1" $s "$(rss_of $3)"
  printf '| %s | %s | %s-%s | %s |\n' "$1" "$2" "$3" "$4" "$5"
}

echo
echo "== hello guest, process start -> exit (ms; median of $runs, min-max), flint RSS at the hello line (KiB)"
echo "| case | median | spread | RSS KiB |"
echo "| --- | --- | --- | --- |"
for b in $backings; do row "flint --huge-pages $b" exit_us "$tmp/hello-$b.*.res"; done

echo
echo "== Linux, process start -> init's line (ms; median of $runs, min-max), RSS at that line (KiB)"
echo "| case | median | spread | RSS KiB |"
echo "| --- | --- | --- | --- |"
for img in vmlinux bzImage; do
  for n in 1 2; do
    for b in $backings; do row "$img, $n vCPU, flint $b" boot_us "$tmp/$img-$n-flint-$b.*.res"; done
    row "$img, $n vCPU, QEMU microvm" boot_us "$tmp/$img-$n-qemu.*.res"
  done
done

echo
echo "== KVM exits up to init's line, vmlinux and bzImage, 1 vCPU, run 1 (debugfs)"
cols="vmlinux-1-flint-none vmlinux-1-flint-transparent vmlinux-1-flint-2M vmlinux-1-qemu bzImage-1-flint-none bzImage-1-flint-transparent bzImage-1-flint-2M bzImage-1-qemu"
printf '| counter |'; for c in $cols; do printf ' %s |' "$c"; done; echo
printf '| --- |'; for c in $cols; do printf ' --- |'; done; echo
for stat in exits io_exits mmio_exits halt_exits irq_exits irq_window_exits insn_emulation \
  irq_injections pf_fixed pages_4k pages_2m; do
  printf '| %s |' "$stat"
  for c in $cols; do printf ' %s |' "$(sed -n "s/^kvm $stat //p" "$tmp/$c.1.res")"; done
  echo
done

echo
echo "== flint boot phases, run 1 (--stats)"
for c in hello-none hello-transparent vmlinux-1-flint-none vmlinux-1-flint-transparent \
  bzImage-1-flint-none bzImage-1-flint-transparent; do
  echo "-- $c"
  sed -n '/peak resident/p;/boot phases/,/guest_exit/p;/vm exits:/,/device accesses/p' "$tmp/$c.1.log"
done
