import ArgumentParser
import Coordinator
import Foundation

/// `srdpr report LOG_DIR`: the training curves of a run as one self-contained HTML page.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write an HTML page with a run's training curves (loss per pipeline, learning rate, gradient norm, tokens/s, dev metrics).",
        discussion: "Reads LOG_DIR/metrics.jsonl. The page is self-contained (inline SVG, no scripts, nothing fetched): open it offline.")

    @Argument(help: "The log_dir of a `srdpr train` run.")
    var logDir: String
    @Option(help: "Where to write the page (default: LOG_DIR/report.html).")
    var output: String?

    func run() throws {
        let report = try TrainingReport(logDir: URL(fileURLWithPath: logDir))
        if !report.skippedLines.isEmpty {
            FileHandle.standardError.write(Data("warning: \(report.skippedLines.count) line(s) of metrics.jsonl are not JSON objects and are left out\n".utf8))
        }
        print(try report.write(to: output.map { URL(fileURLWithPath: $0) }).path)
    }
}
