import ArgumentParser
import Benchmarks
import Foundation

/// `srdpr bench mine`: BM25 index build and search on a generated corpus (JSON line).
struct BenchMine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mine",
        abstract: "BM25 for mining: index build time, queries/s and peak RSS on a generated corpus (compare Benchmarks/bm25_anchor.py).",
        discussion: "Writes DIR/corpus.jsonl and DIR/queries.jsonl once (reused by later runs and by the anchor), builds DIR/bm25-index afresh and searches every query.")

    @Option(help: "Passages in the generated corpus.")
    var passages: Int = 1_000_000
    @Option(help: "Queries searched.")
    var queries: Int = 2_000
    @Option(help: "Hits kept per query.")
    var k: Int = 100
    @Option(help: "Search threads.")
    var threads: Int = 2
    @Option(help: "Working directory (corpus, queries, index).")
    var dir: String

    func validate() throws {
        for (name, value) in [("--passages", passages), ("--queries", queries), ("--k", k), ("--threads", threads)] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
    }

    func run() throws {
        let result = try MineBench.run(.init(passages: passages, queries: queries, k: k, threads: threads, directory: dir)) {
            FileHandle.standardError.write(Data(($0 + "\n").utf8))
        }
        BenchOutput.printJSONLine(result)
    }
}
