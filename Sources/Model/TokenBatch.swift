/// A padded batch of token sequences: `rows` sequences of `seqLen` ids, row-major, with the
/// attention mask (1 = real token, 0 = padding). Token type ids are all zero (SPEC §2).
public struct TokenBatch: Sendable {
    public var inputIds: [Int32]
    public var attentionMask: [Int32]
    public var rows: Int
    public var seqLen: Int

    /// Checks that the flat arrays match `rows × seqLen`.
    public init(inputIds: [Int32], attentionMask: [Int32], rows: Int, seqLen: Int) throws {
        guard rows >= 0, seqLen > 0 || rows == 0 else {
            throw ModelError.invalidInput("a token batch needs rows >= 0 and seqLen > 0 (got \(rows) x \(seqLen))")
        }
        guard inputIds.count == rows * seqLen, attentionMask.count == rows * seqLen else {
            throw ModelError.invalidInput("token batch of \(rows) x \(seqLen) needs \(rows * seqLen) input ids and mask values, "
                + "got \(inputIds.count) and \(attentionMask.count)")
        }
        self.inputIds = inputIds
        self.attentionMask = attentionMask
        self.rows = rows
        self.seqLen = seqLen
    }

    /// Pads `sequences` on the right to the longest one with `padId` (dynamic padding, SPEC §2).
    public init(sequences: [[Int32]], padId: Int32 = 0) throws {
        let length = max(1, sequences.map(\.count).max() ?? 1)
        var ids = [Int32](), mask = [Int32]()
        ids.reserveCapacity(sequences.count * length)
        for s in sequences {
            ids += s + [Int32](repeating: padId, count: length - s.count)
            mask += [Int32](repeating: 1, count: s.count) + [Int32](repeating: 0, count: length - s.count)
        }
        try self.init(inputIds: ids, attentionMask: mask, rows: sequences.count, seqLen: length)
    }

    /// Rows `range` of this batch (same padded length).
    public func rows(_ range: Range<Int>) -> TokenBatch {
        let lo = range.lowerBound * seqLen, hi = range.upperBound * seqLen
        return try! TokenBatch(inputIds: Array(inputIds[lo..<hi]), attentionMask: Array(attentionMask[lo..<hi]),
                               rows: range.count, seqLen: seqLen)
    }

    /// Rows `indices` of this batch, in that order (same padded length).
    public func rows(_ indices: [Int]) -> TokenBatch {
        var ids = [Int32](), mask = [Int32]()
        ids.reserveCapacity(indices.count * seqLen)
        mask.reserveCapacity(indices.count * seqLen)
        for r in indices {
            ids += inputIds[(r * seqLen)..<((r + 1) * seqLen)]
            mask += attentionMask[(r * seqLen)..<((r + 1) * seqLen)]
        }
        return try! TokenBatch(inputIds: ids, attentionMask: mask, rows: indices.count, seqLen: seqLen)
    }

    /// Stacks batches with the same padded length (e.g. positive then negative contexts).
    public static func concatenate(_ batches: [TokenBatch]) throws -> TokenBatch {
        let length = batches.map(\.seqLen).max() ?? 1
        var ids = [Int32](), mask = [Int32]()
        for b in batches {
            for r in 0..<b.rows {
                let lo = r * b.seqLen
                ids += b.inputIds[lo..<(lo + b.seqLen)] + [Int32](repeating: 0, count: length - b.seqLen)
                mask += b.attentionMask[lo..<(lo + b.seqLen)] + [Int32](repeating: 0, count: length - b.seqLen)
            }
        }
        return try TokenBatch(inputIds: ids, attentionMask: mask, rows: batches.reduce(0) { $0 + $1.rows }, seqLen: length)
    }
}
