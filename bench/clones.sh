#!/usr/bin/env bash
# Clone and prefetch benchmark (shim guest clonemem). Needs KVM:
#   tests/kvm-run bench/clones.sh [BUILD_DIR]      (tools/bench clones)
#
# 1. Clones that share memory: one snapshot of a 128 MiB guest that filled
#    32 MiB; FLINT_CLONES (50) flint processes restore it at once (File
#    backend: the memory file mapped MAP_PRIVATE); each clone writes
#    1 MiB (256 pages), reads its 32 MiB, answers and sleeps. Then, from
#    /proc/PID/smaps_rollup and smaps: total PSS against total RSS (what
#    the clones would cost if they shared nothing), and per clone the
#    private memory (Private_Clean + Private_Dirty) of the guest mapping
#    against the pages the guest wrote, and of the rest (flint's own).
# 2. Working-set prefetch: a snapshot of the same guest that exits after
#    its answer; one restore records STATE.ws (--record-working-set),
#    then FLINT_BENCH_RUNS (3) restores without and with --prefetch:
#    KVM's page-fault counters (debugfs) and the process's page faults
#    over the run, process start to the guest's answer (which includes
#    the rest of the guest's wait, the same in both), and the guest's own
#    time for its writes and reads after the restore.
# Timings in the nested sandbox are 50-200x slower than hardware: compare
# the columns, not the numbers with other machines.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
flint=$build/monitor/flint
guest=$build/tests/e2e/guests/clonemem.elf
clones=${FLINT_CLONES:-50}
runs=${FLINT_BENCH_RUNS:-3}
mib=128 fill=32 write_kib=1024
for f in "$flint" "$guest"; do
  [[ -f $f ]] || { echo "bench/clones.sh: $f is missing (tools/build)" >&2; exit 1; }
done
grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug ||
  echo "bench/clones.sh: no debugfs: KVM's fault counts will be missing" >&2
