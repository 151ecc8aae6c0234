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
        let bar = ProgressBar.forInput(path: inputJSONLPath)
        let summary: ConversionSummary
        do {
            summary = try ByteDatasetConverter.convert(
                jsonlPath: inputJSONLPath, outputDirectory: outputBytedatasetPath,
                progress: bar.map { bar in { done, total in bar.update(done: done, total: total) } })
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

/// A one-line progress bar on stderr, shown only on a terminal and for long inputs.
final class ProgressBar {
    private var lastDrawn = -1
    private let status = TerminalStatusLine(descriptor: 2)

    /// A bar when stderr is a terminal and the input is at least 16 MB, else nil.
    static func forInput(path: String) -> ProgressBar? {
        guard isatty(2) != 0,
              let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int,
              size >= 16 << 20 else { return nil }
        return ProgressBar()
    }

    func update(done: Int, total: Int) {
        guard total > 0 else { return }
        let percent = min(100, done * 100 / total)
        guard percent != lastDrawn else { return }
        lastDrawn = percent
        let width = 40
        let filled = percent * width / 100
        status.draw("[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
            + "] \(percent)% of \(total / 1_000_000) MB")
    }

    func finish() {
        status.finish()
        lastDrawn = -1
    }
}
