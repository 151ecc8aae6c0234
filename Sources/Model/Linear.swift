import CBLAS
import CKernels
import Dispatch

/// Fully connected layer `out[n, o] = in[n, :] · weight[o, :] + bias[o]`, weight stored [outDim, inDim]
/// as in PyTorch's nn.Linear. Forward runs our own kernel (`srdpr_gemm_rows`) on weights packed
/// by PackedLinearWeights; backward is single OpenBLAS sgemm calls.
enum Linear {
    /// From weights in `srdpr_gemm_pack_weights`' layout. Each output is one fused multiply-add chain
    /// from the bias over the inputs in order, so a row's bits do not depend on the other rows, and
    /// the rows can go to at most `BLASThreads.current` threads cut anywhere (on whole register
    /// tiles of the clone that runs, `srdpr_gemm_tile_rows`: 12 rows AVX-512, 6 AVX2, so no
    /// thread runs a partial tile it need not).
    ///
    /// Why our kernel and not sgemm (`srdpr bench gemm`): OpenBLAS copies the weights and the
    /// activations into its panel layout on every call and needs the bias copied into every output
    /// row first (beta 1, as torch's addmm rounds it), and its rows' bits depend on their place in
    /// its 12-row tiles (SgemmRowTiling); the packed weights are made once per inference and the
    /// accumulators start from the bias.
    static func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, packed: UnsafePointer<Float>,
                        rows: Int, inDim: Int, outDim: Int) {
        splitRows(rows, inDim: inDim, outDim: outDim) { range in
            srdpr_gemm_rows(out + range.lowerBound * outDim, input + range.lowerBound * inDim, packed, range.count, inDim, outDim)
        }
    }

    /// `forward` followed by GELU (`GELU.forward`, or with `derivative` `GELU.forwardWithDerivative`)
    /// in place over `out`: the same bits, with GELU applied to each register tile of the product as
    /// it finishes (srdpr_gemm_rows_gelu) instead of a pass of its own over [rows, outDim].
    static func forwardGELU(_ out: UnsafeMutablePointer<Float>, derivative: UnsafeMutablePointer<Float>?, _ input: UnsafePointer<Float>,
                            weights: PackedLinearWeights, parameters P: UnsafePointer<Float>, weight: Int, bias: Int?,
                            rows: Int, inDim: Int, outDim: Int) {
        let packed = weights.packed(P, weight: weight, bias: bias, inDim: inDim, outDim: outDim)
        splitRows(rows, inDim: inDim, outDim: outDim) { range in
            let offset = range.lowerBound * outDim
            srdpr_gemm_rows_gelu(out + offset, derivative.map { $0 + offset }, input + range.lowerBound * inDim, packed,
                                 range.count, inDim, outDim)
        }
    }

    /// Runs `multiply` over row ranges covering [0, rows), one per thread (see `forward`).
    private static func splitRows(_ rows: Int, inDim: Int, outDim: Int, _ multiply: (Range<Int>) -> Void) {
        let tile = srdpr_gemm_tile_rows(), tiles = (rows + tile - 1) / tile
        // Below ~1M multiply-adds a second thread costs more than it saves.
        let parts = rows * inDim * outDim >= 1 << 20 ? min(BLASThreads.current, tiles) : 1
        if parts <= 1 { return multiply(0..<rows) }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            multiply(min(rows, tiles * part / parts * tile)..<min(rows, tiles * (part + 1) / parts * tile))
        }
    }

    /// The layer whose weight and bias sit at offsets `weight` and `bias` of the parameters `P`,
    /// packed (or kept packed) by `weights`.
    static func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, weights: PackedLinearWeights,
                        parameters P: UnsafePointer<Float>, weight: Int, bias: Int?, rows: Int, inDim: Int, outDim: Int) {
        forward(out, input, packed: weights.packed(P, weight: weight, bias: bias, inDim: inDim, outDim: outDim),
                rows: rows, inDim: inDim, outDim: outDim)
    }

    /// From plain weight and bias arrays (one-off products): packs them for this call.
    static func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                        _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                        rows: Int, inDim: Int, outDim: Int) {
        let packed = FloatBuffer(count: srdpr_gemm_packed_floats(outDim, inDim))
        srdpr_gemm_pack_weights(packed.pointer, weight, bias, outDim, inDim)
        forward(out, input, packed: packed.pointer, rows: rows, inDim: inDim, outDim: outDim)
    }

    /// Accumulates dWeight, dBias; writes (or with `accumulateInput` adds) dInput.
    static func backward(dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                         dBias: UnsafeMutablePointer<Float>?, dOut: UnsafePointer<Float>,
                         input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         rows: Int, inDim: Int, outDim: Int, accumulateInput: Bool = false) {
        if let dInput {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(inDim), Int32(outDim),
                        1, dOut, Int32(outDim), weight, Int32(inDim), accumulateInput ? 1 : 0, dInput, Int32(inDim))
        }
        if let dWeight {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outDim), Int32(inDim), Int32(rows),
                        1, dOut, Int32(outDim), input, Int32(inDim), 1, dWeight, Int32(inDim))
        }
        if let dBias { srdpr_sum_rows(dBias, dOut, rows, outDim) }
    }
}
