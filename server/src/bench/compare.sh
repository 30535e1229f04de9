#!/usr/bin/env bash
# keel vs etcd, side by side in one run, on loopback, with the same load generator (keel-bench).
#
#   server/src/bench/compare.sh            # from the repository root (or anywhere)
#
# Steps: build `keel` and `keel-bench` (release, $CARGO_TARGET_DIR, default /work/target-bench);
# start an etcd cluster (/work/shared/tools/etcd-reference.sh, ETCD_REF_DIR=/tmp/etcd-ref-bench,
# base port $ETCD_BASE, default 24300) and a keel cluster of the same size ($KEEL_BASE, 24600);
# the script refuses to run if any of those ports is already taken; then, for each system in
# turn ($ORDER, default "etcd keel"):
#   1. put:  $CLIENTS clients (own connection each) spread over all members, 8-byte sequential
#            keys, 256-byte values, $TOTAL puts (capped at 60 s), /metrics stage deltas;
#   2. VmRSS of every member process (after the same number of writes on both systems);
#   3. put:  $CLIENTS clients, 1 KiB values, random keys, $TOTAL_1K puts (capped at 60 s);
#   4. range: linearizable then serializable gets, 10 s each;
#   5. `etcdctl check perf --load=m` (60 s), PASS/FAIL lines kept;
#   6. VmRSS again.
# Finally both clusters are stopped and a summary with keel/etcd ratios is printed.
#
# Members: $MEMBERS (default 3). keel is tried with 3 members first; if it refuses (multi-member
# not wired yet) both systems fall back to 1 member and the summary says so; then a 3-member etcd
# is also measured with the first put load, as a reference (ETCD3_REFERENCE=0 skips it).
# Client driver: $DRIVER (default loop: all clients' connections on one mio event loop in the
# bench process; threads: one OS thread and blocking connection per client, the older way).
# Everything goes to $OUT (default /tmp/keel-bench-compare/<time>).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
T=${CARGO_TARGET_DIR:-/work/target-bench}
CLIENTS=${CLIENTS:-256}
DRIVER=${DRIVER:-loop}
TOTAL=${TOTAL:-100000}
TOTAL_1K=${TOTAL_1K:-50000}
MEMBERS=${MEMBERS:-3}
ORDER=${ORDER:-etcd keel}
CHECK_PERF=${CHECK_PERF:-1}
RANGE_DURATION=${RANGE_DURATION:-10s}
OUT=${OUT:-/tmp/keel-bench-compare/$(date -u +%Y%m%dT%H%M%S)}
export ETCD_REF_DIR=${ETCD_REF_DIR:-/tmp/etcd-ref-bench}
ETCD_BASE=${ETCD_BASE:-24300}
KEEL_BASE=${KEEL_BASE:-24600}
REF=/work/shared/tools/etcd-reference.sh
mkdir -p "$OUT"
KEEL_DATA=$OUT/keel-data

log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/summary.txt" >&2; }

(cd "$root" && CARGO_TARGET_DIR=$T cargo build -q --release -p keel-server --bin keel --bin keel-bench)
BENCH=$T/release/keel-bench
KEEL=$T/release/keel
ETCDCTL=$(command -v etcdctl || echo /usr/bin/etcdctl)

keel_pids=()
cleanup() {
  for p in "${keel_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$REF" stop >/dev/null 2>&1 || true
  rm -rf "$KEEL_DATA"
}
trap cleanup EXIT

# ---- keel cluster ---------------------------------------------------------------------------
start_keel() { # n
  local n=$1 ic="" eps=""
  for i in $(seq 1 "$n"); do
    ic+="${ic:+,}k$i=http://127.0.0.1:$((KEEL_BASE + 10 * i + 1))"
    eps+="${eps:+,}127.0.0.1:$((KEEL_BASE + 10 * i))"
  done
  keel_pids=()
  for i in $(seq 1 "$n"); do
    local c=$((KEEL_BASE + 10 * i)) p=$((KEEL_BASE + 10 * i + 1))
    "$KEEL" --name "k$i" --data-dir "$KEEL_DATA/k$i" \
      --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
      --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
      --initial-cluster "$ic" --initial-cluster-state new >"$OUT/keel-k$i.log" 2>&1 &
    keel_pids+=($!)
  done
  KEEL_EPS=$eps
  sleep 2
  for p in "${keel_pids[@]}"; do kill -0 "$p" 2>/dev/null || return 1; done
  for _ in $(seq 1 50); do
    ETCDCTL_API=3 "$ETCDCTL" --endpoints="$eps" endpoint health >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  return 1
}

