#!/usr/bin/env bash
# Snapshot benchmark (shim guest): process start to the vCPU's first
# KVM_RUN (flint --stats) for a cold boot of the snapmem guest and for a
# restore of a snapshot of it (File backend: the memory file mapped
# MAP_PRIVATE), at 128 MiB and 2 GiB of guest RAM, plus the memory file's
# size on disk. Shows that restore does not grow with RAM. Needs KVM:
#   tests/kvm-run bench/snapshot.sh [BUILD_DIR]      (tools/bench snapshot)
# Timings in the nested sandbox are 50-200x slower than hardware: compare
# the columns, not the numbers with other machines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
flint=$build/monitor/flint
guest=$build/tests/e2e/guests/snapmem.elf
runs=${FLINT_BENCH_RUNS:-3}
for f in "$flint" "$guest"; do
  [[ -f $f ]] || { echo "bench/snapshot.sh: $f is missing (tools/build)" >&2; exit 1; }
done
tmp=$(mktemp -d /tmp/flint-bench-snap-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }
first_run_us() { sed -n 's/.*process start -> first KVM_RUN: \([0-9]*\) us.*/\1/p' "$1"; }

# A snapshot taken after the guest's first round (SIGUSR1); the restored
# guest finishes its second round and exits.
take() {
  local mib=$1 log=$tmp/take.$1.log
  "$flint" run --kernel "$guest" --mem "$mib" --cmdline "console=ttyS0 rounds=2 ms=1500" \
    --snapshot-on-signal "$tmp/state.$mib,$tmp/mem.$mib" >"$log" 2>&1 &
  local pid=$! i
  for i in $(seq 1 6000); do grep -q 'round 1 ok' "$log" && break; sleep 0.01; done
  kill -USR1 "$pid"
  wait "$pid" || { echo "snapshot of $mib MiB failed:" >&2; cat "$log" >&2; exit 1; }
}

printf '%-10s %14s %14s %14s\n' "RAM" "cold boot us" "restore us" "mem file on disk"
for mib in 128 2048; do
  take "$mib"
  for i in $(seq 1 "$runs"); do
    "$flint" run --kernel "$guest" --mem "$mib" --cmdline "console=ttyS0 rounds=0" --stats \
      >"$tmp/cold.$mib.$i" 2>&1 || true
    "$flint" run --restore "$tmp/state.$mib" --mem-file "$tmp/mem.$mib" --stats \
      >"$tmp/restore.$mib.$i" 2>&1 || { cat "$tmp/restore.$mib.$i" >&2; exit 1; }
    grep -q 'snapmem: done' "$tmp/restore.$mib.$i" || { echo "restore $i: no guest" >&2; exit 1; }
  done
  cold=$(for i in $(seq 1 "$runs"); do first_run_us "$tmp/cold.$mib.$i"; done | median)
  rest=$(for i in $(seq 1 "$runs"); do first_run_us "$tmp/restore.$mib.$i"; done | median)
  printf '%-10s %14s %14s %14s\n' "$mib MiB" "$cold" "$rest" "$(du -h "$tmp/mem.$mib" | cut -f1)"
done
echo "(median of $runs; process start -> vCPU 0's first KVM_RUN)"
