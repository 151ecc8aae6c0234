import ArgumentParser
import Data
import Foundation

/// `srdpr inspect-dataset D [--index I]`: the sample count, or sample I as one JSON line.
struct InspectDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect-dataset",
        abstract: "Print a ByteDataset's sample count, or one sample as a JSON line.")

    @Argument(help: "ByteDataset directory (holding idxs.pkl and data.pkl).")
    var dataset: String

    @Option(name: .long, help: "Print this sample (0-based) as one JSON line, keys in the source order.")
    var index: Int?

    func run() throws {
        do {
            let data = try ByteDataset(directory: dataset)
            guard let index else {
                print(data.count)
                return
            }
            let value = try data.value(at: index)
            _ = try data.typedSample(at: index)  // a sample, not just any pickle
            guard let line = value.jsonText else {
                throw ByteDatasetError.notASample(file: dataset, index: index, message: "holds values JSON cannot express")
            }
            print(line)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
