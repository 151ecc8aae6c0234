/// DPR's optional projection head `encode_proj`: Linear(hidden, projection_dim) on the pooled
/// [CLS] vector. The encoder applies it in place; these array versions expose the same math.
public enum ProjectionHead {
    /// out[rows, outDim] = input[rows, inDim] · weightᵀ + bias.
    public static func forward(input: [Float], weight: [Float], bias: [Float], rows: Int, inDim: Int, outDim: Int) -> [Float] {
        var out = [Float](repeating: 0, count: rows * outDim)
        input.withUnsafeBufferPointer { x in
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { y in
                        Linear.forward(y.baseAddress!, x.baseAddress!, w.baseAddress!, b.baseAddress!, rows: rows, inDim: inDim, outDim: outDim)
                    }
                }
            }
        }
        return out
    }

    /// Gradients of input, weight and bias from dOut.
    public static func backward(dOut: [Float], input: [Float], weight: [Float], rows: Int, inDim: Int, outDim: Int)
        -> (dInput: [Float], dWeight: [Float], dBias: [Float]) {
        var dInput = [Float](repeating: 0, count: rows * inDim)
        var dWeight = [Float](repeating: 0, count: outDim * inDim)
        var dBias = [Float](repeating: 0, count: outDim)
        dOut.withUnsafeBufferPointer { dy in
            input.withUnsafeBufferPointer { x in
                weight.withUnsafeBufferPointer { w in
                    dInput.withUnsafeMutableBufferPointer { dx in
                        dWeight.withUnsafeMutableBufferPointer { dw in
                            dBias.withUnsafeMutableBufferPointer { db in
                                Linear.backward(dInput: dx.baseAddress!, dWeight: dw.baseAddress!, dBias: db.baseAddress!,
                                                dOut: dy.baseAddress!, input: x.baseAddress!, weight: w.baseAddress!,
                                                rows: rows, inDim: inDim, outDim: outDim)
                            }
                        }
                    }
                }
            }
        }
        return (dInput, dWeight, dBias)
    }
}
