import Foundation

/// The progress of a long command (train, encode, index, evaluate, create-dataset) on stderr. On
/// a terminal: one line redrawn in place — bar, done/total, rate, ETA and a status — with log
/// lines printed above it. Otherwise, with `plainLines`, a line at every tenth of the work.
public final class ProgressBar {
    public let label: String
    public let total: Int
    public let unit: String
    /// Unit of the rate when it counts something else than `unit` (train: tokens per second).
    public let rateUnit: String?
    public let terminal: Bool
    public let plainLines: Bool
    private let start: Int
    private let began = Date()
    private var work = 0
    private var drawn = false
    private var lastTenth = -1
    private var lastDraw = Date.distantPast

    /// - Parameters:
    ///   - start: units already done when this run began (a resumed run): the rate and ETA count from it.
    public init(label: String, total: Int, unit: String, rateUnit: String? = nil, start: Int = 0,
                terminal: Bool = isatty(STDERR_FILENO) != 0, plainLines: Bool = true) {
        self.label = label
        self.total = total
        self.unit = unit
        self.rateUnit = rateUnit
        self.start = start
        self.terminal = terminal
        self.plainLines = plainLines
    }

    /// `done` units of `total` are done; `work` adds to what `rateUnit` counts.
    public func update(done: Int, work: Int = 0, status: String = "") {
        self.work += work
        let elapsed = Date().timeIntervalSince(began)
        let progressed = done - start
        let rateCount = rateUnit == nil ? Double(progressed) : Double(self.work)
        let rate = elapsed > 0 ? rateCount / elapsed : 0
        let eta = progressed > 0 ? elapsed / Double(progressed) * Double(max(0, total - done)) : 0
        let text = "\(label) \(done)/\(total) \(unit)" + (status.isEmpty ? "" : " \(status)")
            + String(format: " %.1f %@/s ETA %@", rate, rateUnit ?? unit, Self.duration(eta))
        if terminal {
            // Redrawing costs a write: at most 10 times a second, and always the last one.
            let now = Date()
            guard done >= total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
            lastDraw = now
            let width = 24
            let filled = total > 0 ? min(width, width * done / total) : width
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            write("\r\u{1B}[K[\(bar)] " + text)
            drawn = true
        } else if plainLines {
            let tenth = total > 0 ? done * 10 / total : 10
            if tenth != lastTenth { write(text + "\n") }
            lastTenth = tenth
        }
    }

    /// A log line (to `print`, stdout by default), above the bar.
    public func line(_ text: String, print: (String) -> Void = { Swift.print($0) }) {
        if drawn { write("\r\u{1B}[K") }
        drawn = false
        print(text)
    }

    /// Ends the bar's line.
    public func finish() {
        if drawn { write("\n") }
        drawn = false
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Foundation.Data(text.utf8))
    }

    /// mm:ss, or h:mm:ss from an hour on.
    public static func duration(_ seconds: Double) -> String {
        let s = seconds.isFinite ? Int(seconds.rounded()) : 0
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
    }
}
