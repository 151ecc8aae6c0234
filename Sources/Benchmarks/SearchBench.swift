import Foundation
import Retrieval
import Model

/// `srdpr bench search`: exact top-k search throughput over random passages.
public enum SearchBench {
    public struct Options {
        public var passages: Int
        public var dimension: Int
        public var queries: Int
        public var k: Int
        public var threads: Int
        public var blockSize: Int
        public var repeats: Int

        public init(passages: Int = 100_000, dimension: Int = 384, queries: Int = 256, k: Int = 100,
                    threads: Int = 2, blockSize: Int = 16_384, repeats: Int = 5) {
            self.passages = passages
            self.dimension = dimension
            self.queries = queries
            self.k = k
            self.threads = threads
            self.blockSize = blockSize
            self.repeats = repeats
        }
    }

    /// Returns the JSON object printed as the bench's final line.
    public static func run(_ options: Options, log: (String) -> Void = { _ in }) -> [String: Any] {
        BLASThreads.set(options.threads)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 32)) / Float(Int32.max)
        }
        log("generating \(options.passages) x \(options.dimension) random passages")
        let passages = (0..<(options.passages * options.dimension)).map { _ in next() }
        let queries = (0..<(options.queries * options.dimension)).map { _ in next() }
        let search = ExactSearch(blockSize: options.blockSize, queryBatch: options.queries, selectionThreads: options.threads)
        var times: [Double] = []
        for trial in 0...options.repeats {
            let start = DispatchTime.now().uptimeNanoseconds
            let hits = queries.withUnsafeBufferPointer { q in passages.withUnsafeBufferPointer { p in
                search.search(queries: q, queryCount: options.queries, passages: p, passageCount: options.passages,
                              dimension: options.dimension, k: options.k, similarity: .dotProduct)
            } }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            precondition(hits.count == options.queries)
            if trial > 0 { times.append(seconds) }   // trial 0 warms up
            log(String(format: "trial %d: %.3f s", trial, seconds))
        }
        times.sort()
        let median = times[times.count / 2]
        return [
            "bench": "search", "passages": options.passages, "dimension": options.dimension,
            "queries": options.queries, "k": options.k, "threads": options.threads, "block_size": options.blockSize,
            "median_s": median, "min_s": times.first!, "max_s": times.last!,
            "queries_per_s": Double(options.queries) / median,
        ]
    }
}
