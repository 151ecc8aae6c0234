import ArgumentParser
import Data
import Foundation

/// `srdpr create-dataset`: JSON-lines samples to a ByteDataset (the original's `create_dataset`).
struct CreateDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-dataset",
        abstract: "Convert JSON-lines samples into a ByteDataset (idxs.pkl + data.pkl).")

    @Option(name: .customLong("input-jsonl-path"), help: "JSON-lines file, one sample per line.")
    var inputJSONLPath: String

    @Option(name: .customLong("output-bytedataset-path"), help: "Output directory (created if missing).")
    var outputBytedatasetPath: String

    func run() throws {
        let start = Date()
        // A bar only on a terminal and for inputs of 16 MB and more.
        let size = (try? FileManager.default.attributesOfItem(atPath: inputJSONLPath))?[.size] as? Int ?? 0
        let bar = isatty(STDERR_FILENO) != 0 && size >= 16 << 20 ? ProgressBar(label: "create-dataset", total: size >> 20, unit: "MB") : nil
        let summary: ConversionSummary
        do {
            summary = try ByteDatasetConverter.convert(
                jsonlPath: inputJSONLPath, outputDirectory: outputBytedatasetPath,
                progress: bar.map { bar in { done, total in bar.update(done: done >> 20) } })
        } catch {
            bar?.finish()
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        bar?.finish()
        let seconds = Date().timeIntervalSince(start)
        let mb = Double(summary.inputBytes) / 1e6
        print("wrote \(summary.samples) samples to \(outputBytedatasetPath) (\(summary.dataBytes) bytes of pickles) "
              + "from \(String(format: "%.1f", mb)) MB of JSON-lines in \(String(format: "%.2f", seconds)) s")
    }
}
