import ArgumentParser
import Benchmarks
import Foundation

/// `srdpr bench attention`: the attention layer alone, fused kernels vs per-head sgemm, and the
/// encoder's mix of the two for training (JSON line).
struct BenchAttention: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attention",
        abstract: "Self-attention of one layer: fused kernels vs per-(sequence, head) sgemm, median ms per call.")

    @Option(name: .customLong("head-dims"), help: "Head sizes, comma-separated.") var headDims = "32,64"
    @Option(help: "Sequence lengths, comma-separated (117: real batches are rarely a multiple of the vector width).") var lengths = "32,117,128,256"
    @Option(help: "Attention heads.") var heads = 12
    @Option(help: "Sequences per call (all at the same length).") var sequences = 16
    @Option(help: "Threads (the per-head loop; OpenBLAS for the sgemm path).") var threads = 2
    @Option(help: "Timed calls of each implementation after one warm-up; the median is reported.") var repeats = 7
    @Option(help: "Attention dropout of the forward + backward calls.") var dropout: Float = 0.1
    @Flag(name: .customLong("qkv-in-one-matrix"),
          help: "Q, K, V as one [tokens, 3 x hidden] matrix (row stride 3 x hidden), as the encoder has them.")
    var qkvInOneMatrix = false
    @Flag(name: .customLong("avx2"), help: "Run the fused kernels' AVX2 clone even on an AVX-512 CPU.") var forceAVX2 = false

    static func list(_ text: String, _ name: String) throws -> [Int] {
        let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("\(name) must be comma-separated integers >= 1, got '\(text)'")
        }
        return values.map { $0! }
    }

    func validate() throws {
        _ = try Self.list(headDims, "--head-dims")
        let lengthValues = try Self.list(lengths, "--lengths")
        if dropout > 0, let longest = lengthValues.max(), longest > 4096 {
            throw ValidationError("--lengths: attention dropout keys allow at most 4096 positions, got \(longest)")
        }
        for (name, value) in [("--heads", heads), ("--sequences", sequences), ("--threads", threads), ("--repeats", repeats)]
        where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        guard dropout >= 0, dropout < 1 else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
    }

    func run() throws {
        var o = AttentionBench.Options()
        o.headDims = try Self.list(headDims, "--head-dims")
        o.lengths = try Self.list(lengths, "--lengths")
        o.heads = heads; o.sequences = sequences; o.threads = threads; o.repeats = repeats; o.dropout = dropout
        o.qkvInOneMatrix = qkvInOneMatrix; o.forceAVX2 = forceAVX2
        let result = try AttentionBench.run(o) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        BenchOutput.printJSONLine(result)
    }
}
