import Foundation

/// pytrec_eval (trec_eval's own code, installed by scripts/python-test-requirements.txt) on a
/// qrels file and a run file: the independent evaluator our metrics are compared with.
public enum TRECEvalReference {
    /// The Python interpreter of the test venv (SRDPR_PYTHON), else `python3` on PATH.
    public static var python: (executable: URL, prefix: [String]) {
        if let path = ProcessInfo.processInfo.environment["SRDPR_PYTHON"], !path.isEmpty {
            return (URL(fileURLWithPath: path), [])
        }
        return (URL(fileURLWithPath: "/usr/bin/env"), ["python3"])
    }

    /// Reads qrels (TREC `qid 0 docid rel`, or BEIR TSV with a header when `beirTSV`) and a TREC run;
    /// prints {qid: {metric: value}} with success@k, recall@k, ndcg@k (ndcg_cut) and mrr@k, where
    /// mrr@k is trec_eval's recip_rank when its first relevant rank (1 / recip_rank) is within k.
    static let script = #"""
    import json, sys
    import pytrec_eval
    qrels_path, run_path, ks, fmt = sys.argv[1], sys.argv[2], [int(k) for k in sys.argv[3].split(",")], sys.argv[4]
    qrels = {}
    with open(qrels_path) as f:
        for i, line in enumerate(f):
            parts = line.split()
            if not parts:
                continue
            if fmt == "beir":
                if i == 0 and not parts[2].lstrip("-").isdigit():
                    continue
                q, d, r = parts
            else:
                q, _, d, r = parts
            qrels.setdefault(q, {})[d] = int(r)
    run = {}
    with open(run_path) as f:
        for line in f:
            q, _, d, _, s, _ = line.split()
            run.setdefault(q, {})[d] = float(s)
    cuts = ",".join(str(k) for k in ks)
    measures = {"recip_rank", "success." + cuts, "recall." + cuts, "ndcg_cut." + cuts}
    result = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    out = {}
    for q, m in result.items():
        row = {}
        rr = m["recip_rank"]
        for k in ks:
            row[f"success@{k}"] = m[f"success_{k}"]
            row[f"recall@{k}"] = m[f"recall_{k}"]
            row[f"ndcg@{k}"] = m[f"ndcg_cut_{k}"]
            row[f"mrr@{k}"] = rr if rr > 0 and round(1 / rr) <= k else 0.0
        out[q] = row
    print(json.dumps(out))
    """#

    public enum Failure: Error, CustomStringConvertible {
        case python(String)
        public var description: String {
            switch self {
            case .python(let why):
                return "pytrec_eval failed (install it with scripts/setup.sh --test and set SRDPR_PYTHON=.venv/bin/python): \(why)"
            }
        }
    }

    /// Per-query metrics by query id, then by name (`success@5`, `recall@5`, `ndcg@5`, `mrr@5`).
    public static func evaluate(qrels: String, run: String, ks: [Int], beirTSV: Bool = false) throws -> [String: [String: Double]] {
        let (executable, prefix) = python
        let result = try Command.run(executable, prefix + ["-c", script, qrels, run, ks.map(String.init).joined(separator: ","),
                                                             beirTSV ? "beir" : "trec"])
        guard result.status == 0 else { throw Failure.python(result.stderr) }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: [String: Double]] else {
            throw Failure.python("unexpected output: \(result.stdout.prefix(200))")
        }
        return object
    }
}
