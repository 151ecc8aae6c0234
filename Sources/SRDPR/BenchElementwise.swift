import ArgumentParser
import Benchmarks
import Foundation

/// `srdpr bench elementwise`: the C kernels (GELU, erf, softmax, add) alone, ns per element (JSON line).
struct BenchElementwise: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "elementwise",
        abstract: "Elementwise kernels alone on one thread: ns of thread CPU time per element on an L1-resident and a 6 MB buffer, with a copy as the memory reference.")

    @Option(help: "Floats per buffer, comma-separated (2048 = 8 KB stays in L1; 1572864 = 6 MB, the FFN's GELU input at max length 256).")
    var sizes = "2048,1572864"
    @Option(name: .customLong("softmax-length"), help: "Keys per softmax row (rows fill the buffer).") var softmaxLength = 256
    @Option(help: "Timed samples per kernel and size; the median is reported.") var repeats = 7
    @Option(name: .customLong("elements-per-sample"), help: "Elements processed per timed sample.") var elementsPerSample = 50_000_000
    @Flag(help: "Run the baseline (SSE2) kernels instead of the CPU's widest ones.") var baseline = false
    @Flag(name: .customLong("avx2"), help: "Run the AVX2 + FMA kernels even on an AVX-512 CPU.") var forceAVX2 = false

    func validate() throws {
        _ = try BenchAttention.list(sizes, "--sizes")
        for (name, value) in [("--softmax-length", softmaxLength), ("--repeats", repeats), ("--elements-per-sample", elementsPerSample)]
        where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
    }

    func run() throws {
        var o = ElementwiseBench.Options()
        o.sizes = try BenchAttention.list(sizes, "--sizes")
        o.softmaxLength = softmaxLength; o.repeats = repeats; o.elementsPerSample = elementsPerSample; o.baseline = baseline
        o.forceAVX2 = forceAVX2
        let result = try ElementwiseBench.run(o) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        BenchOutput.printJSONLine(result)
    }
}
