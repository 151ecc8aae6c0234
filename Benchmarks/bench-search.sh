#!/usr/bin/env bash
# Exact search throughput: `srdpr bench search` and the numpy anchor (q @ P.T + argpartition) side
# by side, for 100k and 1M random 384-dim passages. Usage: Benchmarks/bench-search.sh [VENV]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-bench}"
[ -x "$venv/bin/python" ] || Benchmarks/setup-anchors.sh "$venv" >/dev/null
swift build -c release >/dev/null
echo "load: $(uptime)" >&2
for n in 100000 1000000; do
    ours=$(.build/release/srdpr bench search --passages "$n" --dimension 384 --queries 256 --k 100 --threads 2 --repeats 3 2>/dev/null | tail -1)
    anchor=$(OPENBLAS_NUM_THREADS=2 "$venv/bin/python" Benchmarks/search_anchor.py --passages "$n" --dimension 384 --queries 256 --k 100 --repeats 3 2>/dev/null | tail -1)
    python3 - "$ours" "$anchor" <<'PY'
import json, sys
o, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"passages": o["passages"], "srdpr_qps": round(o["queries_per_s"], 1),
                  "numpy_qps": round(a["queries_per_s"], 1), "ratio": round(o["queries_per_s"] / a["queries_per_s"], 2)}))
PY
done