# A port already in use would silently point the load at someone else's server: refuse.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in 1 2 3; do
  for port in $((ETCD_BASE + 10 * i)) $((ETCD_BASE + 10 * i + 1)) $((KEEL_BASE + 10 * i)) $((KEEL_BASE + 10 * i + 1)); do
    if port_busy "$port"; then
      log "port $port is already in use; choose other ETCD_BASE/KEEL_BASE"
      exit 1
    fi
  done
done

rm -rf "$KEEL_DATA"
if ! start_keel "$MEMBERS"; then
  for p in "${keel_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  log "keel refused or failed a $MEMBERS-member cluster: $(grep -h error "$OUT"/keel-k1.log | tail -1)"
  MEMBERS=1
  rm -rf "$KEEL_DATA"
  start_keel 1 || { log "keel did not start"; exit 1; }
fi
log "members per cluster: $MEMBERS (keel and etcd alike); keel-bench driver: $DRIVER"

# ---- etcd cluster ---------------------------------------------------------------------------
"$REF" stop >/dev/null 2>&1 || true
"$REF" start "$MEMBERS" "$ETCD_BASE" >"$OUT/etcd-start.txt" 2>&1
ETCD_EPS=$(sed 's#http://##g' "$ETCD_REF_DIR/endpoints")
mapfile -t etcd_pids <"$ETCD_REF_DIR/pids"
for p in "${etcd_pids[@]}"; do
  kill -0 "$p" 2>/dev/null || { log "etcd member $p died at start: $(tail -2 "$ETCD_REF_DIR"/ref*.log)"; exit 1; }
done
log "etcd $("$(command -v etcd)" --version | head -1 | awk '{print $3}') at $ETCD_EPS (pids ${etcd_pids[*]}); keel at $KEEL_EPS (pids ${keel_pids[*]})"

rss_of() { # pids... → "a b c" in MiB
  local out=""
  for p in "$@"; do
    out+="$(awk '/^VmRSS/ {printf "%.1f", $2/1024}' "/proc/$p/status" 2>/dev/null || echo '?') "
  done
  echo "${out% }"
}

declare -A R
field() { sed -n "s/.*$2=\([^ ]*\).*/\1/p" "$1" | tail -1; }

for sys in $ORDER; do
  if [[ $sys == etcd ]]; then eps=$ETCD_EPS pids=("${etcd_pids[@]}"); else eps=$KEEL_EPS pids=("${keel_pids[@]}"); fi
  log "== $sys: put, $CLIENTS clients, 8 B sequential keys, 256 B values, $TOTAL puts"
  "$BENCH" put --driver "$DRIVER" --endpoints "$eps" --clients "$CLIENTS" --key-size 8 --val-size 256 --sequential-keys \
    --total "$TOTAL" --duration 60s --stage-metrics --result-line --prefix "b/" | tee "$OUT/$sys-put256.txt"
  R[$sys.put.ops]=$(field "$OUT/$sys-put256.txt" ops_per_sec)
  R[$sys.put.p99]=$(field "$OUT/$sys-put256.txt" p99_ms)
  R[$sys.put.ok]=$(field "$OUT/$sys-put256.txt" ok)
  R[$sys.rss1]=$(rss_of "${pids[@]}")
  log "$sys VmRSS after $TOTAL puts (MiB per member): ${R[$sys.rss1]}"

  log "== $sys: put, $CLIENTS clients, 8 B random keys, 1 KiB values, $TOTAL_1K puts"
  "$BENCH" put --driver "$DRIVER" --endpoints "$eps" --clients "$CLIENTS" --key-size 8 --val-size 1024 \
    --total "$TOTAL_1K" --duration 60s --stage-metrics --result-line --prefix "k/" | tee "$OUT/$sys-put1k.txt"
  R[$sys.put1k.ops]=$(field "$OUT/$sys-put1k.txt" ops_per_sec)
  R[$sys.put1k.p99]=$(field "$OUT/$sys-put1k.txt" p99_ms)

  for c in l s; do
    "$BENCH" range --driver "$DRIVER" --endpoints "$eps" --clients 64 --key-size 8 --key-space-size "$TOTAL" \
      --consistency $c --duration "$RANGE_DURATION" --result-line --prefix "b/" | tee "$OUT/$sys-range-$c.txt"
    R[$sys.range$c.ops]=$(field "$OUT/$sys-range-$c.txt" ops_per_sec)
    R[$sys.range$c.p99]=$(field "$OUT/$sys-range-$c.txt" p99_ms)
  done

  if [[ $CHECK_PERF == 1 ]]; then
    log "== $sys: etcdctl check perf --load=m"
    ETCDCTL_API=3 timeout 120 "$ETCDCTL" --endpoints="$eps" check perf --load=m >"$OUT/$sys-checkperf.txt" 2>&1 || true
    R[$sys.check]=$(tr '\r' '\n' <"$OUT/$sys-checkperf.txt" | grep -E '^(PASS|FAIL)' | paste -sd ';' -)
    log "$sys check perf: ${R[$sys.check]}"
  fi
  R[$sys.rss2]=$(rss_of "${pids[@]}")
  log "$sys VmRSS at the end (MiB per member): ${R[$sys.rss2]}"
