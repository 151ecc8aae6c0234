/// Where each named tensor lives inside one contiguous Float buffer (parameters, gradients and
/// AdamW moments all share this layout), as in llm.c: one allocation, named views into it.
public struct TensorSlot: Equatable, Sendable {
    /// Hugging Face parameter name, e.g. `encoder.layer.0.attention.self.query.weight`.
    public var name: String
    public var shape: [Int]
    /// Offset in elements from the start of the buffer.
    public var offset: Int

    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }

    public init(name: String, shape: [Int], offset: Int) {
        self.name = name
        self.shape = shape
        self.offset = offset
    }
}

/// An ordered list of slots packed back to back.
public struct ParameterLayout: Sendable {
    public private(set) var slots: [TensorSlot] = []
    public private(set) var totalCount: Int = 0
    private var indexByName: [String: Int] = [:]

    public init() {}

    /// Appends a tensor after the last one and returns its slot.
    @discardableResult
    public mutating func append(_ name: String, shape: [Int]) -> TensorSlot {
        precondition(indexByName[name] == nil, "duplicate tensor name \(name)")
        let slot = TensorSlot(name: name, shape: shape, offset: totalCount)
        indexByName[name] = slots.count
        slots.append(slot)
        totalCount += slot.count
        return slot
    }

    public subscript(name: String) -> TensorSlot? {
        indexByName[name].map { slots[$0] }
    }
}
