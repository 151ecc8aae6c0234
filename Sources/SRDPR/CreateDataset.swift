import ArgumentParser
import Data
import Foundation
import Retrieval

/// `srdpr create-dataset`: JSON-lines samples to a ByteDataset (the original's `create_dataset`).
struct CreateDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-dataset",
        abstract: "Convert JSON-lines samples into a ByteDataset (idxs.pkl + data.pkl).",
        discussion: """
            --from srdpr (default): SR-DPR JSON lines, converted as the original's create_dataset does.
            --from dpr: DPR's training JSON list (positive_ctxs, hard_negative_ctxs; negative_ctxs dropped), streamed.
            --from tevatron: Tevatron JSON lines (query, positive_passages, negative_passages).
            --from beir: a BEIR directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv; relevance > 0 = positive; no hard negatives: mine them with `srdpr mine-hard-negatives`). Imported samples are numbered 0, 1, ... in input order.
            """)

    @Option(name: [.customLong("input-jsonl-path"), .customLong("input")],
            help: "Input file (JSON lines; DPR: a JSON file; BEIR: the dataset directory).")
    var inputJSONLPath: String

    @Option(name: .customLong("output-bytedataset-path"), help: "Output directory (created if missing).")
    var outputBytedatasetPath: String

    @Option(help: "Input format: srdpr, dpr, tevatron or beir.")
    var from: String = "srdpr"

    @Option(help: "--from beir: the qrels split (qrels/SPLIT.tsv).")
    var split: String?

    func validate() throws {
        guard let format = TrainingDataImporter.Format(rawValue: from) else {
            throw ValidationError("--from must be one of srdpr, dpr, tevatron, beir; not '\(from)'")
        }
        if split != nil && format != .beir { throw ValidationError("--split is for --from beir only") }
    }

    func run() throws {
        let format = TrainingDataImporter.Format(rawValue: from)!
        if format != .srdpr { return try runImport(format) }
        let start = Date()
        let bar = largeInputBar()
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

extension CreateDataset {
    /// The progress line, only on a terminal and for inputs of 16 MB and more (in MB).
    func largeInputBar() -> ProgressBar? {
        let size = (try? FileManager.default.attributesOfItem(atPath: inputJSONLPath))?[.size] as? Int ?? 0
        return isatty(STDERR_FILENO) != 0 && size >= 16 << 20 ? ProgressBar(label: "create-dataset", total: size >> 20, unit: "MB") : nil
    }

    func runImport(_ format: TrainingDataImporter.Format) throws {
        let start = Date()
        let bar = format == .beir ? nil : largeInputBar()
        let progress = bar.map { bar in { (done: Int, _: Int) in bar.update(done: done >> 20) } }
        let summary: TrainingDataImporter.Summary
        do {
            switch format {
            case .dpr: summary = try TrainingDataImporter.importDPR(path: inputJSONLPath, outputDirectory: outputBytedatasetPath, progress: progress)
            case .tevatron: summary = try TrainingDataImporter.importTevatron(path: inputJSONLPath, outputDirectory: outputBytedatasetPath, progress: progress)
            case .beir: summary = try TrainingDataImporter.importBEIR(directory: inputJSONLPath, split: split ?? "train", outputDirectory: outputBytedatasetPath)
            case .srdpr: fatalError("handled by run()")
            }
        } catch {
            bar?.finish()
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        bar?.finish()
        if format == .beir {
            FileHandle.standardError.write(Data(("beir: \(summary.missingQueries) qrels queries missing from queries.jsonl, "
                + "\(summary.missingPassages) relevant passages missing from corpus.jsonl, "
                + "\(summary.skippedQueries) queries skipped for want of a positive\n").utf8))
        }
        print("wrote \(summary.samples) samples to \(outputBytedatasetPath) (\(summary.dataBytes) bytes of pickles) from \(from) input "
              + "\(inputJSONLPath) in \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
    }
}
