import Data
import Foundation
import Model

/// A checkpoint given as `model_file=`: end marker, index checksum and JSON, section bounds
/// and checksums, then every section read the way resume reads them.
enum CheckpointTarget {
    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let file = try? CheckpointFile(data: Data(buffer: bytes), path: "fuzz.ckpt") else { return }
        for name in file.names {
            _ = try? file.floats(name)
            _ = try? file.shape(name)
            _ = try? file.bytes(name)
            _ = try? file.json(name, as: TrainingConfig.self)
        }
    }
}
