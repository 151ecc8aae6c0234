import Data
import Foundation

/// Hydra-style overrides, one argument per line (as `srdpr train` gets them from the shell).
/// A configuration that parses must also survive the JSON a checkpoint stores it as.
enum HydraTarget {
    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        let text = String(decoding: bytes, as: UTF8.self)
        let arguments = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard let (config, _) = try? TrainingConfig.parse(arguments) else { return }
        _ = try? config.requireDatasetPaths()
        _ = try? config.pipelines()
        _ = config.keyValues()
        guard let json = try? JSONEncoder().encode(config) else { violated("a valid configuration does not encode") }
        guard let back = try? JSONDecoder().decode(TrainingConfig.self, from: json) else {
            violated("the checkpoint JSON of a valid configuration does not decode: \(String(decoding: json, as: UTF8.self))")
        }
        if back != config { violated("checkpoint JSON round trip changed the configuration") }
    }
}
