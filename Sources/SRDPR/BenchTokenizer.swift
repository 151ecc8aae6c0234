import ArgumentParser
import Benchmarks
import Data
import Foundation

/// `srdpr bench tokenizer --vocab V --corpus F`: one-thread tokenizer throughput (JSON line).
struct BenchTokenizer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "BertTokenizer throughput (tokens/s, one thread) on a JSON-lines corpus of {title, text}.")

    @Option(help: "Path of vocab.txt.")
    var vocab: String

    @Option(help: "JSON-lines corpus with \"title\" and \"text\" per line.")
    var corpus: String

    @Option(name: .customLong("do-lower-case"), help: "true|false")
    var doLowerCase: Bool = true

    @Option(help: "Passes over the corpus; the best is reported.")
    var repeats: Int = 5

    @Option(help: "Use only the first N documents.")
    var limit: Int?

    func run() throws {
        let tokenizer = try BertTokenizer(vocabFile: URL(fileURLWithPath: vocab), doLowerCase: doLowerCase)
        let docs = try TokenizerBench.loadCorpus(path: corpus, limit: limit)
        BenchOutput.printJSONLine(TokenizerBench.run(tokenizer: tokenizer, documents: docs, repeats: repeats))
    }
}
