import Foundation
import Model

/// A `model.safetensors`: the header checks, then every tensor read as floats and as ints.
enum SafeTensorsTarget {
    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let file = try? SafeTensorsFile(data: Data(buffer: bytes), path: "fuzz.safetensors") else { return }
        for name in file.names {
            _ = try? file.floats(name)
            _ = try? file.ints(name)
        }
    }
}
