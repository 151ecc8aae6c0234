import CBLAS
import CKernels

/// Fully connected layer `out[n, o] = in[n, :] · weight[o, :] + bias[o]`, weight stored [outDim, inDim]
/// as in PyTorch's nn.Linear. Both directions are single sgemm calls.
enum Linear {
    static func forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                        _ weight: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                        rows: Int, inDim: Int, outDim: Int) {
        if let bias {
            for r in 0..<rows { (out + r * outDim).update(from: bias, count: outDim) }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outDim), Int32(inDim),
                    1, input, Int32(inDim), weight, Int32(inDim), bias == nil ? 0 : 1, out, Int32(outDim))
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
