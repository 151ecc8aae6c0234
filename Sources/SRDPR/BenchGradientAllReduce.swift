import ArgumentParser
import Benchmarks
import Collectives
import Data
import Foundation
import Model

/// `srdpr bench gradient-allreduce`: one rank of the all-reduce of a bi-encoder's real gradient
/// buckets, alone and overlapped with an emulated backward, and the all-gather of the batch's
/// embeddings (GradientAllReduceBench). Every rank
/// is started by the caller (cluster/scaling/run.sh starts one per network-namespace host).
struct BenchGradientAllReduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradient-allreduce",
        abstract: "One rank of the gradient-bucket all-reduce of a bi-encoder (for the scaling model).")

    @Option(help: "This rank.") var rank: Int
    @Option(help: "Every rank's ring address, comma-separated (tcp://HOST:PORT).") var addresses: String
    @Option(help: "Address this rank binds (default: its entry of --addresses).") var bind: String?
    @Option(help: "Encoder shape HIDDEN,LAYERS,HEADS,INTERMEDIATE (vocabulary 30522, 512 positions): 384,6,12,1536 = MiniLM-L6, 768,12,12,3072 = BERT-base.")
    var shape = "384,6,12,1536"
    @Option(help: "All-reduce element type on the wire: fp32 or bf16.") var wire = "fp32"
    @Option(name: .customLong("touched-rows"), help: "Word-embedding rows the global batch touches: QUESTION,CONTEXT.")
    var touchedRows = "64,1024"
    @Option(name: .customLong("backward-seconds"), help: "This rank's backward time to emulate (0: none).")
    var backwardSeconds = 0.0
    @Option(name: .customLong("tokens"), help: "Tokens of the global batch per side, QUESTION,CONTEXT (weights of the emulated backward).")
    var tokens = "256,4096"
    @Option(name: .customLong("batch-rows"), help: "Rows of the global batch whose embeddings are all-gathered, QUESTIONS,PASSAGES (the seed's: 8 questions, 16 passages).")
    var batchRows = "8,16"
    @Option(name: .customLong("global-loss-buf-sz"), help: "The trainer's limit on one rank's all-gather payload in bytes (global_loss_buf_sz; default the trainer's).")
    var globalLossBufferSize = TrainingConfig().globalLossBufferSize
    @Option(name: .customLong("iters"), help: "Timed iterations (median reported).") var iterations = 3
    @Option(help: "Untimed warm-up iterations.") var warmup = 1

    func integers(_ text: String, count: Int, option: String) throws -> [Int] {
        let values = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard values.count == count, values.allSatisfy({ $0 >= 0 }) else {
            throw ValidationError("--\(option) needs \(count) non-negative integers separated by commas, got '\(text)'")
        }
        return values
    }

    func run() throws {
        let list = addresses.split(separator: ",").map(String.init)
        guard (0..<list.count).contains(rank) else { throw ValidationError("--rank \(rank) is not a rank of the \(list.count) addresses") }
        guard let wireType = AllReduceWireType(rawValue: wire) else { throw ValidationError("--wire must be fp32 or bf16, got '\(wire)'") }
        let s = try integers(shape, count: 4, option: "shape")
        guard s[0] > 0, s[1] > 0, s[2] > 0, s[0] % s[2] == 0 else { throw ValidationError("--shape: hidden must be a multiple of heads, got '\(shape)'") }
        let rows = try integers(touchedRows, count: 2, option: "touched-rows")
        let t = try integers(tokens, count: 2, option: "tokens")
        let gathered = try integers(batchRows, count: 2, option: "batch-rows")
        guard globalLossBufferSize >= 1 else { throw ValidationError("--global-loss-buf-sz must be at least 1 byte, got \(globalLossBufferSize)") }
        guard backwardSeconds >= 0, iterations >= 1, warmup >= 0 else { throw ValidationError("--backward-seconds, --iters, --warmup must be >= 0 (iters >= 1)") }
        var settings = GradientAllReduceBench.Settings()
        settings.config = BertConfig(hiddenSize: s[0], numLayers: s[1], numHeads: s[2], intermediateSize: s[3])
        settings.wire = wireType
        settings.touchedRowsQuestion = rows[0]; settings.touchedRowsContext = rows[1]
        settings.backwardSeconds = backwardSeconds
        settings.questionTokens = t[0]; settings.contextTokens = t[1]
        settings.questionRows = gathered[0]; settings.contextRows = gathered[1]
        settings.communicator.globalLossBufferSize = globalLossBufferSize
        settings.iterations = iterations; settings.warmup = warmup
        settings.communicator.receiveTimeout = 300
        settings.communicator.setupTimeout = 60
        settings.communicator.sharedMemoryLanes = false  // ranks on separate (namespace) hosts
        if let result = try GradientAllReduceBench.runRank(rank, addresses: list, bindAddress: bind, settings: settings, log: { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }) {
            BenchOutput.printJSONLine(result)
        }
    }
}
