import CKernels
import Foundation

/// `srdpr bench elementwise`: the elementwise and row-wise C kernels alone, one thread, in ns of
/// this thread's CPU time per element, on a buffer that stays in L1 and on one that streams from
/// L3 / memory (the FFN's GELU input at max length 256 is [1024 tokens x 1536] = 6 MB per thread).
/// A plain copy of the same buffers is the memory reference: a kernel that costs the same at both
/// sizes and far more than the copy is compute-bound.
public enum ElementwiseBench {
    public struct Options {
        /// Floats per buffer: 2,048 (8 KB, L1-resident) and 1,572,864 (6 MB).
        public var sizes = [2048, 1_572_864]
        /// Softmax row length (keys per attention row; rows fill the buffer).
        public var softmaxLength = 256
        public var repeats = 7
        /// Elements processed per timed sample (small buffers are run many times).
        public var elementsPerSample = 50_000_000
        /// Run the baseline (SSE2) build of the kernels instead of the CPU's widest one.
        public var baseline = false
        /// Run the AVX2 + FMA build even on an AVX-512 CPU (to compare the two).
        public var forceAVX2 = false
        public init() {}
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// This thread's CPU time in ns: on a shared machine it counts only the cycles this thread ran
    /// (wall time would also count the time other processes held the core).
    static func threadNanoseconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) * 1e9 + Double(time.tv_nsec)
    }

    public static func run(_ o: Options, log: (String) -> Void = { _ in }) throws -> [String: Any] {
        srdpr_kernels_force_baseline(o.baseline ? 1 : 0)
        srdpr_kernels_force_avx2(o.forceAVX2 ? 1 : 0)
        defer { srdpr_kernels_force_baseline(0); srdpr_kernels_force_avx2(0) }
        let build = String(cString: srdpr_kernels_clone())
        var rows: [[String: Any]] = []
        for size in o.sizes {
            // Inputs shaped like the FFN's pre-activations and attention scores: spread over [-4, 4].
            let input = UnsafeMutablePointer<Float>.allocate(capacity: size)
            let gradient = UnsafeMutablePointer<Float>.allocate(capacity: size)
            let out = UnsafeMutablePointer<Float>.allocate(capacity: size)
            let derivative = UnsafeMutablePointer<Float>.allocate(capacity: size)
            let other = UnsafeMutablePointer<Float>.allocate(capacity: size)
            defer { [input, gradient, out, derivative, other].forEach { $0.deallocate() } }
            for i in 0..<size {
                input[i] = Float((i &* 7919) % 10007) / 10007 * 8 - 4
                gradient[i] = Float((i &* 104_729) % 10007) / 10007 - 0.5
                other[i] = 0.25
            }
            let length = min(o.softmaxLength, size), softmaxRows = size / length
            // A key mask with the last eighth as padding (as a padded batch has).
            let keyMask = (0..<length).map { Int32($0 < length - length / 8 ? 1 : 0) }
            let kernels: [(String, () -> Void)] = [
                ("copy", { out.update(from: input, count: size) }),
                ("add", { srdpr_add(out, input, other, size) }),
                ("gelu_forward", { srdpr_gelu_forward(out, input, size) }),
                ("gelu_forward_derivative", { srdpr_gelu_forward_derivative(out, derivative, input, size) }),
                ("gelu_backward", { srdpr_gelu_backward(out, gradient, input, size) }),
                ("erf", { srdpr_erf(out, input, size) }),
                // Softmax works in place: each sample first copies the scores back (the copy's
                // time, measured above, is subtracted).
                ("softmax_rows_masked_plus_copy", {
                    out.update(from: input, count: softmaxRows * length)
                    keyMask.withUnsafeBufferPointer { srdpr_softmax_rows(out, softmaxRows, length, $0.baseAddress) }
                }),
                ("softmax_rows_plus_copy", {
                    out.update(from: input, count: softmaxRows * length)
                    srdpr_softmax_rows(out, softmaxRows, length, nil)
                }),
            ]
            let calls = max(1, o.elementsPerSample / size)
            var nanoseconds: [String: Double] = [:]
            for (name, kernel) in kernels {
                kernel()  // warm-up: pages touched, caches filled
                var samples: [Double] = []
                for _ in 0..<o.repeats {
                    let start = threadNanoseconds()
                    for _ in 0..<calls { kernel() }
                    samples.append((threadNanoseconds() - start) / Double(calls * size))
                }
                nanoseconds[name] = median(samples)
            }
            let copy = nanoseconds["copy"]!
            var row: [String: Any] = ["floats": size, "megabytes_per_buffer": Double(size * 4) / 1e6, "softmax_length": length]
            for (name, value) in nanoseconds {
                if name.hasSuffix("_plus_copy") {
                    row[String(name.dropLast("_plus_copy".count)) + "_ns_per_element"] = value - copy
                } else {
                    row[name + "_ns_per_element"] = value
                }
            }
            log(String(format: "%@ %8d floats (%.3f MB): copy %.3f, add %.3f, GELU forward %.3f, forward+derivative %.3f, backward %.3f, erf %.3f, softmax %.3f (masked %.3f) ns/element",
                       build, size, Double(size * 4) / 1e6, copy, nanoseconds["add"]!, nanoseconds["gelu_forward"]!,
                       nanoseconds["gelu_forward_derivative"]!, nanoseconds["gelu_backward"]!, nanoseconds["erf"]!,
                       nanoseconds["softmax_rows_plus_copy"]! - copy, nanoseconds["softmax_rows_masked_plus_copy"]! - copy))
            rows.append(row)
        }
        return ["bench": "elementwise", "build": build, "threads": 1, "time": "thread CPU time", "repeats": o.repeats,
                "elements_per_sample": o.elementsPerSample, "sizes": rows]
    }
}
