import ArgumentParser
import Benchmarks
import Foundation

/// `srdpr bench train-step`: one bi-encoder training step (forward, backward, clip, AdamW).
struct BenchTrainStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-step",
        abstract: "Bi-encoder training-step throughput at the PyTorch anchor's shapes (one JSON line).")

    @Option(help: "Hugging Face BERT directory.")
    var model: String?
    @Option(name: .customLong("random-config"), help: "Random BERT: HIDDEN,LAYERS,HEADS,INTERMEDIATE.")
    var randomConfig: String?
    @Option(help: "Questions (= positive contexts) per step.") var batch = 8
    @Option(help: "Negative contexts per step.") var contrastive = 8
    @Option(name: .customLong("q-len"), help: "Question length in tokens.") var qLen = 32
    @Option(name: .customLong("ctx-len"), help: "Context length in tokens.") var ctxLen = 256
    @Option(name: .customLong("min-q-len"), help: "Mixed lengths: each question draws its length in [min-q-len, q-len].")
    var minQLen: Int?
    @Option(name: .customLong("min-ctx-len"), help: "Mixed lengths: each context draws its length in [min-ctx-len, ctx-len].")
    var minCtxLen: Int?
    @Flag(help: "Run the encoders over the padding too (the computation before packing), to compare.") var padded = false
    @Flag(help: "Run every row of the last layer, not only what the [CLS] rows need (the computation before pruning), to compare.")
    var fullLastLayer = false
    @Option(help: "Threads (OpenBLAS and the other loops).") var threads = 2
    @Option(help: "Timed steps.") var steps = 5
    @Option(name: .customLong("warmup-steps"), help: "Untimed steps first.") var warmupSteps = 1

    func run() throws {
        var o = TrainStepBench.Options()
        o.modelDirectory = model
        if let randomConfig {
            let parts = randomConfig.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 4 else { throw ValidationError("--random-config needs four integers H,LAYERS,HEADS,INTER, got '\(randomConfig)'") }
            o.randomConfig = parts
        }
        guard batch > 0, contrastive >= 0, qLen > 0, ctxLen > 0, threads > 0, steps > 0, warmupSteps >= 0 else {
            throw ValidationError("sizes, --threads and --steps must be positive")
        }
        if let minQLen, !(1...qLen).contains(minQLen) { throw ValidationError("--min-q-len must be in 1...\(qLen) (--q-len), got \(minQLen)") }
        if let minCtxLen, !(1...ctxLen).contains(minCtxLen) {
            throw ValidationError("--min-ctx-len must be in 1...\(ctxLen) (--ctx-len), got \(minCtxLen)")
        }
        (o.minQLen, o.minCtxLen, o.padded) = (minQLen, minCtxLen, padded)
        o.fullLastLayer = fullLastLayer
        (o.batch, o.contrastive, o.qLen, o.ctxLen, o.threads, o.steps, o.warmupSteps) =
            (batch, contrastive, qLen, ctxLen, threads, steps, warmupSteps)
        BenchOutput.printJSONLine(try TrainStepBench.run(o))
    }
}
