import Data
import Foundation

/// Training progress: on a terminal a one-line bar redrawn in place (step, pipeline, loss,
/// tokens/s, ETA) with log lines printed above it; otherwise only the log lines.
final class ProgressReporter {
    let total: Int
    let start: Int
    let terminal: Bool
    let print: (String) -> Void
    private var began = Date()
    private var tokens = 0
    private let status = TerminalStatusLine(descriptor: STDOUT_FILENO)

    init(total: Int, start: Int, terminal: Bool, print: @escaping (String) -> Void) {
        self.total = total
        self.start = start
        self.terminal = terminal
        self.print = print
    }

    /// Redraws the bar after update `step`.
    func update(step: Int, pipeline: String, loss: Float, tokens stepTokens: Int, seconds: Double) {
        tokens += stepTokens
        guard terminal else { return }
        let elapsed = Date().timeIntervalSince(began)
        let done = step - start
        let rate = elapsed > 0 ? Double(tokens) / elapsed : 0
        let eta = done > 0 ? elapsed / Double(done) * Double(total - step) : 0
        let width = 24
        let filled = total > 0 ? min(width, width * step / total) : width
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let text = String(format: "[%@] %d/%d %@ loss %.4f %.0f tok/s ETA %@", bar, step, total, pipeline, loss, rate,
                          Self.duration(eta))
        status.draw(text)
    }

    /// A log line, printed above the bar.
    func line(_ text: String) {
        status.clear()
        print(text)
    }

    /// Ends the bar's line.
    func finish() {
        status.finish()
    }

    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
    }
}
