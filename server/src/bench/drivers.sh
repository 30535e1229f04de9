#!/usr/bin/env bash
# keel-bench's two drivers against the same 3-member keel and 3-member etcd 3.4, in one session:
# the 256-client put load (8 B sequential keys, 256 B values, 100,000 puts) with
# --driver threads, loop, threads, loop on each system. Per run: ops/s, p99, the bench's own CPU
# per put (/usr/bin/time user+sys) and the members' CPU per put (/proc/<pid>/stat).
#
#   server/src/bench/drivers.sh     # KEEL_BASE (28600), ETCD_BASE (28300), CARGO_TARGET_DIR, OUT
#
# Builds keel and keel-bench (release) first (BUILD=0 uses what $CARGO_TARGET_DIR holds); refuses busy ports; stops both clusters at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
T=${CARGO_TARGET_DIR:-/work/target-bench}
KEEL_BASE=${KEEL_BASE:-28600}
ETCD_BASE=${ETCD_BASE:-28300}
OUT=${OUT:-/tmp/keel-bench-drivers/$(date -u +%Y%m%dT%H%M%S)}
export ETCD_REF_DIR=${ETCD_REF_DIR:-/tmp/etcd-ref-drv}
REF=/work/shared/tools/etcd-reference.sh
mkdir -p "$OUT"
[[ ${BUILD:-1} == 0 ]] || (cd "$root" && CARGO_TARGET_DIR=$T cargo build -q --release -p keel-server --bin keel --bin keel-bench)
KEEL=$T/release/keel BENCH=$T/release/keel-bench

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in 1 2 3; do
  for p in $((KEEL_BASE + 10 * i)) $((KEEL_BASE + 10 * i + 1)) $((ETCD_BASE + 10 * i)) $((ETCD_BASE + 10 * i + 1)); do
    if port_busy "$p"; then echo "port $p is in use; choose other KEEL_BASE/ETCD_BASE" >&2; exit 1; fi
  done
done

ic="" eps=""
for i in 1 2 3; do
  ic+="${ic:+,}k$i=http://127.0.0.1:$((KEEL_BASE + 10 * i + 1))"
  eps+="${eps:+,}127.0.0.1:$((KEEL_BASE + 10 * i))"
done
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$REF" stop >/dev/null 2>&1 || true
  rm -rf "$OUT/keel-data"
}
trap cleanup EXIT
for i in 1 2 3; do
  c=$((KEEL_BASE + 10 * i)) p=$((KEEL_BASE + 10 * i + 1))
  "$KEEL" --name "k$i" --data-dir "$OUT/keel-data/k$i" \
    --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
    --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
    --initial-cluster "$ic" --initial-cluster-state new >"$OUT/keel-k$i.log" 2>&1 &
  pids+=($!)
done
"$REF" start 3 "$ETCD_BASE" >"$OUT/etcd-start.txt" 2>&1
etcd_eps=$(sed 's#http://##g' "$ETCD_REF_DIR/endpoints")
mapfile -t etcd_pids <"$ETCD_REF_DIR/pids"
sleep 4

ticks() { local s=0 p; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $s; }
run() { # system endpoints driver run-number member-pids...
  local sys=$1 e=$2 drv=$3 n=$4 f
  shift 4
  f=$OUT/$sys-$drv-$n.txt
  local t0 t1
  t0=$(ticks "$@")
  /usr/bin/time -f "TIME %U %S %e" "$BENCH" put --driver "$drv" --endpoints "$e" --clients 256 \
    --key-size 8 --val-size 256 --sequential-keys --total 100000 --duration 60s --result-line \
    --prefix "r$n/" >"$f" 2>&1
  t1=$(ticks "$@")
  local ok ops p99 u s
  ok=$(sed -n 's/.* ok=\([^ ]*\).*/\1/p' "$f")
  ops=$(sed -n 's/.*ops_per_sec=\([^ ]*\).*/\1/p' "$f")
  p99=$(sed -n 's/.*p99_ms=\([^ ]*\).*/\1/p' "$f")
  read -r _ u s _ < <(grep '^TIME' "$f")
  echo "$(date -u +%H:%M:%S) $sys driver=$drv run=$n ok=$ok ops/s=$ops p99_ms=$p99" \
    "bench_cpu_us/op=$(awk -v u="$u" -v s="$s" -v n="$ok" 'BEGIN { printf "%.1f", (u + s) * 1e6 / n }')" \
    "members_cpu_us/op=$(awk -v d=$((t1 - t0)) -v n="$ok" 'BEGIN { printf "%.1f", d * 1e4 / n }')" |
    tee -a "$OUT/summary.txt"
}
echo "== $(date -u) load average: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/summary.txt"
n=0
for drv in threads loop threads loop; do n=$((n + 1)); run keel "$eps" $drv $n "${pids[@]}"; done
n=0
for drv in threads loop threads loop; do n=$((n + 1)); run etcd "$etcd_eps" $drv $n "${etcd_pids[@]}"; done
echo "== end $(date -u) load average: $(cut -d' ' -f1-3 /proc/loadavg); details: $OUT" | tee -a "$OUT/summary.txt"
