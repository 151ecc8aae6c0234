import CBLAS
import Data
import Dispatch

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
                       dimension: Int, k: Int, similarity: SimilarityFunction) -> [[Hit<Float>]] {
        precondition(queries.count >= queryCount * dimension && passages.count >= passageCount * dimension)
        let keep = min(k, passageCount)
        guard keep > 0, queryCount > 0, dimension > 0 else { return Array(repeating: [], count: queryCount) }

        var results: [[Hit<Float>]] = []
        results.reserveCapacity(queryCount)
        var scores = [Float](repeating: 0, count: min(queryBatch, queryCount) * min(blockSize, passageCount))
        var inverseNorms = [Float](repeating: 1, count: min(blockSize, passageCount))

        for qStart in stride(from: 0, to: queryCount, by: queryBatch) {
            let qCount = min(queryBatch, queryCount - qStart)
            var batch = Array(UnsafeBufferPointer(rebasing: queries[(qStart * dimension)..<((qStart + qCount) * dimension)]))
            if similarity == .cosine { normalizeRows(&batch, rows: qCount, dimension: dimension) }
            var heaps = Array(repeating: TopKHeap<Hit<Float>>(capacity: keep), count: qCount)

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
