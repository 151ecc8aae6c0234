import Foundation

/// The rows of one encoder's word-embedding gradient table that a backward may have written since
/// the table was last zeroed: the only rows the next zeroing must clear and the only ones the
/// gradient norm must read (a step touches the rows of its tokens, a few % of the table; the other
/// rows stay +0.0). Rows are noted before the backward writes them, so a backward that throws half
/// way is covered, and notes add up over the batches of a step (gradient accumulation). Not known
/// (any row may hold values) until the first `reset`, and after `forget`: for a write that did
/// not go through a noted backward, such as a multi-rank all-reduce bringing in other ranks' rows.
final class WrittenWordRows {
    private let lock = NSLock()
    private var written: [Bool]
    private var known = false

    init(vocabSize: Int) { written = [Bool](repeating: false, count: vocabSize) }

    /// A backward is about to add into the rows of `ids` (replicas on several threads may call at once).
    func note(_ ids: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        guard known else { return }
        for id in ids {
            guard id >= 0, Int(id) < written.count else { known = false; return }  // never a valid write: assume anything
            written[Int(id)] = true
        }
    }

    /// The table was zeroed whole: no row is written.
    func reset() {
        lock.lock()
        defer { lock.unlock() }
        for i in written.indices { written[i] = false }
        known = true
    }

    /// Something else wrote into the table: any row may hold values until the next `reset`.
    func forget() {
        lock.lock()
        defer { lock.unlock() }
        known = false
    }

    /// The rows not written, ascending, adjacent rows merged; nil when not known.
    func unwrittenRuns() -> [Range<Int>]? {
        lock.lock()
        defer { lock.unlock() }
        guard known else { return nil }
        var runs: [Range<Int>] = [], start: Int?
        for (row, isWritten) in written.enumerated() {
            if isWritten, let s = start { runs.append(s..<row); start = nil }
            if !isWritten, start == nil { start = row }
        }
        if let s = start { runs.append(s..<written.count) }
        return runs
    }
}
