import Data

/// Ring all-reduce (reduce-scatter, then all-gather), in the manner of Gloo's
/// `allreduce_ring_chunked`: the buffer is cut into `worldSize` segments and each segment into
/// chunks. Rank r sends segment r; at reduce-scatter step s it receives segment r-s-1 from its
/// left neighbour, adds it into its own copy and sends it on. After n-1 steps rank r holds the
/// full sum of segment r+1 (divided by n for the mean), which n-1 all-gather steps pass around
/// the ring. Chunks are pipelined: chunk k of a step goes on as soon as it has arrived, while
/// chunk k+1 is still on its way. Every rank moves 2(n-1)/n of the buffer each way.
enum RingAllReduce {
    /// Chunks of a segment; an empty segment still has one empty chunk, so every rank sends a
    /// message at every ring step and a peer that disagrees on the size fails on its header.
    static func chunkCount(_ length: Int, chunkElements: Int) -> Int {
        max(1, (length + chunkElements - 1) / chunkElements)
    }

    static func run(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, link: RingLink,
                    template: WireHeader, chunkElements: Int, zeroCopyMinimumBytes: Int) throws {
        let n = link.worldSize, r = link.rank
        guard n > 1 else { return }
        let count = buffer.count
        let chunkElements = max(1, chunkElements)
        let left = link.leftRank
        let scale = Float(n)
        func wrap(_ i: Int) -> Int { ((i % n) + n) % n }

        func chunkRange(segment: Int, chunk: Int) -> Range<Int> {
            let segment = ShardSplit.range(count: count, rank: segment, worldSize: n)
            let start = min(segment.upperBound, segment.lowerBound + chunk * chunkElements)
            return start..<min(segment.upperBound, start + chunkElements)
        }
        func chunks(of segment: Int) -> Range<Int> {
            0..<chunkCount(ShardSplit.range(count: count, rank: segment, worldSize: n).count, chunkElements: chunkElements)
        }
        func send(segment: Int, chunk: Int, ringStep: Int) throws {
            let range = chunkRange(segment: segment, chunk: chunk)
            var header = template
            header.segment = segment; header.chunk = chunk; header.ringStep = ringStep
            header.length = range.count * MemoryLayout<Float>.stride
            let bytes = UnsafeRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[
                (range.lowerBound * 4)..<(range.upperBound * 4)])
            try link.sendRight(header, payload: bytes, zeroCopy: bytes.count >= zeroCopyMinimumBytes)
        }
        func receive(segment: Int, chunk: Int, ringStep: Int) throws -> (ReceivedMessage, Range<Int>) {
            let range = chunkRange(segment: segment, chunk: chunk)
            var expected = template
            expected.sender = left; expected.segment = segment; expected.chunk = chunk; expected.ringStep = ringStep
            expected.length = range.count * MemoryLayout<Float>.stride
            let message = try link.receiveLeft(expected, checkLength: true,
                                               during: "all-reduce of \(count) floats, ring step \(ringStep), segment \(segment), chunk \(chunk)")
            return (message, range)
        }

        // The n-1 reduce-scatter and n-1 all-gather receives of every chunk, as a wavefront over
        // ticks: at tick T this rank sends chunk T of its own segment, then handles receive q of
        // chunk T-q-1 for q = 0, 1, ... (the left neighbour sent it at tick T-1, in this order).
        // Each link thus carries about one tick of messages at a time (2n-2 chunks), instead of
        // a whole segment sent ahead at the start, which keeps shared-memory lanes from filling up.
        let receives = 2 * (n - 1)
        func receiveSegment(_ q: Int) -> Int { q < n - 1 ? wrap(r - q - 1) : wrap(r - (q - (n - 1))) }
        let ownChunks = chunks(of: r).count
        let lastTick = (0..<receives).map { chunks(of: receiveSegment($0)).count + $0 }.max() ?? 0
        for tick in 0...max(lastTick, ownChunks - 1) {
            if tick < ownChunks { try send(segment: r, chunk: tick, ringStep: 0) }
            for q in 0..<receives {
                let chunk = tick - q - 1, segment = receiveSegment(q)
                guard chunk >= 0, chunk < chunks(of: segment).count else { continue }
                let (message, range) = try receive(segment: segment, chunk: chunk, ringStep: q)
                withExtendedLifetime(message) {
                    guard range.count > 0, let base = buffer.baseAddress else { return }
                    let destination = base + range.lowerBound
                    if q < n - 1 {
                        // Reduce-scatter: add the partial sum into our copy.
                        withFloats(message.payload) { accumulate(into: destination, from: $0, count: range.count) }
                        if q == n - 2 && op == .mean {
                            for i in 0..<range.count { destination[i] /= scale }
                        }
                    } else {
                        // All-gather: the finished sum of another rank's segment.
                        UnsafeMutableRawPointer(destination).copyMemory(from: message.payload.baseAddress!, byteCount: range.count * 4)
                    }
                }
                // Reduce-scatter step q+1, or the all-gather's next hop (the last one sends nothing).
                if q < receives - 1 { try send(segment: segment, chunk: chunk, ringStep: q + 1) }
            }
        }
        try link.drainSends()
    }

    /// Runs `body` on the payload as floats, copying only if libzmq handed us unaligned bytes.
    @inline(__always)
    private static func withFloats(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafePointer<Float>) -> Void) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            body(base.assumingMemoryBound(to: Float.self))
        } else {
            let copy = [Float](unsafeUninitializedCapacity: bytes.count / 4) { floats, initialized in
                UnsafeMutableRawPointer(floats.baseAddress!).copyMemory(from: base, byteCount: bytes.count)
                initialized = bytes.count / 4
            }
            copy.withUnsafeBufferPointer { body($0.baseAddress!) }
        }
    }

    /// `destination[i] += source[i]`, eight lanes at a time.
    @inline(__always)
    static func accumulate(into destination: UnsafeMutablePointer<Float>, from source: UnsafePointer<Float>, count: Int) {
        let vectors = count / 8
        let d = UnsafeMutableRawPointer(destination), s = UnsafeRawPointer(source)
        for v in 0..<vectors {
            let offset = v * 32
            let sum = d.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
                + s.loadUnaligned(fromByteOffset: offset, as: SIMD8<Float>.self)
            d.storeBytes(of: sum, toByteOffset: offset, as: SIMD8<Float>.self)
        }
        for i in (vectors * 8)..<count { destination[i] += source[i] }
    }
}
