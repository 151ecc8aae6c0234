#!/usr/bin/env bash
# Dataset benchmark, side by side with the original Python code (Benchmarks/bench_dataset.py):
#   - random-access reads/s on a 100k-sample ByteDataset (Python: seek + pickle.load). Ours, twice:
#     the pipelines' read (ByteDataset.readView: one validating pass over the pickle, every text
#     field UTF-8-checked, byte ranges into the mapped file, no Strings) and the full Sample decode.
#   - create-dataset throughput in MB/s of JSON-lines input (Python: json.loads + pickle.dump per line)
# The dataset is generated (Benchmarks/make_bench_jsonl.py, ~320 MB), not committed.
# Env: N (samples, 100000), READS (200000), REPEATS (3, best run reported), BENCH_DIR, SRDPR_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
READS=${READS:-200000}
REPEATS=${REPEATS:-3}
DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/srdpr-bench-dataset}
PY=${SRDPR_PYTHON:-python3}
BIN=.build/release/srdpr

swift build -c release >/dev/null
mkdir -p "$DIR"
if [ ! -s "$DIR/bench-$N.jsonl" ]; then
    echo "generating $N samples in $DIR/bench-$N.jsonl" >&2
    "$PY" Benchmarks/make_bench_jsonl.py "$DIR/bench-$N.jsonl.tmp" "$N" && mv "$DIR/bench-$N.jsonl.tmp" "$DIR/bench-$N.jsonl"
fi
out="$DIR/results.jsonl"
: > "$out"
load_before=$(uptime)
"$BIN" bench dataset --jsonl "$DIR/bench-$N.jsonl" --output "$DIR/swift.bytedataset" --repeats "$REPEATS" | tee -a "$out"
"$PY" Benchmarks/bench_dataset.py --jsonl "$DIR/bench-$N.jsonl" --output "$DIR/python.bytedataset" --repeats "$REPEATS" | tee -a "$out"
if cmp -s "$DIR/swift.bytedataset/data.pkl" "$DIR/python.bytedataset/data.pkl" && \
   cmp -s "$DIR/swift.bytedataset/idxs.pkl" "$DIR/python.bytedataset/idxs.pkl"; then
    echo "outputs: byte-identical (data.pkl and idxs.pkl)"
else
    echo "outputs: DIFFERENT" >&2; exit 1
fi
"$BIN" bench dataset --dataset "$DIR/python.bytedataset" --reads "$READS" --repeats "$REPEATS" | tee -a "$out"
"$PY" Benchmarks/bench_dataset.py --dataset "$DIR/python.bytedataset" --reads "$READS" --repeats "$REPEATS" | tee -a "$out"
# Decode cost alone: the 37-sample fixture stays in the CPU caches.
small=../shared/fixtures/pipelines/all.bytedataset
if [ -d "$small" ]; then
    "$BIN" bench dataset --dataset "$small" --reads "$READS" --repeats "$REPEATS" | sed 's/"bench":"dataset_random_reads"/"bench":"small_random_reads"/' | tee -a "$out"
    "$PY" Benchmarks/bench_dataset.py --dataset "$small" --reads "$READS" --repeats "$REPEATS" | sed 's/"bench": "dataset_random_reads"/"bench": "small_random_reads"/' | tee -a "$out"
fi
load_after=$(uptime)
"$PY" - "$out" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def get(bench, anchor):
    return next(r for r in rows if r["bench"] == bench and (r.get("anchor") == "python") == anchor)
c_s, c_p = get("create_dataset", False), get("create_dataset", True)
r_s, r_p = get("dataset_random_reads", False), get("dataset_random_reads", True)
print()
print(f"{'':30}{'srdpr':>14}{'python':>14}{'ratio':>9}")
def row(name, key, fmt):
    print(f"{name:30}{format(s[key], fmt):>14}{format(p[key], fmt):>14}{s[key] / p[key]:8.1f}x")
s, p = c_s, c_p
row("create-dataset MB/s (wall)", "mb_per_second", ".1f")
row("create-dataset MB/s (CPU)", "mb_per_cpu_second", ".1f")
def vs(name, key, pkey, fmt=".0f"):
    print(f"{name:30}{format(s[key], fmt):>14}{format(p[pkey], fmt):>14}{s[key] / p[pkey]:8.1f}x")
s, p = r_s, r_p
print("random reads, pipeline read path (SampleView):")
vs("  random reads/s (wall)", "reads_per_second", "reads_per_second")
vs("  random reads/s (CPU)", "reads_per_cpu_second", "reads_per_cpu_second")
vs("  one view at a time (CPU)", "single_view_reads_per_cpu_second", "reads_per_cpu_second")
vs("  file order, not random (CPU)", "sequential_view_reads_per_cpu_second", "reads_per_cpu_second")
print("random reads, full Sample decode (Strings, arrays):")
vs("  Sample reads/s (wall)", "sample_reads_per_second", "reads_per_second")
vs("  Sample reads/s (CPU)", "sample_reads_per_cpu_second", "reads_per_cpu_second")
if any(r["bench"] == "small_random_reads" for r in rows):
    s, p = get("small_random_reads", False), get("small_random_reads", True)
    vs("37 small samples, view (CPU)", "reads_per_cpu_second", "reads_per_cpu_second")
    vs("37 small samples, Sample (CPU)", "sample_reads_per_cpu_second", "reads_per_cpu_second")
print("(\"one view at a time\": readView per index, no look-ahead; \"file order\": the decode cost without random memory access, not a random-read figure)")
print(f"({c_s['samples']} samples, {c_s['input_bytes']/1e6:.0f} MB of JSON-lines; {r_s['reads']} random reads, same indices;"
      " best of runs; CPU = user+sys time of the process, wall counts time other jobs held the cores)")
assert r_s["checksum"] == r_p["checksum"] == r_s["sample_checksum"], "the readers saw different samples"
PYEOF
echo "load before: $load_before"
echo "load after:  $load_after"
