import CKernels
import Foundation
import Model

/// `srdpr bench attention`: one layer's self-attention, the fused kernels against the per-(sequence,
/// head) sgemm path, at each (head size, length): an inference forward, and a training forward +
/// backward with dropout. The two run alternately, call by call, so machine noise hits both alike.
/// At one thread every call runs on this thread and is timed in its CPU time (a shared machine's
/// other processes do not count); at more, in wall time.
public enum AttentionBench {
    public struct Options {
        public var headDims = [32, 64], lengths = [32, 128, 256]
        public var heads = 12, sequences = 16, threads = 2, repeats = 7
        public var dropout: Float = 0.1
        /// Q, K, V as one [tokens, 3 x hidden] matrix, as the encoder has them (else three matrices).
        public var qkvInOneMatrix = false
        /// Run the AVX2 clone of the fused kernels even on an AVX-512 CPU (to compare the two).
        public var forceAVX2 = false
        public init() {}
    }

    static func seconds(threadTime: Bool, _ body: () -> Void) -> Double {
        if threadTime {
            let start = ElementwiseBench.threadNanoseconds()
            body()
            return (ElementwiseBench.threadNanoseconds() - start) / 1e9
        }
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// One JSON object per shape, plus the options.
    public static func run(_ o: Options, log: (String) -> Void = { _ in }) throws -> [String: Any] {
        BLASThreads.set(o.threads)
        srdpr_kernels_force_avx2(o.forceAVX2 ? 1 : 0)
        defer { srdpr_kernels_force_avx2(0) }
        let clone = String(cString: srdpr_kernels_clone()), threadTime = o.threads == 1
        log("fused kernels: \(clone) clone; time: \(threadTime ? "thread CPU time" : "wall")")
        let seconds = { (body: () -> Void) in Self.seconds(threadTime: threadTime, body) }
        var shapes: [[String: Any]] = []
        for headDim in o.headDims {
            for length in o.lengths {
                let work = try AttentionWorkload(sequences: o.sequences, length: length, heads: o.heads, headDim: headDim,
                                                 threads: o.threads, dropout: o.dropout,
                                                 qkvInOneMatrix: o.qkvInOneMatrix)
                var forward: [AttentionImplementation: [Double]] = [:], training: [AttentionImplementation: [Double]] = [:]
                var encoderTraining: [Double] = []   // the encoder's mix: preferredForward + preferredBackward
                for trial in 0...o.repeats {
                    for implementation in [AttentionImplementation.sgemm, .fused] {
                        let f = seconds { work.inferenceForward(implementation) }
                        let t = seconds { work.trainingForwardBackward(implementation) }
                        if trial > 0 {   // trial 0 warms up (allocations, caches)
                            forward[implementation, default: []].append(f)
                            training[implementation, default: []].append(t)
                        }
                    }
                    let mixed = seconds { work.trainingForwardBackward(.preferredForward, backward: .preferredBackward) }
                    if trial > 0 { encoderTraining.append(mixed) }
                }
                let ms = { (values: [Double]?) in median(values!) * 1e3 }
                // The fastest call too: on a shared machine it is the one least slowed by others.
                let fastest = { (values: [Double]?) in values!.min()! * 1e3 }
                // Forward: Q Kᵀ and P V, 2 · length² · headDim multiply-adds per (sequence, head).
                let forwardFlops = 4.0 * Double(o.sequences * o.heads * length * length * headDim)
                let gflops = { (values: [Double]?) in forwardFlops / values!.min()! / 1e9 }
                let row: [String: Any] = [
                    "head_dim": headDim, "length": length,
                    "forward_ms_sgemm": ms(forward[.sgemm]), "forward_ms_fused": ms(forward[.fused]),
                    "forward_speedup": ms(forward[.sgemm]) / ms(forward[.fused]),
                    "forward_min_ms_sgemm": fastest(forward[.sgemm]), "forward_min_ms_fused": fastest(forward[.fused]),
                    "forward_gflops_sgemm": gflops(forward[.sgemm]), "forward_gflops_fused": gflops(forward[.fused]),
                    "train_ms_sgemm": ms(training[.sgemm]), "train_ms_fused": ms(training[.fused]),
                    "train_speedup": ms(training[.sgemm]) / ms(training[.fused]),
                    "train_min_ms_sgemm": fastest(training[.sgemm]), "train_min_ms_fused": fastest(training[.fused]),
                    "train_ms_encoder": ms(encoderTraining), "train_min_ms_encoder": fastest(encoderTraining),
                    "encoder_forward": AttentionImplementation.preferredForward.rawValue,
                    "encoder_backward": AttentionImplementation.preferredBackward.rawValue,
                ]
                log(String(format: "head_dim %3d length %3d: forward %.3f -> %.3f ms (%.2fx; fastest %.3f -> %.3f, %.1f -> %.1f GFLOP/s), "
                           + "forward+backward %.3f -> %.3f ms (%.2fx; fastest %.3f -> %.3f; the encoder's mix %.3f, fastest %.3f)",
                           headDim, length, ms(forward[.sgemm]), ms(forward[.fused]), row["forward_speedup"] as! Double,
                           fastest(forward[.sgemm]), fastest(forward[.fused]), gflops(forward[.sgemm]), gflops(forward[.fused]),
                           ms(training[.sgemm]), ms(training[.fused]), row["train_speedup"] as! Double,
                           fastest(training[.sgemm]), fastest(training[.fused]), ms(encoderTraining), fastest(encoderTraining)))
                shapes.append(row)
            }
        }
        return ["bench": "attention", "clone": clone, "time": threadTime ? "thread CPU time" : "wall", "heads": o.heads, "sequences": o.sequences, "threads": o.threads,
                "repeats": o.repeats, "dropout": Double(o.dropout), "qkv_in_one_matrix": o.qkvInOneMatrix, "shapes": shapes]
    }
}
