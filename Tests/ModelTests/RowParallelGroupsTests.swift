@testable import Model
import XCTest

/// How RowParallelTraining deals a batch's rows to its threads: every row once, each group in row
/// order, and the threads' costs within one row of each other (contiguous groups could differ by
/// a whole long row: a thread then waits for the other at the end of every forward and backward).
final class RowParallelGroupsTests: XCTestCase {
    let config = BertConfig(vocabSize: 100, hiddenSize: 384, numLayers: 6, numHeads: 12, intermediateSize: 1536, maxPositions: 512)

    /// Right-padded rows of the given lengths.
    func batch(_ lengths: [Int]) throws -> TokenBatch {
        try TokenBatch(sequences: lengths.map { [Int32](repeating: 5, count: $0) })
    }

    func cost(_ length: Int) -> Double {
        Double(length) + RowParallelTraining.attentionCostPerPair(config) * Double(length * length)
    }

    /// The context lengths of one FAQ batch at max_length 128 (16 positives, 16 hard negatives),
    /// where contiguous halves got 1,803 and 1,606 tokens.
    static let faqContexts = [49, 49, 128, 108, 128, 128, 128, 91, 128, 128, 128, 40, 81, 88, 63, 82,
                              128, 128, 128, 128, 128, 128, 128, 128, 128, 128, 53, 54, 128, 110, 109, 128]

    func testEveryRowOnceInRowOrderAndBalancedWithinTheCheapestRow() throws {
        for lengths in [Self.faqContexts, [15, 34, 10, 15, 9, 7, 25, 19, 16, 12, 8, 22, 14, 16, 9, 15], [100, 7, 44, 3, 70, 15, 50], [128, 1, 1]] {
            for threads in [2, 3, 4] {
                let groups = RowParallelTraining.groups(try batch(lengths), threads: threads, config: config)
                XCTAssertEqual(groups.count, min(threads, lengths.count), "\(lengths), threads \(threads)")
                XCTAssertEqual(groups.flatMap { $0 }.sorted(), Array(lengths.indices), "every row once: \(groups)")
                for group in groups {
                    XCTAssertFalse(group.isEmpty, "\(groups)")
                    XCTAssertEqual(group, group.sorted(), "a group runs its rows in batch order: \(groups)")
                }
                // Dealt costliest first to the least loaded: the heaviest thread got its cheapest row
                // while it was the lightest, so no thread is behind it by more than that row.
                let loads = groups.map { $0.reduce(0) { $0 + cost(lengths[$1]) } }
                let heaviest = loads.indices.max { loads[$0] < loads[$1] }!
                let cheapest = groups[heaviest].map { cost(lengths[$0]) }.min()!
                XCTAssertLessThanOrEqual(loads.max()! - loads.min()!, cheapest + 1e-9, "\(lengths), threads \(threads): \(loads)")
                XCTAssertEqual(RowParallelTraining.groups(try batch(lengths), threads: threads, config: config), groups,
                               "the split is a function of the batch")
            }
        }
        // The FAQ batch: within one short passage, where contiguous halves differed by 197 tokens.
        let groups = RowParallelTraining.groups(try batch(Self.faqContexts), threads: 2, config: config)
        let tokens = groups.map { $0.reduce(0) { $0 + Self.faqContexts[$1] } }
        XCTAssertLessThan(abs(tokens[0] - tokens[1]), 60, "\(tokens)")
    }

    func testOneThreadOrOneRowIsNotSplit() throws {
        XCTAssertEqual(RowParallelTraining.groups(try batch([5, 9, 12]), threads: 1, config: config), [])
        XCTAssertEqual(RowParallelTraining.groups(try batch([40]), threads: 2, config: config), [])
    }

    /// Attention's length² counts: a 120-token row weighs more than two rows of 60, so the short
    /// row goes with the two (by tokens alone the threads would tie and the first would take it).
    func testALongRowCostsMoreThanItsTokensInShortRows() throws {
        XCTAssertEqual(cost(120) - cost(60) - cost(60), RowParallelTraining.attentionCostPerPair(config) * (120 * 120 - 2 * 60 * 60),
                       accuracy: 1e-9)
        XCTAssertEqual(RowParallelTraining.groups(try batch([120, 60, 60, 12]), threads: 2, config: config), [[0], [1, 2, 3]])
    }
}
