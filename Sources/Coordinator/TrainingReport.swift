import Data
import Foundation

public enum TrainingReportError: Error, CustomStringConvertible, Equatable {
    case noMetrics(path: String)
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .noMetrics(let path):
            return "\(path): no metrics.jsonl here (give the log_dir of a `srdpr train` run)"
        case let .cannotWrite(path, reason): return "cannot write \(path): \(reason)"
        }
    }
}

/// `srdpr report LOG_DIR`: one self-contained HTML page (inline SVG and CSS, no scripts, nothing
/// fetched) with the training curves of a run's metrics.jsonl: the loss of each pipeline, the
/// learning rate, the gradient norm, tokens per second and the dev metrics over steps.
public struct TrainingReport {
    struct Update {
        var step: Int
        var pipeline: String
        var loss: Double?
        var learningRate: Double?
        var gradientNorm: Double?
        var tokensPerSecond: Double?
    }

    struct DevEvaluation {
        var step: Int
        var metrics: [String: Double]
        var seconds: Double?
    }

    var updates: [Update] = []
    var evaluations: [DevEvaluation] = []
    /// Lines that were not JSON objects (left out, and said so on the page).
    public private(set) var skippedLines: [Int] = []
    public let logDir: URL

    /// Reads `logDir/metrics.jsonl`. A resumed run appends to the same file: for a step logged twice
    /// the later row wins.
    public init(logDir: URL) throws {
        self.logDir = logDir
        let path = logDir.appendingPathComponent("metrics.jsonl").path
        let file: JSONLinesFile
        do { file = try JSONLinesFile(path: path) } catch { throw TrainingReportError.noMetrics(path: logDir.path) }
        var updates: [Int: Update] = [:], evaluations: [Int: DevEvaluation] = [:]
        func numeric(_ value: JSONValue?) -> Double? {
            switch value {
            case .int(let v)?: return Double(v)
            case .float(let v)?: return v
            default: return nil
            }
        }
        file.forEachLine { lineNumber, bytes, _ in
            // A line cut short (a crash mid-write, a copy of a running log) is left out and said so.
            guard let row = try? JSONLinesFile.object(bytes, file: path, line: lineNumber), case .int(let step)? = row["step"] else {
                skippedLines.append(lineNumber)
                return
            }
            func number(_ key: String) -> Double? { numeric(row[key]) }
            if case .object(let eval)? = row["eval"] {
                var metrics: [String: Double] = [:]
                for member in eval {
                    let key = String(decoding: member.key, as: UTF8.self)
                    if let v = numeric(member.value), key.contains("@") { metrics[key] = v }
                    if case .object(let byK) = member.value {
                        for cutoff in byK {
                            if let v = numeric(cutoff.value) { metrics["\(key)@\(String(decoding: cutoff.key, as: UTF8.self))"] = v }
                        }
                    }
                }
                evaluations[step] = DevEvaluation(step: step, metrics: metrics, seconds: number("eval_seconds"))
            } else if case .string? = row["pipeline"], let pipeline = row["pipeline"]?.stringValue, row["error"] == nil {
                let seconds = (number("fetch_seconds") ?? 0) + (number("compute_seconds") ?? 0)
                updates[step] = Update(step: step, pipeline: pipeline, loss: number("loss"), learningRate: number("learning_rate"),
                                       gradientNorm: number("grad_norm"),
                                       tokensPerSecond: seconds > 0 ? number("tokens").map { $0 / seconds } : nil)
            }
        }
        self.updates = updates.values.sorted { $0.step < $1.step }
        self.evaluations = evaluations.values.sorted { $0.step < $1.step }
    }

