import Foundation
import Model

/// `pytorch_model.bin`: the zip central directory, every entry's data range, the state-dict
/// pickle under the torch policy, then every tensor (strided views gathered).
enum TorchTarget {
    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let archive = try? ZipArchive(data: Data(buffer: bytes), path: "pytorch_model.bin") else { return }
        for name in archive.order { _ = try? archive.dataRange(name) }
        guard let checkpoint = try? TorchCheckpoint(archive: archive) else { return }
        for name in checkpoint.names { _ = try? checkpoint.tensor(name) }
    }
}
