import ArgumentParser
import Benchmarks
import Foundation

/// `srdpr bench-dataset`: ByteDataset random reads/s and create-dataset MB/s, as JSON lines.
struct BenchDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-dataset",
        abstract: "Benchmark ByteDataset random reads and create-dataset (see Benchmarks/bench-dataset.sh).")

    @Option(help: "ByteDataset to read from.")
    var dataset: String?

    @Option(help: "Number of random reads.")
    var reads: Int = 200_000

    @Option(help: "JSON-lines input to convert (create-dataset throughput).")
    var jsonl: String?

    @Option(help: "Output directory of the conversion benchmark.")
    var output: String?

    @Option(help: "Runs of each benchmark; the best is reported.")
    var repeats: Int = 3

    func run() throws {
        if let dataset {
            BenchOutput.printJSONLine(try DatasetBenchmark.randomReads(dataset: dataset, reads: reads, repeats: repeats))
        }
        if let jsonl {
            guard let output else { throw ValidationError("--jsonl needs --output") }
            BenchOutput.printJSONLine(try DatasetBenchmark.conversion(jsonl: jsonl, output: output, repeats: repeats))
        }
        if dataset == nil && jsonl == nil { throw ValidationError("give --dataset and/or --jsonl") }
    }
}