done

# With single-member keel, also measure the 3-member etcd the goals refer to (same put load).
if [[ $MEMBERS == 1 && ${ETCD3_REFERENCE:-1} == 1 ]]; then
  "$REF" stop >/dev/null 2>&1 || true
  "$REF" start 3 "$ETCD_BASE" >"$OUT/etcd3-start.txt" 2>&1
  mapfile -t etcd3_pids <"$ETCD_REF_DIR/pids"
  log "== etcd, 3 members (reference only): put, $CLIENTS clients, 256 B values, $TOTAL puts"
  "$BENCH" put --driver "$DRIVER" --endpoints "$(sed 's#http://##g' "$ETCD_REF_DIR/endpoints")" --clients "$CLIENTS" \
    --key-size 8 --val-size 256 --sequential-keys --total "$TOTAL" --duration 60s --stage-metrics \
    --result-line --prefix "b/" | tee "$OUT/etcd3-put256.txt"
  R[etcd3.put.ops]=$(field "$OUT/etcd3-put256.txt" ops_per_sec)
  R[etcd3.put.p99]=$(field "$OUT/etcd3-put256.txt" p99_ms)
  R[etcd3.rss1]=$(rss_of "${etcd3_pids[@]}")
  "$REF" stop >/dev/null 2>&1 || true
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mean() { echo "$@" | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.1f", s / NF }'; }
{
  echo
  echo "== summary ($MEMBERS member(s) each; order: $ORDER; $CLIENTS clients; driver $DRIVER) =="
  printf '%-34s %12s %12s %10s\n' "" etcd keel keel/etcd
  printf '%-34s %12s %12s %10s\n' "put 256 B ops/s" "${R[etcd.put.ops]}" "${R[keel.put.ops]}" "$(ratio "${R[keel.put.ops]}" "${R[etcd.put.ops]}")"
  printf '%-34s %12s %12s %10s\n' "put 256 B p99 ms" "${R[etcd.put.p99]}" "${R[keel.put.p99]}" "$(ratio "${R[keel.put.p99]}" "${R[etcd.put.p99]}")"
  printf '%-34s %12s %12s %10s\n' "put 1 KiB ops/s" "${R[etcd.put1k.ops]}" "${R[keel.put1k.ops]}" "$(ratio "${R[keel.put1k.ops]}" "${R[etcd.put1k.ops]}")"
  printf '%-34s %12s %12s %10s\n' "put 1 KiB p99 ms" "${R[etcd.put1k.p99]}" "${R[keel.put1k.p99]}" "$(ratio "${R[keel.put1k.p99]}" "${R[etcd.put1k.p99]}")"
  printf '%-34s %12s %12s %10s\n' "range linearizable ops/s (64 cl)" "${R[etcd.rangel.ops]}" "${R[keel.rangel.ops]}" "$(ratio "${R[keel.rangel.ops]}" "${R[etcd.rangel.ops]}")"
  printf '%-34s %12s %12s %10s\n' "range serializable ops/s (64 cl)" "${R[etcd.ranges.ops]}" "${R[keel.ranges.ops]}" "$(ratio "${R[keel.ranges.ops]}" "${R[etcd.ranges.ops]}")"
  printf '%-34s %12s %12s %10s\n' "VmRSS MiB/member after put 256 B" "$(mean ${R[etcd.rss1]})" "$(mean ${R[keel.rss1]})" "$(ratio "$(mean ${R[keel.rss1]})" "$(mean ${R[etcd.rss1]})")"
  printf '%-34s %12s %12s %10s\n' "VmRSS MiB/member at the end" "$(mean ${R[etcd.rss2]})" "$(mean ${R[keel.rss2]})" "$(ratio "$(mean ${R[keel.rss2]})" "$(mean ${R[etcd.rss2]})")"
  echo "puts completed (256 B): etcd ${R[etcd.put.ok]}, keel ${R[keel.put.ok]}"
  if [[ -n ${R[etcd3.put.ops]:-} ]]; then
    echo "3-member etcd reference: put 256 B ${R[etcd3.put.ops]} ops/s, p99 ${R[etcd3.put.p99]} ms," \
      "VmRSS ${R[etcd3.rss1]} MiB; keel(1)/etcd(3) throughput $(ratio "${R[keel.put.ops]}" "${R[etcd3.put.ops]}")"
  fi
  if [[ $CHECK_PERF == 1 ]]; then
    echo "check perf m, etcd: ${R[etcd.check]}"
    echo "check perf m, keel: ${R[keel.check]}"
  fi
  echo "details: $OUT"
} | tee -a "$OUT/summary.txt"
