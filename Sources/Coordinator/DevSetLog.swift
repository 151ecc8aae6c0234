import Foundation
import JobContracts

extension TrainingLog {
    /// Logs a dev evaluation: a metrics.jsonl row `{"step", "eval": {"mrr@10", "ndcg@10",
    /// "top_k_accuracy": {"1": ...}, "recall": {...}, ...}, "eval_seconds", ...}`, TensorBoard
    /// scalars `eval/<metric>`, and a line on stdout. `wallSeconds` is what the run waited for it
    /// (with keep_best's write and, in a multi-node job, the messages).
    func recordEvaluation(_ report: DevSetReport, wallSeconds: Double) throws {
        var nested: [String: MetricValue] = [:]
        var accuracy: [String: MetricValue] = [:], recall: [String: MetricValue] = [:]
        for (name, value) in report.scores.metrics {
            if name.hasPrefix("top_k_accuracy@") { accuracy[String(name.dropFirst("top_k_accuracy@".count))] = .double(value) }
            else if name.hasPrefix("recall@") { recall[String(name.dropFirst("recall@".count))] = .double(value) }
            else { nested[name] = .double(value) }
        }
        nested["top_k_accuracy"] = .object(accuracy)
        nested["recall"] = .object(recall)
        nested["queries"] = .int(report.scores.queries)
        nested["queries_without_judged_positive"] = .int(report.scores.queriesWithoutJudgedPositive)
        var fields: [String: MetricValue] = ["eval": .object(nested), "eval_seconds": .double(report.scores.seconds),
                                             "eval_wall_seconds": .double(wallSeconds)]
        if let best = report.best {
            fields["best"] = .object(["metric": .string(best.metric), "value": .double(best.best), "step": .int(best.bestStep),
                                      "improved": .string(best.improved ? "yes" : "no"), "path": .string(best.path),
                                      "seconds": .double(best.seconds)])
        }
        try metrics.log(step: report.step, fields)
        for (name, value) in report.scores.metrics.sorted(by: { $0.key < $1.key }) {
            try tensorBoard.addScalar("eval/\(name)", Float(value), step: report.step)
        }
        try tensorBoard.flush()
        let shown = ["mrr@10", "ndcg@10"].compactMap { name in report.scores.metrics[name].map { "\(name) \(String(format: "%.4f", $0))" } }
            + report.scores.metrics.keys.filter { $0.hasPrefix("top_k_accuracy@") }
                .sorted { Int($0.dropFirst(15)) ?? 0 < Int($1.dropFirst(15)) ?? 0 }
                .map { "top-\($0.dropFirst(15)) \(String(format: "%.4f", report.scores.metrics[$0]!))" }
        var line = "eval step \(report.step): " + shown.joined(separator: ", ")
            + String(format: " (%d queries, %.1f s)", report.scores.queries, report.scores.seconds)
        if let best = report.best {
            line += best.improved ? "; new best \(best.metric), kept as \(best.path)"
                : "; best \(best.metric) \(String(format: "%.4f", best.best)) at step \(best.bestStep)"
        }
        progress.line(line)
    }
}
