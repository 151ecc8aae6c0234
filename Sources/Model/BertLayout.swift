/// Offsets of one BERT's tensors inside a shared parameter buffer (and, identically, the
/// gradient buffer). Names are Hugging Face's without the `bert.` prefix, after `prefix`.
public struct BertLayout: Sendable {
    public struct Layer: Sendable {
        public var queryW = 0, queryB = 0, keyW = 0, keyB = 0, valueW = 0, valueB = 0
        public var attnOutW = 0, attnOutB = 0, ln1G = 0, ln1B = 0
        public var interW = 0, interB = 0, outW = 0, outB = 0, ln2G = 0, ln2B = 0
    }

    public var wordEmb = 0, posEmb = 0, typeEmb = 0, embLnG = 0, embLnB = 0
    public var layers: [Layer] = []
    /// `encode_proj` (DPR's projection head), when projection_dim > 0.
    public var projW: Int? = nil, projB: Int? = nil
    public var projectionDim = 0
    /// Names (without prefix) and slots of this encoder, in layout order.
    public var slots: [TensorSlot] = []
    public var range: Range<Int> = 0..<0

    /// Appends the tensors of one BERT (names `prefix` + HF name) to `layout`.
    public init(config c: BertConfig, projectionDim: Int = 0, prefix: String = "", into layout: inout ParameterLayout) {
        let start = layout.totalCount
        let h = c.hiddenSize
        var slots: [TensorSlot] = []
        func add(_ name: String, _ shape: [Int]) -> Int {
            let s = layout.append(prefix + name, shape: shape)
            slots.append(TensorSlot(name: name, shape: shape, offset: s.offset))
            return s.offset
        }
        wordEmb = add("embeddings.word_embeddings.weight", [c.vocabSize, h])
        posEmb = add("embeddings.position_embeddings.weight", [c.maxPositions, h])
        typeEmb = add("embeddings.token_type_embeddings.weight", [c.typeVocabSize, h])
        embLnG = add("embeddings.LayerNorm.weight", [h])
        embLnB = add("embeddings.LayerNorm.bias", [h])
        for l in 0..<c.numLayers {
            let p = "encoder.layer.\(l)."
            var L = Layer()
            L.queryW = add(p + "attention.self.query.weight", [h, h])
            L.queryB = add(p + "attention.self.query.bias", [h])
            L.keyW = add(p + "attention.self.key.weight", [h, h])
            L.keyB = add(p + "attention.self.key.bias", [h])
            L.valueW = add(p + "attention.self.value.weight", [h, h])
            L.valueB = add(p + "attention.self.value.bias", [h])
            L.attnOutW = add(p + "attention.output.dense.weight", [h, h])
            L.attnOutB = add(p + "attention.output.dense.bias", [h])
            L.ln1G = add(p + "attention.output.LayerNorm.weight", [h])
            L.ln1B = add(p + "attention.output.LayerNorm.bias", [h])
            L.interW = add(p + "intermediate.dense.weight", [c.intermediateSize, h])
            L.interB = add(p + "intermediate.dense.bias", [c.intermediateSize])
            L.outW = add(p + "output.dense.weight", [h, c.intermediateSize])
            L.outB = add(p + "output.dense.bias", [h])
            L.ln2G = add(p + "output.LayerNorm.weight", [h])
            L.ln2B = add(p + "output.LayerNorm.bias", [h])
            layers.append(L)
        }
        if projectionDim > 0 {
            self.projectionDim = projectionDim
            projW = add("encode_proj.weight", [projectionDim, h])
            projB = add("encode_proj.bias", [projectionDim])
        }
        self.slots = slots
        range = start..<layout.totalCount
    }

    /// The encoder's parameters cut where `BertEncoder.backward` finishes their gradients, in that
    /// order: the top layer (with the projection head), each layer below it, then the embeddings.
    /// Disjoint and covering `range`, so a trainer can reduce each part while backward goes on.
    public var backwardOrder: [Range<Int>] {
        guard let bottom = layers.first else { return [range] }
        let tops = layers.indices.reversed().map { l in
            layers[l].queryW..<(l == layers.count - 1 ? range.upperBound : layers[l + 1].queryW)
        }
        return tops + [range.lowerBound..<bottom.queryW]
    }

    /// The word-embedding table [vocab, hidden]: a batch writes gradients only to the rows of its tokens.
    public var wordEmbeddingRange: Range<Int> { wordEmb..<posEmb }
}
