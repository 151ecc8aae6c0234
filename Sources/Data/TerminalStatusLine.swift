import Foundation

/// One status line redrawn in place on a terminal (carriage return, erase to the end of the line),
/// with ordinary lines printed above it: the progress display of training, dataset creation and
/// indexing. On a file or pipe `isTerminal` is false and callers print plain lines instead.
public final class TerminalStatusLine {
    public let isTerminal: Bool
    private let handle: FileHandle
    private var drawn = false

    /// The status line of standard output (`descriptor` 1) or standard error (2).
    public init(descriptor: Int32) {
        isTerminal = isatty(descriptor) != 0
        handle = descriptor == 2 ? FileHandle.standardError : FileHandle.standardOutput
    }

    /// Replaces the status line with `text`.
    public func draw(_ text: String) {
        handle.write(Foundation.Data(("\r\u{1B}[K" + text).utf8))
        drawn = true
    }

    /// Erases the status line so that a log line can be printed in its place (it is redrawn on the next `draw`).
    public func clear() {
        if drawn { handle.write(Foundation.Data("\r\u{1B}[K".utf8)) }
    }

    /// Ends the status line (a newline after it, when one was drawn).
    public func finish() {
        if drawn { handle.write(Foundation.Data("\n".utf8)); drawn = false }
    }
}
