import CBLAS
import CKernels
import Data
import Dispatch
import Foundation
import Model

/// `srdpr bench gemm`: the Linear layers' forward product out = input · Wᵀ + bias at the models'
/// shapes, our kernel (`srdpr_gemm_rows` on weights packed once) against OpenBLAS's sgemm as the
/// encoder ran it before (the bias copied into every output row, then sgemm with beta 1, the rows
/// split over one-thread calls on multiples of SgemmRowTiling.period), on the same operands.
/// Time of one call (this thread's CPU time on one thread, wall time on more), median of `repeats`
/// after a warm-up; the packing of the weights is timed
/// apart (inference packs once per model; training packs at every forward call, so "with pack"
/// is training's cost).
public enum GemmBench {
    public struct Shape {
        public var name: String, inDim: Int, outDim: Int
    }

    /// MiniLM-L6 (hidden 384, FFN 1536) and BERT-base (768, 3072): Q/K/V, attention output, FFN in, FFN out.
    public static let shapes: [String: [Shape]] = [
        "minilm": [Shape(name: "qkv", inDim: 384, outDim: 1152), Shape(name: "attention_out", inDim: 384, outDim: 384),
                   Shape(name: "ffn_in", inDim: 384, outDim: 1536), Shape(name: "ffn_out", inDim: 1536, outDim: 384)],
        "bert-base": [Shape(name: "qkv", inDim: 768, outDim: 2304), Shape(name: "attention_out", inDim: 768, outDim: 768),
                      Shape(name: "ffn_in", inDim: 768, outDim: 3072), Shape(name: "ffn_out", inDim: 3072, outDim: 768)],
    ]

    public struct Options {
        public var models = ["minilm", "bert-base"]
        public var rows = [256, 1024, 4096]
        public var threads = [1, 2]
        public var repeats = 5
        /// Run srdpr_gemm_rows' AVX2 clone even on an AVX-512 CPU (to compare the clones).
        public var forceAVX2 = false
        public init() {}
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// Wall seconds of `body`, or with `threadTime` this thread's CPU seconds (one-thread runs: on a
    /// shared machine it counts only the cycles this thread ran, not the time others held the core).
    static func seconds(threadTime: Bool = false, _ body: () -> Void) -> Double {
        func now() -> Double {
            if threadTime { return ElementwiseBench.threadNanoseconds() / 1e9 }
            return Double(DispatchTime.now().uptimeNanoseconds) / 1e9
        }
        let start = now()
        body()
        return now() - start
    }

    /// Splits `rows` into at most `threads` parts on multiples of `unit` and runs them concurrently.
    static func split(_ rows: Int, threads: Int, unit: Int, _ body: (Range<Int>) -> Void) {
        let blocks = (rows + unit - 1) / unit, parts = min(threads, blocks)
        if parts <= 1 { return body(0..<rows) }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            body(min(rows, blocks * part / parts * unit)..<min(rows, blocks * (part + 1) / parts * unit))
        }
    }

