import Data

/// Pickle bytes as a ByteDataset sample would hold them: the generic reader under both policies
/// and the two fast sample decoders. Besides not crashing, the decoders must agree: a sample the
/// generic reader yields is the sample `Sample.decode` yields, and the zero-copy view decodes
/// exactly when `Sample.decode` does, to the same sample.
enum PickleTarget {
    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        let generic = try? PickleReader.read(bytes, policy: .dataOnly)
        _ = try? PickleReader.read(bytes, policy: .torchCheckpoint)
        let sample = try? Sample.decode(pickle: bytes)
        let view = try? SampleView.decode(pickle: bytes)

        if let generic {
            guard generic.byteCount > 0, generic.byteCount <= bytes.count else {
                violated("the reader consumed \(generic.byteCount) of \(bytes.count) bytes")
            }
            if let expected = try? Sample(pickle: generic.value), let sample, sample != expected {
                violated("Sample.decode gives \(sample), the generic reader \(expected)")
            }
        }
        if let view {
            guard let sample else { violated("the view decoded but Sample.decode threw") }
            if view.sample != sample { violated("the view gives \(view.sample), Sample.decode \(sample)") }
        } else if let sample {
            violated("Sample.decode gives \(sample) but the view threw")
        }
    }
}