tmp=$(mktemp -d /tmp/flint-bench-clones-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# take NAME STAY: a snapshot taken while the guest waits after its fill.
take() {
  local name=$1 stay=$2 log=$tmp/take.$1.log i
  "$flint" run --kernel "$guest" --mem "$mib" \
    --cmdline "console=ttyS0 mib=$fill write=$write_kib ms=4000 stay=$stay after=3000" \
    --snapshot-on-signal "$tmp/$name.state,$tmp/$name.mem" >"$log" 2>&1 &
  local pid=$!
  for i in $(seq 1 6000); do grep -q 'clonemem: filled' "$log" && break; sleep 0.01; done
  kill -USR1 "$pid"
  wait "$pid" || { echo "snapshot $name failed:" >&2; cat "$log" >&2; exit 1; }
}

# kib FILE FIELD: a smaps_rollup field in KiB.
kib() { awk -v f="$2:" '$1 == f { print $2 }' "$1"; }
# guest_kib SMAPS MEMFILE FIELD: that field summed over the guest mapping.
guest_kib() {
  awk -v m="$2" -v f="$3:" '/^[0-9a-f]+-[0-9a-f]+ / { in_map = ($NF == m) }
    in_map && $1 == f { s += $2 } END { print s + 0 }' "$1"
}

if ((clones > 0)); then
echo "== $clones clones of one snapshot ($mib MiB guest, $fill MiB filled; each writes $write_kib KiB, reads $fill MiB)"
take clone 1
start=$(date +%s.%N)
for i in $(seq 1 "$clones"); do
  "$flint" run --restore "$tmp/clone.state" --mem-file "$tmp/clone.mem" >"$tmp/clone.$i.log" 2>&1 &
  pids+=($!)
done
for i in $(seq 1 "$clones"); do
  for _ in $(seq 1 60000); do
    grep -q 'clonemem: touched' "$tmp/clone.$i.log" && break
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { echo "clone $i ended:" >&2; cat "$tmp/clone.$i.log" >&2; exit 1; }
    sleep 0.01
  done
  grep -q 'clonemem: touched' "$tmp/clone.$i.log" || { echo "clone $i: no answer" >&2; exit 1; }
done
all_up=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
for i in $(seq 1 "$clones"); do
  p=${pids[$((i - 1))]}
  cat "/proc/$p/smaps_rollup" >"$tmp/rollup.$i"
  cat "/proc/$p/smaps" >"$tmp/smaps.$i"
done
for i in $(seq 1 "$clones"); do
  r=$tmp/rollup.$i s=$tmp/smaps.$i
  echo "$(kib "$r" Rss) $(kib "$r" Pss) $(($(kib "$r" Private_Clean) + $(kib "$r" Private_Dirty))) \
$(guest_kib "$s" "$tmp/clone.mem" Private_Clean) $(guest_kib "$s" "$tmp/clone.mem" Private_Dirty) \
$(guest_kib "$s" "$tmp/clone.mem" Rss)"
done >"$tmp/clones.tab"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()
awk -v n="$clones" -v w="$write_kib" -v up="$all_up" '
  { rss += $1; pss += $2; priv += $3; gpc += $4; gpd += $5; grss += $6
    if ($3 - $4 - $5 > own_max) own_max = $3 - $4 - $5 }
  END {
    printf "%-44s %10.1f MiB\n", "total RSS (as if nothing were shared)", rss / 1024
    printf "%-44s %10.1f MiB   (RSS/PSS %.1f)\n", "total PSS", pss / 1024, pss ? rss / pss : 0
    printf "%-44s %10d KiB\n", "per clone: guest wrote", w
    printf "%-44s %10.0f KiB\n", "per clone: guest mapping Private_Dirty", gpd / n
    printf "%-44s %10.0f KiB\n", "per clone: guest mapping Private_Clean", gpc / n
    printf "%-44s %10.0f KiB   (%.0f KiB mapped)\n", "per clone: guest mapping RSS", grss / n, grss / n
    printf "%-44s %10.0f KiB   (largest %d)\n", "per clone: flint own private (not guest)", (priv - gpc - gpd) / n, own_max
    printf "%-44s %10.0f KiB\n", "per clone: private total", priv / n
    printf "%-44s %10.0f KiB\n", "all clones: private total", priv
    printf "%-44s %10s s\n", "all clones started to all answered", up
  }' "$tmp/clones.tab"
fi

echo
echo "== restore to the guest's answer, without and with working-set prefetch (median of $runs)"
take ws 0
kvm_stats="pf_taken pf_fixed pf_fast pf_spurious exits"
# kvm_read PID: the VM's counters (KVM keeps them per VM, in
# /sys/kernel/debug/kvm/PID-FD/, only while it exists).
kvm_read() {
  local s d
  d=$(echo /sys/kernel/debug/kvm/"$1"-*)
  for s in $kvm_stats; do cat "$d/$s" 2>/dev/null || echo -; done | tr '\n' ' '
}
# one_run LOG FLAG...: "us_to_answer minflt majflt kvm-deltas..." of one
# restore (faults of the flint process from GNU time's %R and %F).
one_run() {
  local log=$1 kvm="" t0 t1="" pid child
  shift
  t0=$(date +%s%N)
  /usr/bin/time -f '%R %F' -o "$log.flt" \
    "$flint" run --restore "$tmp/ws.state" --mem-file "$tmp/ws.mem" "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [[ -z $t1 ]] && grep -q 'clonemem: touched' "$log"; then
      t1=$(date +%s%N)
      # The guest lingers 3 s after its answer: the VM still exists.
      child=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || true)
      kvm=$(kvm_read "${child%% *}")
    fi
    sleep 0.002
  done
  wait "$pid" || { echo "restore $* failed:" >&2; cat "$log" >&2; exit 1; }
  [[ -n $t1 ]] || t1=$(date +%s%N)
  grep -q 'clonemem: touched' "$log" || { echo "restore $*: no answer" >&2; cat "$log" >&2; exit 1; }
  echo "$(((t1 - t0) / 1000)) $(sed -n 's/.*clonemem: touched .* in \([0-9]*\) us.*/\1/p' "$log")" \
    "$(tail -n 1 "$log.flt")" "${kvm:-- - - - -}"
}
one_run "$tmp/record.log" --record-working-set --level Info >/dev/null
[[ -f $tmp/ws.state.ws ]] || { echo "no working-set file written" >&2; cat "$tmp/record.log" >&2; exit 1; }
for i in $(seq 1 "$runs"); do
  one_run "$tmp/plain.$i.log" >>"$tmp/plain.tab"
  one_run "$tmp/pre.$i.log" --prefetch >>"$tmp/pre.tab"
done
median_col() { awk -v c="$1" '{ print $c }' "$2" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '%-34s %12s %12s %8s\n' "" "restore" "+ prefetch" "cut"
row() {
  local a b
  a=$(median_col "$2" "$tmp/plain.tab") b=$(median_col "$2" "$tmp/pre.tab")
  printf '%-34s %12s %12s %8s\n' "$1" "$a" "$b" \
    "$(awk -v a="$a" -v b="$b" 'BEGIN { if (a > 0) printf "%.0f%%", 100 * (a - b) / a; else print "-" }')"
}
row "start -> guest answer (us)" 1
row "guest's touch phase (us, its clock)" 2
row "flint minor faults (whole run)" 3
row "flint major faults (whole run)" 4
c=5
for s in $kvm_stats; do row "KVM $s (up to the answer)" $c; c=$((c + 1)); done
echo "(working set: $(stat -c %s "$tmp/ws.state.ws") bytes, $(grep -o '[0-9]* pages in' "$tmp/record.log" || echo '?') STATE.ws)"