    public static func run(_ o: Options, log: (String) -> Void = { _ in }) throws -> [String: Any] {
        guard srdpr_kernels_use_avx2() != 0 else {
            throw NSError(domain: "srdpr bench gemm", code: 1, userInfo: [NSLocalizedDescriptionKey:
                "this CPU has no AVX2 + FMA: the kernel would run its baseline build, which is not what this benchmark measures"])
        }
        srdpr_kernels_force_avx2(o.forceAVX2 ? 1 : 0)
        defer { srdpr_kernels_force_avx2(0) }
        let clone = String(cString: srdpr_kernels_clone())
        log("srdpr_gemm_rows clone: \(clone), register tile \(srdpr_gemm_tile_rows()) rows; OpenBLAS kernels: \(BLASKernels.coreName)")
        let blasThreads = BLASThreads.current
        BLASThreads.set(1)  // every OpenBLAS call below is one-thread; the threads are ours
        defer { BLASThreads.set(blasThreads) }
        var results: [[String: Any]] = []
        var random = SplitMix64(seed: 0x6E77)
        func value(_ scale: Float) -> Float { Float(Int(random.next() % 20001) - 10000) / 10000 * scale }
        for model in o.models {
            guard let list = shapes[model] else {
                throw NSError(domain: "srdpr bench gemm", code: 2, userInfo: [NSLocalizedDescriptionKey:
                    "unknown model '\(model)' for --models: use minilm or bert-base"])
            }
            for shape in list {
                let inDim = shape.inDim, outDim = shape.outDim
                let weight = (0..<(outDim * inDim)).map { _ in value(0.05) }, bias = (0..<outDim).map { _ in value(0.5) }
                let packed = FloatBuffer(count: srdpr_gemm_packed_floats(outDim, inDim))
                var packSamples: [Double] = []
                for _ in 0..<(o.repeats + 1) {
                    packSamples.append(seconds(threadTime: true) { srdpr_gemm_pack_weights(packed.pointer, weight, bias, outDim, inDim) })
                }
                let pack = median(Array(packSamples.dropFirst()))
                for rows in o.rows {
                    let input = FloatBuffer(count: rows * inDim)
                    for i in 0..<input.count { input.pointer[i] = value(2) }
                    let ours = FloatBuffer(count: rows * outDim), theirs = FloatBuffer(count: rows * outDim)
                    let x = UnsafePointer(input.pointer), P = UnsafePointer(packed.pointer)
                    for threads in o.threads {
                        let oursCall = {
                            split(rows, threads: threads, unit: srdpr_gemm_tile_rows()) { r in
                                srdpr_gemm_rows(ours.pointer + r.lowerBound * outDim, x + r.lowerBound * inDim, P, r.count, inDim, outDim)
                            }
                        }
                        let blasCall = {
                            for r in 0..<rows { (theirs.pointer + r * outDim).update(from: bias, count: outDim) }
                            split(rows, threads: threads, unit: SgemmRowTiling.period) { r in
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(r.count), Int32(outDim), Int32(inDim), 1,
                                            x + r.lowerBound * inDim, Int32(inDim), weight, Int32(inDim), 1,
                                            theirs.pointer + r.lowerBound * outDim, Int32(outDim))
                            }
                        }
                        // Alternated call by call, so a change in the machine's load hits both.
                        var oursSamples: [Double] = [], blasSamples: [Double] = []
                        for repeat_ in 0..<(o.repeats + 1) {
                            let a = seconds(threadTime: threads == 1, oursCall), b = seconds(threadTime: threads == 1, blasCall)
                            if repeat_ > 0 { oursSamples.append(a); blasSamples.append(b) }
                        }
                        let oursTime = median(oursSamples), blasTime = median(blasSamples)
                        var maxAbs: Float = 0, sumSquares = 0.0
                        for i in 0..<(rows * outDim) {
                            maxAbs = max(maxAbs, abs(ours.pointer[i] - theirs.pointer[i]))
                            sumSquares += Double(theirs.pointer[i]) * Double(theirs.pointer[i])
                        }
                        let rms = (sumSquares / Double(rows * outDim)).squareRoot()
                        let flops = 2 * Double(rows) * Double(inDim) * Double(outDim)
                        let row: [String: Any] = [
                            "model": model, "clone": clone, "shape": shape.name, "rows": rows, "in": inDim, "out": outDim, "threads": threads,
                            "ours_gflops": flops / oursTime / 1e9, "openblas_gflops": flops / blasTime / 1e9,
                            "ratio": blasTime / oursTime, "pack_ms": pack * 1e3,
                            "ours_with_pack_gflops": flops / (oursTime + pack) / 1e9, "ratio_with_pack": blasTime / (oursTime + pack),
                            "max_abs_difference": Double(maxAbs), "max_difference_over_rms": Double(maxAbs) / rms,
                        ]
                        log(String(format: "%@ %@ %4d x %4d -> %4d, %d thread(s): ours %6.1f GFLOP/s, OpenBLAS %6.1f, ratio %.3f (with the weights packed per call %.3f); max |diff| %.2e (%.2e of the rms)",
                                   model, shape.name, rows, inDim, outDim, threads, flops / oursTime / 1e9, flops / blasTime / 1e9,
                                   blasTime / oursTime, blasTime / (oursTime + pack), Double(maxAbs), Double(maxAbs) / rms))
                        results.append(row)
                    }
                }
            }
        }
        return ["bench": "gemm", "clone": clone, "openblas_kernels": BLASKernels.coreName, "openblas_chosen_by": BLASCoreChoice.chosenBy, "time": "1 thread: thread CPU time; more: wall; median of repeats",
                "repeats": o.repeats, "results": results]
    }
}
