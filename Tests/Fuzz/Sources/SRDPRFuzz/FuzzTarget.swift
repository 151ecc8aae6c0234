/// One fuzz target: a name for `run.sh` and a function that must return (or throw inside)
/// for every input. A crash, a trap, a hang or an oversized allocation in it is a finding;
/// so is a broken invariant, which a target reports with `violated(_:)`.
struct FuzzTarget {
    let name: String
    let summary: String
    let run: (UnsafeBufferPointer<UInt8>) -> Void

    init(_ name: String, _ summary: String, _ run: @escaping (UnsafeBufferPointer<UInt8>) -> Void) {
        self.name = name
        self.summary = summary
        self.run = run
    }

    /// A target for a decoder `([UInt8]) throws -> T`: any thrown error is a pass. This is the
    /// whole target for a plain decoder such as a control message's `decode(_:)`.
    static func decoding<T>(_ name: String, _ summary: String, _ decode: @escaping ([UInt8]) throws -> T) -> FuzzTarget {
        FuzzTarget(name, summary) { bytes in _ = try? decode(Array(bytes)) }
    }
}

/// Stops the run with a message libFuzzer records along with the input (an oracle failed).
func violated(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("fuzz invariant violated: \(message())", file: file, line: line)
}
