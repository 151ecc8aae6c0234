import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One owned, zero-initialised allocation of Float32 (parameters, gradients or activations), as
/// llm.c does it: allocate once, hand out named views (pointer + count) into it.
///
/// calloc, not allocate + fill: a large block comes straight from the kernel already zero, so
/// nothing writes hundreds of megabytes of zeros up front (each page is mapped on first use).
public final class FloatBuffer {
    public private(set) var pointer: UnsafeMutablePointer<Float>
    public private(set) var count: Int

    public init(count: Int) {
        self.count = count
        guard let raw = calloc(max(count, 1), MemoryLayout<Float>.stride) else {
            fatalError("out of memory: could not allocate \(count) floats (\(count * 4 / 1_048_576) MB)")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    deinit { free(pointer) }

    /// Grows (or shrinks) to `newCount` values. The first min(count, newCount) values are kept; the
    /// values after them are unspecified (scratch reuses them as they are). A large block is moved
    /// by remapping its pages, so the pages it had are neither copied nor faulted in again: growing
    /// activations costs only the pages added. `pointer` changes: views taken before are invalid.
    public func resize(to newCount: Int) {
        guard newCount != count else { return }
        guard let raw = realloc(pointer, max(newCount, 1) * MemoryLayout<Float>.stride) else {
            fatalError("out of memory: could not grow a buffer to \(newCount) floats (\(newCount * 4 / 1_048_576) MB)")
        }
        pointer = raw.bindMemory(to: Float.self, capacity: max(newCount, 1))
        count = newCount
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    public func zero() { pointer.update(repeating: 0, count: count) }

    /// `zero()` on `threads` threads side by side: a large buffer's memset is bound by what one core
    /// can store, and the other cores would wait for it.
    public func zero(threads: Int) { zero(spans: [0..<count], threads: threads) }

    /// Zeroes the elements of `spans` (sorted, disjoint) on up to `threads` threads, in equal shares.
    func zero(spans: [Range<Int>], threads: Int) {
        let total = spans.reduce(0) { $0 + $1.count }, pointer = pointer
        let parts = max(1, min(threads, total / (1 << 18)))
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            for span in ElementSpans.share(of: spans, part: part, of: parts) {
                (pointer + span.lowerBound).update(repeating: 0, count: span.count)
            }
        }
    }

    /// A view of `slot` (offset and count in elements).
    public func view(_ slot: TensorSlot) -> UnsafeMutablePointer<Float> { pointer + slot.offset }

    public func array(_ range: Range<Int>) -> [Float] { Array(buffer[range]) }
    public func toArray() -> [Float] { Array(buffer) }
}
