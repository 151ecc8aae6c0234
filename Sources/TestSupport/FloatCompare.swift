/// Float comparisons for parity tests: the largest deviation and where it is, so a failing
/// test says which element went wrong instead of just "not equal".
public struct Deviation: CustomStringConvertible {
    public var maxAbs: Float = 0
    public var index: Int = -1
    public var actual: Float = 0
    public var expected: Float = 0
    /// Largest |expected| in the tensor, for tolerances relative to the tensor's scale.
    public var scale: Float = 0

    public var description: String {
        "max |diff| \(maxAbs) at [\(index)] (got \(actual), expected \(expected)); tensor scale \(scale)"
    }
}

public func deviation<A: Collection, B: Collection>(_ actual: A, _ expected: B) -> Deviation
where A.Element == Float, B.Element == Float {
    precondition(actual.count == expected.count, "sizes differ: \(actual.count) vs \(expected.count)")
    var result = Deviation()
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        result.scale = max(result.scale, abs(e))
        let d = a.isNaN || e.isNaN ? Float.infinity : abs(a - e)
        if d > result.maxAbs || result.index < 0 {
            result.maxAbs = d
            result.index = i
            result.actual = a
            result.expected = e
        }
    }
    return result
}