    func charts() -> [SVGLineChart] {
        let pipelines = updates.reduce(into: [String]()) { if !$0.contains($1.pipeline) { $0.append($1.pipeline) } }
        func points(_ rows: [Update], _ value: (Update) -> Double?) -> [(x: Double, y: Double)] {
            rows.compactMap { row in value(row).map { (Double(row.step), $0) } }
        }
        var charts = [
            SVGLineChart(title: "Loss per pipeline", yLabel: "loss", series: pipelines.map { name in
                .init(name: name, points: points(updates.filter { $0.pipeline == name }, \.loss))
            }),
            SVGLineChart(title: "Learning rate", yLabel: "learning rate", series: [.init(name: "learning_rate", points: points(updates, \.learningRate))]),
            SVGLineChart(title: "Gradient norm (before clipping)", yLabel: "L2 norm", series: [.init(name: "grad_norm", points: points(updates, \.gradientNorm))]),
            SVGLineChart(title: "Throughput", yLabel: "tokens / s", series: [.init(name: "tokens/s", points: points(updates, \.tokensPerSecond))]),
        ]
        let names = Set(evaluations.flatMap(\.metrics.keys))
        func byCutoff(_ prefix: String) -> [String] {
            names.filter { $0.hasPrefix(prefix + "@") }.sorted { Int($0.split(separator: "@")[1]) ?? 0 < Int($1.split(separator: "@")[1]) ?? 0 }
        }
        func evalSeries(_ metric: String) -> SVGLineChart.Series {
            .init(name: metric, points: evaluations.compactMap { e in e.metrics[metric].map { (Double(e.step), $0) } }, markers: true)
        }
        let headline = ["mrr@10", "ndcg@10"].filter(names.contains)
        charts.append(SVGLineChart(title: "Dev set: MRR@10 and nDCG@10", yLabel: "metric", series: headline.map(evalSeries)))
        charts.append(SVGLineChart(title: "Dev set: top-k accuracy", yLabel: "fraction of queries", series: byCutoff("top_k_accuracy").map(evalSeries)))
        return charts
    }

    /// The page.
    public func html() -> String {
        let title = "srdpr training report: " + logDir.path
        var page = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(SVGLineChart.escape(title))</title>
            <style>
            body { font-family: sans-serif; margin: 24px; color: #222; background: #fafafa; }
            h1 { font-size: 20px; } .grid { display: flex; flex-wrap: wrap; gap: 16px; }
            .chart { background: #fff; border: 1px solid #ddd; padding: 4px; }
            table { border-collapse: collapse; margin: 12px 0; background: #fff; } td, th { border: 1px solid #ddd; padding: 4px 10px; text-align: right; }
            th:first-child, td:first-child { text-align: left; } .note { color: #666; font-size: 13px; }
            </style></head><body>
            <h1>\(SVGLineChart.escape(title))</h1>

            """
        page += summary()
        page += "<div class=\"grid\">\n"
        for chart in charts() { page += "<div class=\"chart\">" + chart.svg() + "</div>\n" }
        page += "</div>\n"
        if !skippedLines.isEmpty {
            page += "<p class=\"note\">\(skippedLines.count) line(s) of metrics.jsonl were not JSON objects and are left out (line \(skippedLines.prefix(5).map(String.init).joined(separator: ", "))).</p>\n"
        }
        page += "<p class=\"note\">Made by <code>srdpr report</code> from \(SVGLineChart.escape(logDir.appendingPathComponent("metrics.jsonl").path)).</p>\n</body></html>\n"
        return page
    }

    func summary() -> String {
        var rows: [(String, String)] = [("updates logged", String(updates.count))]
        if let last = updates.last { rows.append(("last step", String(last.step))) }
        let pipelines = updates.reduce(into: [String]()) { if !$0.contains($1.pipeline) { $0.append($1.pipeline) } }
        for name in pipelines {
            if let loss = updates.last(where: { $0.pipeline == name })?.loss { rows.append(("last \(name) loss", String(format: "%.4f", loss))) }
        }
        if !evaluations.isEmpty {
            rows.append(("dev evaluations", "\(evaluations.count) (steps \(evaluations.map { String($0.step) }.joined(separator: ", ")))"))
            for metric in ["mrr@10", "ndcg@10"] {
                let scored = evaluations.compactMap { e in e.metrics[metric].map { (e.step, $0) } }
                if let best = scored.max(by: { $0.1 < $1.1 }) {
                    rows.append(("best dev \(metric)", String(format: "%.4f at step %d", best.1, best.0)))
                }
            }
            let seconds = evaluations.compactMap(\.seconds).reduce(0, +)
            rows.append(("time in dev evaluations", String(format: "%.1f s", seconds)))
        }
        return "<table>" + rows.map { "<tr><td>\(SVGLineChart.escape($0.0))</td><td>\(SVGLineChart.escape($0.1))</td></tr>" }.joined() + "</table>\n"
    }

    /// Writes the page to `output` (default `logDir/report.html`) atomically; returns its URL.
    @discardableResult
    public func write(to output: URL? = nil) throws -> URL {
        let url = output ?? logDir.appendingPathComponent("report.html")
        do { try Foundation.Data(html().utf8).write(to: url, options: .atomic) } catch {
            throw TrainingReportError.cannotWrite(path: url.path, reason: error.localizedDescription)
        }
        return url
    }
}
