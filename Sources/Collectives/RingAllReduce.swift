/// Ring all-reduce (reduce-scatter, then all-gather), in the manner of Gloo's
/// `allreduce_ring_chunked`: the buffer is cut into `worldSize` segments and each segment into
/// chunks. Rank r first sends segment r; at reduce-scatter step s it receives segment r-s-1 from
/// its left neighbour chunk by chunk, adds each chunk into its own copy and sends that chunk on
/// right away, so the next step's send of chunk k overlaps the receive of chunk k+1. After n-1
/// steps rank r holds the full sum of segment r+1 (divided by n for the mean), which n-1
/// all-gather steps pass around the ring. Every rank moves 2(n-1)/n of the buffer each way.
enum RingAllReduce {
    /// Elements of segment `index` when `count` elements are split into `parts` (first ones larger).
    static func segmentRange(_ index: Int, count: Int, parts: Int) -> Range<Int> {
        let base = count / parts, remainder = count % parts
        let start = index * base + min(index, remainder)
        return start..<(start + base + (index < remainder ? 1 : 0))
    }

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
            let segment = segmentRange(segment, count: count, parts: n)
            let start = min(segment.upperBound, segment.lowerBound + chunk * chunkElements)
            return start..<min(segment.upperBound, start + chunkElements)
        }
        func chunks(of segment: Int) -> Range<Int> {
            0..<chunkCount(segmentRange(segment, count: count, parts: n).count, chunkElements: chunkElements)
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

        // Reduce-scatter.
        for chunk in chunks(of: r) { try send(segment: r, chunk: chunk, ringStep: 0) }
        for s in 0..<(n - 1) {
            let segment = wrap(r - s - 1)
            for chunk in chunks(of: segment) {
                let (message, range) = try receive(segment: segment, chunk: chunk, ringStep: s)
                if range.count > 0, let base = buffer.baseAddress {
                    let destination = base + range.lowerBound
                    withFloats(message.payload) { accumulate(into: destination, from: $0, count: range.count) }
                    if s == n - 2 && op == .mean {
                        for i in 0..<range.count { destination[i] /= scale }
                    }
                }
                // Reduce-scatter step s+1, or all-gather step 0 once the segment is complete.
                try send(segment: segment, chunk: chunk, ringStep: s + 1)
            }
        }
        // All-gather.
        for t in 0..<(n - 1) {
            let segment = wrap(r - t)
            for chunk in chunks(of: segment) {
                let (message, range) = try receive(segment: segment, chunk: chunk, ringStep: n - 1 + t)
                if range.count > 0, let base = buffer.baseAddress {
                    UnsafeMutableRawPointer(base + range.lowerBound)
                        .copyMemory(from: message.payload.baseAddress!, byteCount: range.count * 4)
                }
                if t < n - 2 { try send(segment: segment, chunk: chunk, ringStep: n + t) }
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
