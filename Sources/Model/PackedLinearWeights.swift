import CKernels
import Foundation

/// The Linear layers' weights in `srdpr_gemm_rows`' packed layout (panels of 16 output columns,
/// their biases first, then the weights k-major), made from the parameter buffer.
///
/// While `parametersFixed` is set (forward-only passes over many batches: BatchParallelInference)
/// each weight is packed at its first use and kept, keyed by its offset and shape; the replicas of
/// one inference share one instance (hence the lock), so the model is packed once, not once per
/// thread. Otherwise (training: the optimizer, a checkpoint load or a test may write the parameters
/// at any time between forwards) every use packs the weight again, into one scratch buffer: a
/// forward always reads the parameters as they are, nothing can be stale, and the cost is the
/// copy OpenBLAS makes of the weights on every call anyway (sgemm_oncopy), once per call instead
/// of once per thread.
final class PackedLinearWeights {
    struct Key: Hashable {
        /// The weight's offset in the parameter buffer.
        var weight: Int
        /// Its output size (the fused Q/K/V block starts at the query weight's offset).
        var outDim: Int
    }

    private var kept: [Key: FloatBuffer] = [:]
    private let scratch = FloatBuffer(count: 0)
    private let lock = NSLock()

    /// Set only while nothing writes the parameters; clearing it frees the kept weights.
    var parametersFixed = false {
        didSet { if !parametersFixed { lock.withLock { kept = [:] } } }
    }

    /// The packed weights of `key` ([outDim, inDim]): kept ones, or `pack` writes them now
    /// (`srdpr_gemm_packed_floats(outDim, inDim)` floats). Without `parametersFixed` the pointer is
    /// valid until the next call.
    func packed(_ key: Key, inDim: Int, pack: (UnsafeMutablePointer<Float>) -> Void) -> UnsafePointer<Float> {
        let count = srdpr_gemm_packed_floats(key.outDim, inDim)
        guard parametersFixed else {
            if scratch.count < count { scratch.resize(to: count) }
            pack(scratch.pointer)
            return UnsafePointer(scratch.pointer)
        }
        return lock.withLock {
            if let block = kept[key] { return UnsafePointer(block.pointer) }
            let block = FloatBuffer(count: count)
            pack(block.pointer)
            kept[key] = block
            return UnsafePointer(block.pointer)
        }
    }

    /// The Linear whose weight [outDim, inDim] is at `P + weight` and bias at `P + bias`.
    func packed(_ P: UnsafePointer<Float>, weight: Int, bias: Int?, inDim: Int, outDim: Int) -> UnsafePointer<Float> {
        packed(Key(weight: weight, outDim: outDim), inDim: inDim) { target in
            srdpr_gemm_pack_weights(target, P + weight, bias.map { P + $0 }, outDim, inDim)
        }
    }
}
