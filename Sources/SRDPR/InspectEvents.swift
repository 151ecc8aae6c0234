import ArgumentParser
import Coordinator
import Foundation

/// `srdpr inspect-events`: prints the scalars of TensorBoard event files, without TensorBoard.
struct InspectEvents: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect-events",
        abstract: "Print the scalars of TensorBoard event files (a log_dir or one events.out.tfevents.* file).",
        discussion: "One line per scalar: step, tag, value, wall time (tab separated). Checksums are verified.")

    @Argument(help: "A log directory or an event file.")
    var path: String
    @Option(help: "Only this tag.")
    var tag: String?

    func run() throws {
        let url = URL(fileURLWithPath: path)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError("\(path) does not exist")
        }
        let files = isDirectory.boolValue ? try TensorBoardEventReader.eventFiles(in: url) : [url]
        if files.isEmpty { throw CLIError("no events.out.tfevents.* files in \(path)") }
        for file in files {
            for event in try TensorBoardEventReader.read(file) {
                for scalar in event.scalars where tag == nil || scalar.tag == tag {
                    print("\(event.step)\t\(scalar.tag)\t\(scalar.value)\t\(event.wallTime)")
                }
            }
        }
    }
}
