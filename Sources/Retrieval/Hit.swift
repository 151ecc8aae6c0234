/// One search result: the passage's row (in the index or the corpus) and its score; `Float` for
/// dense search (sgemm scores), `Double` for BM25 (scores equal to a float64 implementation's).
public struct Hit<Score: BinaryFloatingPoint & Sendable>: Equatable, Sendable, RankOrdered {
    public var row: Int
    public var score: Score

    public init(row: Int, score: Score) {
        self.row = row
        self.score = score
    }

    /// Ranking order: higher score first, ties broken by the lower row (corpus order), so results
    /// never depend on block size, thread count or heap order.
    @inline(__always)
    public static func ranksBefore(_ a: Hit, _ b: Hit) -> Bool {
        a.score > b.score || (a.score == b.score && a.row < b.row)
    }
}

/// A result that has a ranking order (best first); ties must be broken so the order is total.
public protocol RankOrdered {
    static func ranksBefore(_ a: Self, _ b: Self) -> Bool
}
