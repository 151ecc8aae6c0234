import Foundation
import TestSupport
import XCTest

/// `srdpr report LOG_DIR`: a self-contained page that headless Chromium (Debian's `chromium`,
/// installed by scripts/setup.sh --test) renders without any network.
final class ReportRenderTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-report") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A metrics.jsonl as `srdpr train` writes it: two pipelines, dev evaluations every 10 steps,
    /// a resumed part that logs steps 21-25 again (the later rows win), and one broken line.
    func writeMetrics() throws -> URL {
        var lines: [String] = []
        for step in 1...40 {
            let pipeline = step % 3 == 0 ? "hard" : "pos"
            let loss = (pipeline == "pos" ? 2.0 : 1.2) * exp(-Double(step) / 30) + 0.05 * sin(Double(step))
            lines.append(#"{"step": \#(step), "compute_seconds": 0.5, "fetch_seconds": 0.01, "grad_norm": \#(1 + 0.3 * cos(Double(step))), "learning_rate": \#(1e-4 * Double(40 - step) / 40), "loss": \#(loss), "pipeline": "\#(pipeline)", "tokens": \#(4000 + 40 * step)}"#)
            if step % 10 == 0 {
                let mrr = 0.2 + 0.1 * log(Double(step))
                lines.append(#"{"step": \#(step), "eval": {"mrr@10": \#(mrr), "ndcg@10": \#(mrr * 0.9), "queries": 81, "queries_without_judged_positive": 0, "recall": {"1": \#(mrr * 0.5), "20": 0.8}, "top_k_accuracy": {"1": \#(mrr * 0.8), "5": \#(mrr * 1.4), "20": 0.85}}, "eval_seconds": 12.5, "eval_wall_seconds": 13.0}"#)
            }
            if step == 25 { lines.append("{\"step\": 26, \"loss\": ") }
        }
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(to: logs.appendingPathComponent("metrics.jsonl"), atomically: true, encoding: .utf8)
        return logs
    }

    func testReportIsSelfContainedAndRendersInHeadlessChromium() throws {
        let logs = try writeMetrics()
        let r = try Command.srdpr(["report", logs.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let page = logs.appendingPathComponent("report.html")
        XCTAssertEqual(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines), page.path)
        XCTAssertTrue(r.stderr.contains("1 line(s) of metrics.jsonl are not JSON objects"), r.stderr)
        let html = try String(contentsOf: page, encoding: .utf8)
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 6, "six charts")
        for title in ["Loss per pipeline", "Learning rate", "Gradient norm", "Throughput", "Dev set: MRR@10 and nDCG@10", "Dev set: top-k accuracy"] {
            XCTAssertTrue(html.contains(title), title)
        }
        XCTAssertTrue(html.contains(">pos<") && html.contains(">hard<"), "one loss line per pipeline")
        XCTAssertTrue(html.contains("4 (steps 10, 20, 30, 40)"), "the dev evaluations")
        // Self-contained: nothing to fetch, no scripts.
        for needle in ["http:", "https:", "<script", "src=", "<link", "@import"] {
            XCTAssertFalse(html.lowercased().contains(needle), "the page references '\(needle)'")
        }

        // Headless Chromium, every host name unresolvable: the page must render from itself alone.
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let browser = try XCTUnwrap(chromium, "Debian's chromium is not installed: run scripts/setup.sh --test")
        let shot = dir.appendingPathComponent("report.png")
        let render = try Command.run(URL(fileURLWithPath: browser), [
            "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--user-data-dir=\(dir.appendingPathComponent("chromium-profile").path)",
            "--window-size=1240,1500", "--screenshot=\(shot.path)", page.absoluteString])
        XCTAssertEqual(render.status, 0, render.stderr)
        let png = try Data(contentsOf: shot)
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG")
        func bigEndian(_ offset: Int) -> Int { png[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } }
        XCTAssertEqual(bigEndian(16), 1240, "width")
        XCTAssertEqual(bigEndian(20), 1500, "height")
        // A blank page compresses to a few kB; six charts with text and lines do not.
        XCTAssertGreaterThan(png.count, 40_000, "the screenshot has content")
        if let keep = ProcessInfo.processInfo.environment["SRDPR_REPORT_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: shot, to: URL(fileURLWithPath: keep))
        }
    }

    func testMissingLogDirIsNamed() throws {
        let r = try Command.srdpr(["report", dir.appendingPathComponent("nope").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("no metrics.jsonl here"), r.stderr)
    }
}
