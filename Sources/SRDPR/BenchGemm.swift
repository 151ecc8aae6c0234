import ArgumentParser
import Benchmarks
import Foundation

/// `srdpr bench gemm`: the Linear forward kernel against OpenBLAS at the models' shapes (JSON line).
struct BenchGemm: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "Linear forward product at MiniLM and BERT-base shapes: our packed-weight kernel vs OpenBLAS sgemm, GFLOP/s and differences.")

    @Option(help: "Models whose Linear shapes run, comma-separated: minilm, bert-base.") var models = "minilm,bert-base"
    @Option(help: "Rows (tokens) per call, comma-separated.") var rows = "256,1024,4096"
    @Option(help: "Thread counts, comma-separated (rows split over threads, one-thread kernels).") var threads = "1,2"
    @Option(help: "Timed calls of each implementation after one warm-up; the median is reported.") var repeats = 5
    @Flag(name: .customLong("avx2"), help: "Run our kernel's AVX2 clone even on an AVX-512 CPU (the clone used is reported).")
    var forceAVX2 = false

    func validate() throws {
        _ = try BenchAttention.list(rows, "--rows")
        _ = try BenchAttention.list(threads, "--threads")
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        for model in models.split(separator: ",") where GemmBench.shapes[String(model)] == nil {
            throw ValidationError("--models: unknown model '\(model)' (use minilm, bert-base)")
        }
    }

    func run() throws {
        var o = GemmBench.Options()
        o.models = models.split(separator: ",").map(String.init)
        o.rows = try BenchAttention.list(rows, "--rows")
        o.threads = try BenchAttention.list(threads, "--threads")
        o.repeats = repeats
        o.forceAVX2 = forceAVX2
        let result = try GemmBench.run(o) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        BenchOutput.printJSONLine(result)
    }
}
