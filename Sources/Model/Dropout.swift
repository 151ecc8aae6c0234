import CKernels
import Data

/// Dropout with masks that are a pure function of (seed, step, encoder, layer, site, global row,
/// element): a counter-based generator, not a stream. Re-encoding a chunk (grad cache), encoding
/// the same rows in other chunk sizes, or resuming from a checkpoint gives the same masks.
public struct DropoutContext: Sendable {
    public var seed: UInt64
    public var step: UInt64
    /// 0 for the question encoder, 1 for the context encoder (any value that tells streams apart).
    public var stream: UInt64

    public init(seed: UInt64, step: UInt64, stream: UInt64) {
        self.seed = seed
        self.step = step
        self.stream = stream
    }

    /// Sites inside one layer where dropout is applied.
    enum Site: UInt64 { case embeddings = 1, attentionProbs = 2, attentionOutput = 3, ffnOutput = 4 }

    func key(layer: Int, site: Site) -> UInt64 {
        var h = Self.mix(seed ^ 0x9E37_79B9_7F4A_7C15)
        h = Self.mix(h ^ step)
        h = Self.mix(h ^ (stream &* 0xD6E8_FEB8_6659_FD93))
        h = Self.mix(h ^ UInt64(layer + 1) &* 0xA076_1D64_78BD_642F)
        return Self.mix(h ^ site.rawValue)
    }

    /// The key of one sequence (row) for one site.
    static func rowKey(_ key: UInt64, row: Int) -> UInt64 { mix(key ^ (UInt64(row) &* 0xE703_7ED1_A0B4_28DB)) }

    /// One SplitMix64 step from `x`: a bijective avalanche mix.
    @inline(__always) static func mix(_ x: UInt64) -> UInt64 { SplitMix64.finalize(x &+ SplitMix64.increment) }

    /// Multiplies `count` values of one row in place by mask / (1 - p); index is the element's
    /// position inside the row. One hash, mix(rowKey + index / 4), gives four 16-bit uniforms
    /// (elements 4k..4k+3 of the row); an element is kept when its uniform is >= p · 65536.
    /// (CKernels' srdpr_dropout_row; DropoutMaskTests pins it to this definition.)
    @inline(__always) static func apply(_ x: UnsafeMutablePointer<Float>, count: Int, rowKey: UInt64, p: Float, start: Int = 0) {
        srdpr_dropout_row(x, count, rowKey, p, start)
    }
}

/// The global row numbers that key a batch's dropout masks: `offset + r` for contiguous rows, or
/// one label per row (a rank's context rows come from several parts of the global batch, and must
/// draw the masks those rows draw when one process encodes the whole batch).
public struct RowLabels: Sendable {
    public let offset: Int
    public let list: [Int]?

    public init(offset: Int = 0, list: [Int]? = nil) {
        self.offset = offset
        self.list = list
    }

    @inline(__always) public subscript(_ row: Int) -> Int { list.map { $0[row] } ?? offset + row }

    /// The labels of rows `range`.
    public func rows(_ range: Range<Int>) -> RowLabels {
        list.map { RowLabels(list: Array($0[range])) } ?? RowLabels(offset: offset + range.lowerBound)
    }

    /// The labels of rows `indices`, in that order.
    public func rows(_ indices: [Int]) -> RowLabels { RowLabels(list: indices.map { self[$0] }) }
}
