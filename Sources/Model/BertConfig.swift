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
            if let d = json[key] as? Double, d == d.rounded() { return Int(d) }
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

    /// Checks the sizes fit together (positive, heads divide hidden).
    public func validate(file: String = "config") throws {
        for (name, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("num_hidden_layers", numLayers),
                              ("num_attention_heads", numHeads), ("intermediate_size", intermediateSize),
                              ("max_position_embeddings", maxPositions), ("type_vocab_size", typeVocabSize)] where value <= 0 {
            throw ModelError.invalidConfig(file: file, reason: "\(name) must be positive, got \(value)")
        }
        if hiddenSize % numHeads != 0 {
            throw ModelError.invalidConfig(file: file, reason: "hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numHeads)")
        }
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
