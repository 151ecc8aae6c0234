import CBLAS
import CKernels
import Dispatch

/// Fully connected layer `out[n, o] = in[n, :] · weight[o, :] + bias[o]`, weight stored [outDim, inDim]
/// as in PyTorch's nn.Linear. Backward is single sgemm calls; forward splits its rows over the
/// BLAS threads itself (below).
enum Linear {
    /// The rows go to at most `BLASThreads.current` single-threaded sgemm calls cut on multiples of
    /// `SgemmRowTiling.period`: a row then gets the bits it gets in one call over all the rows
    /// (OpenBLAS's own threads would cut the rows where the count puts them, so a token's numbers
    /// would change with its batch and the thread count).
    static func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                        _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                        rows: Int, inDim: Int, outDim: Int) {
        // The bias goes in before the product (beta 1), as torch's addmm puts it. Adding it after a
        // beta-0 sgemm saves nothing (OpenBLAS then zeroes C in its own pass, sgemm_beta) and changes
        // bits: OpenBLAS sums the inner dimension in blocks (≤ 256 on its Haswell kernels) and adds
        // each block's sum to C, so a prefilled bias is rounded in with the first block, not after the
        // last (measured: 26-58% of the outputs differ in the last bits at inDim 384 to 3072).
        if let bias {
            for r in 0..<rows { (out + r * outDim).update(from: bias, count: outDim) }
        }
        func multiply(_ range: Range<Int>) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(range.count), Int32(outDim), Int32(inDim),
                        1, input + range.lowerBound * inDim, Int32(inDim), weight, Int32(inDim), bias == nil ? 0 : 1,
                        out + range.lowerBound * outDim, Int32(outDim))
        }
        let threads = BLASThreads.current, period = SgemmRowTiling.period
        let blocks = (rows + period - 1) / period
        // Below ~1M multiply-adds a second thread costs more than it saves.
        let parts = rows * inDim * outDim >= 1 << 20 ? min(threads, blocks) : 1
        BLASThreads.set(1)
        defer { BLASThreads.set(threads) }
        if parts <= 1 { return multiply(0..<rows) }
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            multiply(min(rows, blocks * part / parts * period)..<min(rows, blocks * (part + 1) / parts * period))
        }
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
        if let dBias {
            for r in 0..<rows { srdpr_add(dBias, dBias, dOut + r * outDim, outDim) }
        }
    }
}
