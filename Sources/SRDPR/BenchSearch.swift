import ArgumentParser
import Benchmarks
import Foundation

/// `srdpr bench search`: exact top-k search throughput over random passages (JSON line).
struct BenchSearch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "search",
        abstract: "Exact maximum-inner-product search: queries/s over random passages (compare Benchmarks/search_anchor.py).")

    @Option(help: "Passages in the random corpus.")
    var passages: Int = 100_000
    @Option(help: "Embedding size.")
    var dimension: Int = 384
    @Option(help: "Queries searched per trial.")
    var queries: Int = 256
    @Option(help: "Hits kept per query.")
    var k: Int = 100
    @Option(help: "Threads (OpenBLAS and top-k selection).")
    var threads: Int = 2
    @Option(name: .customLong("block-size"), help: "Passages scored per sgemm block.")
    var blockSize: Int = 16_384
    @Option(help: "Timed trials after one warm-up; the median is reported.")
    var repeats: Int = 5

    func validate() throws {
        for (name, value) in [("--passages", passages), ("--dimension", dimension), ("--queries", queries),
                              ("--k", k), ("--threads", threads), ("--block-size", blockSize), ("--repeats", repeats)]
        where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
    }

    func run() throws {
        let options = SearchBench.Options(passages: passages, dimension: dimension, queries: queries, k: k,
                                          threads: threads, blockSize: blockSize, repeats: repeats)
        let result = SearchBench.run(options) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        BenchOutput.printJSONLine(result)
    }
}
