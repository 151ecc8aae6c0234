import Dispatch

/// One owned, zero-initialised allocation of Float32 (parameters, gradients or activations), as
/// llm.c does it: allocate once, hand out named views (pointer + count) into it.
public final class FloatBuffer {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    public init(count: Int) {
        self.count = count
        pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    public func zero() { pointer.update(repeating: 0, count: count) }

    /// `zero()` on `threads` threads side by side: a large buffer's memset is bound by what one core
    /// can store, and the other cores would wait for it.
    public func zero(threads: Int) {
        let parts = max(1, min(threads, count / (1 << 18)))
        guard parts > 1 else { return zero() }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let lo = count * part / parts, hi = count * (part + 1) / parts
            (pointer + lo).update(repeating: 0, count: hi - lo)
        }
    }

    /// A view of `slot` (offset and count in elements).
    public func view(_ slot: TensorSlot) -> UnsafeMutablePointer<Float> { pointer + slot.offset }

    public func array(_ range: Range<Int>) -> [Float] { Array(buffer[range]) }
    public func toArray() -> [Float] { Array(buffer) }
}
