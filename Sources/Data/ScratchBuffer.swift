/// A growable flat array of plain values, reused from read to read by the pickle scanner.
///
/// An append is a capacity check and a store: no uniqueness check and no reference counting,
/// which a Swift `Array` pays on every mutation. It has one owner: the scanner that holds it
/// (copies would share the memory, so the scanner is never copied while in use).
struct ScratchBuffer<Element: BitwiseCopyable> {
    private(set) var base: UnsafeMutablePointer<Element>
    private(set) var count = 0
    private var capacity: Int
    /// Frees the memory when the last copy of the owner goes away.
    private let storage: Storage

    private final class Storage {
        var pointer: UnsafeMutablePointer<Element>
        init(_ pointer: UnsafeMutablePointer<Element>) { self.pointer = pointer }
        deinit { pointer.deallocate() }
    }

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
        storage = Storage(base)
    }

    @inline(__always)
    mutating func append(_ element: Element) {
        if count == capacity { grow() }
        base[count] = element
        count += 1
    }

    @inline(__always)
    subscript(index: Int) -> Element { base[index] }

    /// Forgets the elements after the first `count` (to undo a tentative parse).
    @inline(__always)
    mutating func truncate(to count: Int) { self.count = count }

    @inline(__always)
    mutating func removeAll() { count = 0 }

    var elements: UnsafeBufferPointer<Element> { UnsafeBufferPointer(start: base, count: count) }

    @inline(never)
    private mutating func grow() {
        let bigger = UnsafeMutablePointer<Element>.allocate(capacity: 2 * capacity)
        bigger.initialize(from: base, count: count)
        base.deallocate()
        base = bigger
        storage.pointer = bigger
        capacity *= 2
    }
}
