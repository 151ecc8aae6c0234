#!/usr/bin/env bash
# Prints each library target's transitive dependencies from Package.swift (what docs/ARCHITECTURE.md
# states: Coordinator never reaches Worker, Retrieval never reaches Collectives/CZMQ/Coordinator/JobContracts).
# Exits 1 when one of those facts no longer holds.
set -euo pipefail
cd "$(dirname "$0")/.."
swift package dump-package | python3 -c '
import json, sys
targets = {t["name"]: t for t in json.load(sys.stdin)["targets"]}
def names(t):
    for d in targets[t]["dependencies"]:
        kind, value = next(iter(d.items()))
        yield value[0]
def closure(t, seen=None):
    seen = set() if seen is None else seen
    for d in names(t):
        if d in targets and d not in seen:
            seen.add(d)
            closure(d, seen)
    return seen
for t in ["Data", "Model", "Collectives", "JobContracts", "Worker", "Coordinator", "Retrieval", "SRDPR"]:
    print(t.ljust(13), "->", ", ".join(sorted(closure(t))))
broken = [f for f, ok in [
    ("Coordinator must not depend on Worker", "Worker" not in closure("Coordinator")),
    ("Worker must not depend on Coordinator", "Coordinator" not in closure("Worker")),
    ("Retrieval must not depend on Collectives or Coordinator",
     not ({"Collectives", "Coordinator", "CZMQ"} & closure("Retrieval"))),
    ("Retrieval must not depend on JobContracts (it loads models through Model/InferenceModel)",
     "JobContracts" not in closure("Retrieval")),
    # (and on what those two reach: the C targets under them, e.g. CBLAS, CKernels)
    ("JobContracts must depend only on Data and Model",
     closure("JobContracts") <= {"Data", "Model"} | closure("Data") | closure("Model")),
] if not ok]
for f in broken: print("BROKEN:", f)
sys.exit(1 if broken else 0)
'
