import ArgumentParser
import Data
import Foundation
import Model

/// `srdpr inspect-checkpoint`: lists a checkpoint's sections after verifying every checksum.
struct InspectCheckpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect-checkpoint",
        abstract: "Verify a checkpoint's checksums and list its sections.",
        discussion: """
            Exits with an error naming the file when it is truncated, corrupt or not a checkpoint. \
            --json prints one JSON object per section instead of a table.
            """)

    @Argument(help: "Checkpoint file, e.g. output/dpr_biencoder.1000.")
    var file: String
    @Flag(help: "One JSON object per section.")
    var json = false

    func run() throws {
        let checkpoint = try CheckpointFile(url: URL(fileURLWithPath: file))
        let infos = checkpoint.names.compactMap { checkpoint.sections[$0] }
        if json {
            let encoder = JSONEncoder.sortedKeys()
            for info in infos { print(String(decoding: try encoder.encode(info), as: UTF8.self)) }
            return
        }
        let total = infos.reduce(0) { $0 + $1.length }
        print("\(file): \(infos.count) sections, \(total) bytes of data, checksums verified")
        let width = infos.map(\.name.count).max() ?? 0
        for info in infos {
            let name = info.name.padding(toLength: width, withPad: " ", startingAt: 0)
            switch info.kind {
            case .floats:
                let shape = info.shape.map { " \($0)" } ?? ""
                print("  \(name)  f32    \(info.length / 4) values\(shape)")
            case .json, .bytes:
                print("  \(name)  \(info.kind.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0))  \(info.length) bytes")
            }
        }
    }
}
