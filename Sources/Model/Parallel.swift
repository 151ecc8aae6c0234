import Dispatch

/// Splits `0..<count` rows over a few threads for the non-BLAS loops (softmax, LayerNorm, GELU),
/// and only when there is enough work to pay for the dispatch.
enum Parallel {
    nonisolated(unsafe) static var threads = 2

    static func rows(_ count: Int, work: Int, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, count)
        if parts <= 1 || count * work < 32_768 {
            body(0..<count)
            return
        }
        DispatchQueue.concurrentPerform(iterations: parts) { p in
            let lo = count * p / parts, hi = count * (p + 1) / parts
            body(lo..<hi)
        }
    }

    /// Runs `body` with one-thread sgemm and one-thread elementwise loops, then restores both: for
    /// code that runs its own threads, each on a model replica (nested threads would oversubscribe).
    static func withOneThreadKernels<T>(_ body: () throws -> T) rethrows -> T {
        let blasThreads = BLASThreads.current, parallelThreads = threads
        BLASThreads.set(1)
        threads = 1
        defer {
            BLASThreads.set(blasThreads)
            threads = parallelThreads
        }
        return try body()
    }
}
