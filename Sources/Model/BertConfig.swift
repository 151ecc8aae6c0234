import Foundation

/// The fields of a Hugging Face BERT `config.json` that the encoder needs.
public struct BertConfig: Equatable, Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var typeVocabSize: Int
    public var layerNormEps: Float
    public var hiddenDropout: Float
    public var attentionDropout: Float
    public var padTokenId: Int

    public init(vocabSize: Int = 30522, hiddenSize: Int, numLayers: Int, numHeads: Int, intermediateSize: Int,
                maxPositions: Int = 512, typeVocabSize: Int = 2, layerNormEps: Float = 1e-12,
                hiddenDropout: Float = 0.1, attentionDropout: Float = 0.1, padTokenId: Int = 0) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.intermediateSize = intermediateSize
        self.maxPositions = maxPositions
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.hiddenDropout = hiddenDropout
        self.attentionDropout = attentionDropout
        self.padTokenId = padTokenId
    }

    public var headDim: Int { hiddenSize / numHeads }

    /// Parses `config.json` of a Hugging Face directory; refuses other architectures by name.
    public static func load(_ url: URL) throws -> BertConfig {
        let file = url.path
        guard FileManager.default.fileExists(atPath: file) else {
            throw ModelError.missingFile("\(file) (a Hugging Face model directory needs config.json)")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError.ioError(file: file, reason: "cannot read: \(error.localizedDescription)")
        }
        return try decode(data, file: file)
    }

    /// Parses the bytes of a `config.json`; `file` only names it in errors.
    public static func decode(_ data: Data, file: String) throws -> BertConfig {
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError.invalidConfig(file: file, reason: "not a JSON object")
        }
        let modelType = json["model_type"] as? String ?? ""
        guard modelType == "bert" else {
            throw ModelError.unsupportedArchitecture(file: file, modelType: modelType.isEmpty ? "(none)" : modelType)
        }
        func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
            if let n = json[key] as? Int { return n }
            // Int(exactly:) and not Int(_:): a whole number beyond Int (1e300) must be an error, not a trap.
            if let d = json[key] as? Double, let n = Int(exactly: d) { return n }
            if let fallback, json[key] == nil || json[key] is NSNull { return fallback }
            throw ModelError.invalidConfig(file: file, reason: "\"\(key)\" must be an integer")
        }
        func float(_ key: String, _ fallback: Float) throws -> Float {
            if let n = json[key] as? NSNumber { return n.floatValue }
            if json[key] == nil || json[key] is NSNull { return fallback }
            throw ModelError.invalidConfig(file: file, reason: "\"\(key)\" must be a number")
        }
        if let act = json["hidden_act"] as? String, act != "gelu" {
            throw ModelError.invalidConfig(file: file, reason: "hidden_act \"\(act)\" is not supported (only \"gelu\", the erf form)")
        }
        if let pe = json["position_embedding_type"] as? String, pe != "absolute" {
            throw ModelError.invalidConfig(file: file, reason: "position_embedding_type \"\(pe)\" is not supported (only \"absolute\")")
        }
        let config = BertConfig(
            vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"),
            numLayers: try int("num_hidden_layers"), numHeads: try int("num_attention_heads"),
            intermediateSize: try int("intermediate_size"), maxPositions: try int("max_position_embeddings", 512),
            typeVocabSize: try int("type_vocab_size", 2), layerNormEps: try float("layer_norm_eps", 1e-12),
            hiddenDropout: try float("hidden_dropout_prob", 0.1),
            attentionDropout: try float("attention_probs_dropout_prob", 0.1),
            padTokenId: try int("pad_token_id", 0))
        try config.validate(file: file)
        return config
    }

    /// Largest encoder accepted, in parameters: with gradients and two AdamW moments this is
    /// already 64 GB per encoder. Beyond it a config is a typo or hostile, and building the model
    /// would overflow the layout arithmetic or fail to allocate instead of reporting an error.
    public static let maximumParameterCount = 1 << 32

    /// Checks the sizes fit together (positive, heads divide hidden, a model that fits in memory)
    /// and that the probabilities and epsilon are usable numbers.
    public func validate(file: String = "config") throws {
        for (name, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numLayers),
                              ("num_attention_heads", numHeads), ("intermediate_size", intermediateSize),
                              ("max_position_embeddings", maxPositions), ("type_vocab_size", typeVocabSize)] where value <= 0 {
            throw ModelError.invalidConfig(file: file, reason: "\(name) must be positive, got \(value)")
        }
        if hiddenSize % numHeads != 0 {
            throw ModelError.invalidConfig(file: file, reason: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numHeads)")
        }
        guard let count = parameterCount, count <= Self.maximumParameterCount else {
            throw ModelError.invalidConfig(file: file, reason:
                "vocab_size \(vocabSize), hidden_size \(hiddenSize), num_hidden_layers \(numLayers), intermediate_size "
                + "\(intermediateSize) and max_position_embeddings \(maxPositions) describe more than "
                + "\(Self.maximumParameterCount) parameters per encoder")
        }
        for (name, p) in [("hidden_dropout_prob", hiddenDropout), ("attention_probs_dropout_prob", attentionDropout)]
        where !(p >= 0 && p < 1) {
            throw ModelError.invalidConfig(file: file, reason: "\(name) must be in [0, 1), got \(p)")
        }
        if !(layerNormEps > 0 && layerNormEps.isFinite) {
            throw ModelError.invalidConfig(file: file, reason: "layer_norm_eps must be a positive number, got \(layerNormEps)")
        }
        if padTokenId < 0 || padTokenId >= vocabSize {
            throw ModelError.invalidConfig(file: file, reason: "pad_token_id \(padTokenId) is not a token of the vocab_size \(vocabSize) vocabulary")
        }
    }

    /// Parameters of one encoder (BertLayout's tensors, without a projection head); nil when the
    /// count does not fit in an Int. Checked arithmetic throughout: every size comes from a file.
    public var parameterCount: Int? {
        func add(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            let (r, overflow) = a.addingReportingOverflow(b)
            return overflow ? nil : r
        }
        func mul(_ a: Int?, _ b: Int?) -> Int? {
            guard let a, let b else { return nil }
            let (r, overflow) = a.multipliedReportingOverflow(by: b)
            return overflow ? nil : r
        }
        let h = hiddenSize, i = intermediateSize
        // Word, position and token-type embeddings, then their LayerNorm.
        let embeddings = add(mul(add(add(vocabSize, maxPositions), typeVocabSize), h), mul(2, h))
        // Query, key, value, attention output (4 h x h), intermediate and output (2 i x h);
        // their biases and the two LayerNorms (9 h + i).
        let layer = add(add(mul(mul(4, h), h), mul(mul(2, i), h)), add(mul(9, h), i))
        return add(embeddings, mul(numLayers, layer))
    }

    /// The `config.json` we write on save; transformers' `BertModel.from_pretrained` reads it.
    public func jsonObject() -> [String: Any] {
        [
            "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
            "vocab_size": vocabSize, "hidden_size": hiddenSize, "num_hidden_layers": numLayers,
            "num_attention_heads": numHeads, "intermediate_size": intermediateSize,
            "max_position_embeddings": maxPositions, "type_vocab_size": typeVocabSize,
            "layer_norm_eps": Double(layerNormEps), "hidden_dropout_prob": Double(hiddenDropout),
            "attention_probs_dropout_prob": Double(attentionDropout), "pad_token_id": padTokenId,
            "position_embedding_type": "absolute", "initializer_range": 0.02, "dtype": "float32",
        ]
    }
}
