import Data
import Foundation

/// `log_dir/config.yaml`: the configuration a run used, every parameter resolved (defaults
/// included), in the YAML that `srdpr train --config` reads back, so that the run can be repeated.
enum RunConfigurationFile {
    static let name = "config.yaml"

    static func write(_ config: TrainingConfig, to logDir: URL) throws {
        let url = logDir.appendingPathComponent(name)
        let text = config.yaml(header: [
            "The configuration of the run that wrote this directory (srdpr train, \(ISO8601DateFormatter().string(from: Date()))).",
            "Repeat it with: srdpr train --config \(url.path) [KEY=VALUE overrides, e.g. output_dir=...]",
        ])
        do {
            try Foundation.Data(text.utf8).write(to: url, options: .atomic)
        } catch {
            throw TrainerConfigurationFileError(path: url.path, reason: error.localizedDescription)
        }
    }
}

/// config.yaml could not be written (log_dir full or read-only).
struct TrainerConfigurationFileError: Error, CustomStringConvertible {
    let path: String
    let reason: String
    var description: String { "cannot write \(path): \(reason) (log_dir must be writable)" }
}
