/// All-reduce of a row-major matrix whose rows are mostly zero on every rank: a word-embedding
/// table's gradient, where a batch touches only the rows of its tokens (a few thousand of 30,522).
///
/// Every rank flags its rows that are not all +0.0 bits, the flags are summed (one small
/// all-reduce), and only the rows some rank flagged are packed and reduced. A row left out is +0.0
/// on every rank, where the dense sum or mean would also be +0.0; the other rows get the same sums
/// as a dense all-reduce (bit for bit with 2 ranks; with more, possibly added in another order).
/// The bytes sent shrink by the share of untouched rows. `wire` applies to the rows (the flags
/// are always summed in fp32).
extension Communicator {
    public func allReduceNonzeroRows(_ matrix: UnsafeMutableBufferPointer<Float>, rowWidth: Int, op: ReduceOp,
                                     wire: AllReduceWireType = .fp32) throws {
        guard worldSize > 1, let base = matrix.baseAddress else { return }
        guard rowWidth > 0, matrix.count % rowWidth == 0 else {
            throw CollectivesError.invalidArgument("a sparse all-reduce needs whole rows: \(matrix.count) floats are not rows of \(rowWidth)")
        }
        let rows = matrix.count / rowWidth
        var flags = [Float](repeating: 0, count: rows)
        UnsafeRawPointer(base).withMemoryRebound(to: UInt32.self, capacity: matrix.count) { bits in
            for row in 0..<rows where !Self.isZero(bits + row * rowWidth, count: rowWidth) { flags[row] = 1 }
        }
        try allReduce(&flags, op: .sum)
        let touched = flags.indices.filter { flags[$0] > 0 }
        guard !touched.isEmpty else { return }
        var packed = [Float](unsafeUninitializedCapacity: touched.count * rowWidth) { packed, initialized in
            for (i, row) in touched.enumerated() {
                (packed.baseAddress! + i * rowWidth).update(from: base + row * rowWidth, count: rowWidth)
            }
            initialized = touched.count * rowWidth
        }
        try packed.withUnsafeMutableBufferPointer { try allReduce($0, op: op, wire: wire) }
        packed.withUnsafeBufferPointer { packed in
            for (i, row) in touched.enumerated() {
                (base + row * rowWidth).update(from: packed.baseAddress! + i * rowWidth, count: rowWidth)
            }
        }
    }

    /// True when all `count` words are zero bits (+0.0; a -0.0 counts as written).
    @inline(__always)
    private static func isZero(_ words: UnsafePointer<UInt32>, count: Int) -> Bool {
        var any: UInt32 = 0
        for i in 0..<count { any |= words[i] }
        return any == 0
    }
}
