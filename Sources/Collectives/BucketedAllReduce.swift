import Foundation

/// A part of a gradient buffer that is all-reduced as one piece.
public struct GradientBucket: Equatable, Sendable {
    public var range: Range<Int>
    /// Set when the part is a matrix of rows this wide whose untouched rows are zero on every rank
    /// (a word-embedding table): it is reduced with ``Communicator/allReduceNonzeroRows(_:rowWidth:op:)``.
    public var sparseRowWidth: Int?

    public init(_ range: Range<Int>, sparseRowWidth: Int? = nil) {
        self.range = range
        self.sparseRowWidth = sparseRowWidth
    }
}

/// All-reduce of a gradient buffer in buckets that overlaps backward, as PyTorch DDP does.
///
/// The trainer cuts its flat gradient buffer into buckets (usually in the order backward
/// produces them: last layers first), calls ``start(_:buckets:op:)`` before backward,
/// ``markReady(_:)`` as soon as backward has finished writing a bucket, and ``wait()`` before
/// clipping and the optimizer step. A background thread reduces the buckets strictly in index
/// order (the same order on every rank, whatever order the trainer marks them in), each as soon
/// as it is ready, while backward keeps computing the next ones.
///
/// Between `start` and `wait` the communicator belongs to the background thread: the caller
/// must not run other collectives on it, nor touch a bucket after marking it ready.
public final class BucketedAllReduce {
    public let communicator: Communicator
    /// The state shared with the background thread (which keeps it alive, not this object).
    private let core: BucketedAllReduceCore

    public init(communicator: Communicator) {
        self.communicator = communicator
        core = BucketedAllReduceCore(communicator: communicator)
    }

    deinit { core.shutDown() }

    /// Buckets of at most `bucketElements` elements covering `0..<count`, last bucket first
    /// (backward produces the gradients of the last layers first).
    public static func buckets(count: Int, bucketElements: Int) -> [Range<Int>] {
        let size = max(1, bucketElements)
        var result: [Range<Int>] = []
        var end = count
        while end > 0 {
            let start = max(0, end - size)
            result.append(start..<end)
            end = start
        }
        return result
    }

    /// Number of buckets already reduced in the current round (for progress and tests).
    public var reducedBuckets: Int { core.reducedBuckets }

    /// Begins a round over `buffer`; `buckets` must be disjoint ranges inside it, listed in the
    /// order every rank reduces them.
    /// `wire`: how the payloads travel (``AllReduceWireType``).
    public func start(_ buffer: UnsafeMutableBufferPointer<Float>, buckets: [GradientBucket], op: ReduceOp,
                      wire: AllReduceWireType = .fp32) throws {
        try core.start(buffer, buckets: buckets, op: op, wire: wire)
    }

    /// ``start(_:buckets:op:)`` with dense buckets.
    public func start(_ buffer: UnsafeMutableBufferPointer<Float>, buckets: [Range<Int>], op: ReduceOp,
                      wire: AllReduceWireType = .fp32) throws {
        try core.start(buffer, buckets: buckets.map { GradientBucket($0) }, op: op, wire: wire)
    }

    /// Backward has finished writing bucket `index`; it may be reduced now.
    public func markReady(_ index: Int) throws { try core.markReady(index) }

    /// Blocks until every bucket is reduced; rethrows the first error of the background thread.
    /// Buckets never marked ready are marked now.
    public func wait() throws { try core.wait() }
}

final class BucketedAllReduceCore {
    let communicator: Communicator

    private let condition = NSCondition()
    private var thread: Thread?
    private var buffer: UnsafeMutableBufferPointer<Float>?
    private var buckets: [GradientBucket] = []
    private var op: ReduceOp = .sum
    private var wire: AllReduceWireType = .fp32
    private var ready: [Bool] = []
    private var reduced = 0
    private var running = false
    private var shuttingDown = false
    private var failure: Error?

    init(communicator: Communicator) {
        self.communicator = communicator
    }

    func shutDown() {
        condition.lock()
        shuttingDown = true
        condition.broadcast()
        condition.unlock()
    }

    /// Number of buckets already reduced in the current round (for progress and tests).
    var reducedBuckets: Int {
        condition.lock(); defer { condition.unlock() }
        return reduced
    }

    /// Begins a round over `buffer`; `buckets` must be disjoint ranges inside it, listed in the
    /// order every rank reduces them.
    func start(_ buffer: UnsafeMutableBufferPointer<Float>, buckets: [GradientBucket], op: ReduceOp, wire: AllReduceWireType) throws {
        for (i, bucket) in buckets.enumerated() where bucket.range.lowerBound < 0 || bucket.range.upperBound > buffer.count {
            throw CollectivesError.invalidArgument("bucket \(i) \(bucket.range) lies outside the gradient buffer of \(buffer.count) floats")
        }
        condition.lock()
        defer { condition.unlock() }
        guard !running else { throw CollectivesError.invalidArgument("start called twice without wait()") }
        self.buffer = buffer
        self.buckets = buckets
        self.op = op
        self.wire = wire
        ready = Array(repeating: false, count: buckets.count)
        reduced = 0
        failure = nil
        running = true
        if thread == nil {
            let thread = Thread { [self] in self.reduceLoop() }
            thread.name = "srdpr-bucketed-allreduce"
            self.thread = thread
            thread.start()
        }
        condition.broadcast()
    }

    /// Backward has finished writing bucket `index`; it may be reduced now.
    func markReady(_ index: Int) throws {
        condition.lock()
        defer { condition.unlock() }
        guard running, ready.indices.contains(index) else {
            throw CollectivesError.invalidArgument("markReady(\(index)): no round started or no such bucket (\(ready.count) buckets)")
        }
        ready[index] = true
        condition.broadcast()
    }

    /// Blocks until every bucket is reduced; rethrows the first error of the background thread.
    /// Buckets never marked ready are marked now.
    func wait() throws {
        condition.lock()
        defer { condition.unlock() }
        guard running else { return }
        for i in ready.indices { ready[i] = true }
        condition.broadcast()
        while reduced < buckets.count && failure == nil { condition.wait() }
        running = false
        buffer = nil
        if let failure { throw failure }
    }

    private func reduceLoop() {
        condition.lock()
        while true {
            while !shuttingDown && !(running && failure == nil && reduced < buckets.count && ready[reduced]) {
                condition.wait()
            }
            if shuttingDown { break }
            let bucket = buckets[reduced]
            guard let buffer else { break }
            let op = self.op, wire = self.wire
            condition.unlock()
            var error: Error?
            do {
                let part = UnsafeMutableBufferPointer(rebasing: buffer[bucket.range])
                if let width = bucket.sparseRowWidth {
                    try communicator.allReduceNonzeroRows(part, rowWidth: width, op: op, wire: wire)
                } else {
                    try communicator.allReduce(part, op: op, wire: wire)
                }
            } catch let caught {
                error = caught
            }
            condition.lock()
            if let error { failure = error } else { reduced += 1 }
            condition.broadcast()
        }
        // The Thread keeps its closure, which holds this core: drop the Thread so that core,
        // thread and the communicator (with its sockets) are freed once this loop returns.
        thread = nil
        condition.unlock()
    }
}
