import CBLAS
import Dispatch

/// One search result: the passage's row in the index and its score.
public struct Hit: Equatable, Sendable, RankOrdered {
    public var row: Int
    public var score: Float

    public init(row: Int, score: Float) {
        self.row = row
        self.score = score
    }

    /// Ranking order: higher score first, ties broken by the lower row so results never depend
    /// on block size or heap order.
    @inline(__always)
    public static func ranksBefore(_ a: Hit, _ b: Hit) -> Bool {
        a.score > b.score || (a.score == b.score && a.row < b.row)
    }
}

public enum Similarity: String, Sendable, Codable {
    case dotProduct = "dot_product"
    case cosine
}

/// Exact maximum-inner-product (or cosine) search: scores come from one sgemm per block of
/// passages, and only a k-sized heap per query is kept, so memory is bounded by
/// `queryBatch * blockSize` scores whatever the corpus size.
public struct ExactSearch {
    public var blockSize: Int
    public var queryBatch: Int
    /// Threads for the top-k selection (the sgemm uses OpenBLAS's own thread count).
    public var selectionThreads: Int

    public init(blockSize: Int = 16_384, queryBatch: Int = 256, selectionThreads: Int = 2) {
        self.blockSize = max(1, blockSize)
        self.queryBatch = max(1, queryBatch)
        self.selectionThreads = max(1, selectionThreads)
    }

    /// - Parameters:
    ///   - queries: row-major [queryCount x dimension].
    ///   - passages: row-major [passageCount x dimension] (typically a memory-mapped index).
    /// - Returns: for each query, min(k, passageCount) hits, best first.
    public func search(queries: UnsafeBufferPointer<Float>, queryCount: Int,
                       passages: UnsafeBufferPointer<Float>, passageCount: Int,
                       dimension: Int, k: Int, similarity: Similarity) -> [[Hit]] {
        precondition(queries.count >= queryCount * dimension && passages.count >= passageCount * dimension)
        let keep = min(k, passageCount)
        guard keep > 0, queryCount > 0, dimension > 0 else { return Array(repeating: [], count: queryCount) }

        var results: [[Hit]] = []
        results.reserveCapacity(queryCount)
        var scores = [Float](repeating: 0, count: min(queryBatch, queryCount) * min(blockSize, passageCount))
        var inverseNorms = [Float](repeating: 1, count: min(blockSize, passageCount))

        for qStart in stride(from: 0, to: queryCount, by: queryBatch) {
            let qCount = min(queryBatch, queryCount - qStart)
            var batch = Array(UnsafeBufferPointer(rebasing: queries[(qStart * dimension)..<((qStart + qCount) * dimension)]))
            if similarity == .cosine { normalizeRows(&batch, rows: qCount, dimension: dimension) }
            var heaps = Array(repeating: TopKHeap<Hit>(capacity: keep), count: qCount)

            for pStart in stride(from: 0, to: passageCount, by: blockSize) {
                let pCount = min(blockSize, passageCount - pStart)
                let block = passages.baseAddress! + pStart * dimension
                // scores[q, p] = batch[q, :] . block[p, :]
                batch.withUnsafeBufferPointer { q in
                    scores.withUnsafeMutableBufferPointer { s in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(qCount), Int32(pCount),
                                    Int32(dimension), 1, q.baseAddress, Int32(dimension), block, Int32(dimension),
                                    0, s.baseAddress, Int32(pCount))
                    }
                }
                if similarity == .cosine {
                    for p in 0..<pCount {
                        var sum: Float = 0
                        let row = block + p * dimension
                        for j in 0..<dimension { sum += row[j] * row[j] }
                        inverseNorms[p] = sum > 0 ? 1 / sum.squareRoot() : 0
                    }
                }
                // Heap updates are independent per query: split the queries over the workers.
                let workers = min(selectionThreads, qCount)
                scores.withUnsafeBufferPointer { s in
                    inverseNorms.withUnsafeBufferPointer { norms in
                        heaps.withUnsafeMutableBufferPointer { heapList in
                            let heapBase = heapList.baseAddress!
                            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                                for q in stride(from: worker, to: qCount, by: workers) {
                                    let row = s.baseAddress! + q * pCount
                                    if similarity == .cosine {
                                        for p in 0..<pCount { heapBase[q].offer(Hit(row: pStart + p, score: row[p] * norms[p])) }
                                    } else {
                                        for p in 0..<pCount { heapBase[q].offer(Hit(row: pStart + p, score: row[p])) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            for heap in heaps { results.append(heap.sortedBestFirst()) }
        }
        return results
    }

    private func normalizeRows(_ values: inout [Float], rows: Int, dimension: Int) {
        for r in 0..<rows {
            var sum: Float = 0
            for j in 0..<dimension { sum += values[r * dimension + j] * values[r * dimension + j] }
            let scale = sum > 0 ? 1 / sum.squareRoot() : 0
            for j in 0..<dimension { values[r * dimension + j] *= scale }
        }
    }
}

/// A result that has a ranking order (best first); ties must be broken so the order is total.
public protocol RankOrdered {
    static func ranksBefore(_ a: Self, _ b: Self) -> Bool
}

/// A bounded min-heap holding the best `capacity` items seen so far; its root is the worst kept one.
struct TopKHeap<Item: RankOrdered> {
    private(set) var items: [Item] = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        items.reserveCapacity(capacity)
    }

    @inline(__always)
    mutating func offer(_ item: Item) {
        if items.count < capacity {
            items.append(item)
            siftUp(items.count - 1)
        } else if capacity > 0 && Item.ranksBefore(item, items[0]) {
            items[0] = item
            siftDown(0)
        }
    }

    func sortedBestFirst() -> [Item] {
        items.sorted(by: Item.ranksBefore)
    }

    // "Worse" items float to the root.
    private mutating func siftUp(_ index: Int) {
        var child = index
        while child > 0 {
            let parent = (child - 1) / 2
            guard Item.ranksBefore(items[parent], items[child]) else { break }
            items.swapAt(parent, child)
            child = parent
        }
    }

    private mutating func siftDown(_ index: Int) {
        var parent = index
        while true {
            let left = 2 * parent + 1, right = left + 1
            var worst = parent
            if left < items.count && Item.ranksBefore(items[worst], items[left]) { worst = left }
            if right < items.count && Item.ranksBefore(items[worst], items[right]) { worst = right }
            if worst == parent { return }
            items.swapAt(parent, worst)
            parent = worst
        }
    }
}
