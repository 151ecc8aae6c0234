import Data
import XCTest
import Retrieval

final class ExactSearchTests: XCTestCase {
    /// A small deterministic generator so failures reproduce.
    struct LCG {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2_000_001 - 1_000_000) / 1_000_000
        }
    }

    func bruteForce(_ q: [Float], _ p: [Float], nq: Int, np: Int, d: Int, k: Int, cosine: Bool) -> [[Hit<Float>]] {
        func norm(_ v: ArraySlice<Float>) -> Double { (v.reduce(0.0) { $0 + Double($1) * Double($1) }).squareRoot() }
        return (0..<nq).map { i in
            let qi = q[(i * d)..<((i + 1) * d)]
            var all: [(Int, Double)] = (0..<np).map { j in
                let pj = p[(j * d)..<((j + 1) * d)]
                var dot = 0.0
                for t in 0..<d { dot += Double(qi[qi.startIndex + t]) * Double(pj[pj.startIndex + t]) }
                return (j, cosine ? dot / (norm(qi) * norm(pj)) : dot)
            }
            all.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
            return all.prefix(k).map { Hit(row: $0.0, score: Float($0.1)) }
        }
    }

    func testMatchesBruteForceForEveryBlockSize() {
        var rng = LCG(state: 42)
        let nq = 37, np = 1000, d = 16, k = 10
        let q = (0..<(nq * d)).map { _ in rng.next() }
        let p = (0..<(np * d)).map { _ in rng.next() }
        for similarity in [SimilarityFunction.dotProduct, .cosine] {
            let expected = bruteForce(q, p, nq: nq, np: np, d: d, k: k, cosine: similarity == .cosine)
            var oneBlock: [[Hit<Float>]] = []
            for (blockSize, queryBatch) in [(np, 64), (1, 5), (7, 64), (333, 10), (4096, 1)] {
                let got = q.withUnsafeBufferPointer { qp in p.withUnsafeBufferPointer { pp in
                    ExactSearch(blockSize: blockSize, queryBatch: queryBatch).search(
                        queries: qp, queryCount: nq, passages: pp, passageCount: np, dimension: d, k: k,
                        similarity: similarity)
                } }
                XCTAssertEqual(got.count, nq)
                for (g, e) in zip(got, expected) {
                    XCTAssertEqual(g.map(\.row), e.map(\.row), "block \(blockSize), \(similarity)")
                    for (gh, eh) in zip(g, e) { XCTAssertEqual(gh.score, eh.score, accuracy: 1e-4) }
                }
                // sgemm may round a block's dot products differently in the last bit: same rows,
                // scores within float rounding.
                if oneBlock.isEmpty { oneBlock = got } else {
                    XCTAssertEqual(got.map { $0.map(\.row) }, oneBlock.map { $0.map(\.row) }, "block \(blockSize)")
                    let worst = zip(got.joined(), oneBlock.joined()).map { abs($0.score - $1.score) }.max() ?? 0
                    XCTAssertLessThan(worst, 1e-5, "block \(blockSize)")
                }
            }
        }
    }

    func testTiesAreBrokenByRowAndKLargerThanCorpus() {
        // Rows 1, 2 and 4 are identical: they tie and must come in row order.
        let d = 2
        let p: [Float] = [0, 1, 1, 0, 1, 0, 0.5, 0, 1, 0]
        let q: [Float] = [1, 0]
        let hits = q.withUnsafeBufferPointer { qp in p.withUnsafeBufferPointer { pp in
            ExactSearch(blockSize: 2).search(queries: qp, queryCount: 1, passages: pp, passageCount: 5,
                                             dimension: d, k: 50, similarity: .dotProduct)
        } }
        XCTAssertEqual(hits[0].map(\.row), [1, 2, 4, 3, 0])
    }

    func testEmptyCorpusAndZeroK() {
        let q: [Float] = [1, 0]
        let none = q.withUnsafeBufferPointer { qp in
            ExactSearch().search(queries: qp, queryCount: 1, passages: UnsafeBufferPointer(start: nil, count: 0),
                                 passageCount: 0, dimension: 2, k: 5, similarity: .dotProduct)
        }
        XCTAssertEqual(none, [[]])
    }
}
