import Data
import Foundation

/// The sentence-transformers description of an encoder directory: `modules.json` (Transformer,
/// Pooling, optionally Dense and Normalize), `sentence_bert_config.json`, `1_Pooling/config.json`,
/// the Dense module's directory and `config_sentence_transformers.json`. Read so that a
/// sentence-transformers model is used as it was trained; written by `srdpr export` so that
/// `SentenceTransformer(dir).encode(texts)` gives srdpr's embeddings.
public struct SentenceTransformersLayout: Equatable {
    public var pooling: Pooling
    /// `max_seq_length` of sentence_bert_config.json.
    public var maxSeqLength: Int?
    /// `do_lower_case` of sentence_bert_config.json (sentence-transformers then lower-cases).
    public var doLowerCase: Bool?
    /// The directory of a Dense module (a linear projection without activation), if any.
    public var denseDirectory: URL?
    /// Whether a Normalize module ends the pipeline (unit-length embeddings).
    public var normalize: Bool
    /// `similarity_fn_name` of config_sentence_transformers.json (sentence-transformers' default is cosine).
    public var similarityFunctionName: String?

    static let identityActivation = "torch.nn.modules.linear.Identity"

    /// The layout of `directory`; nil when it has no modules.json (a plain Hugging Face directory).
    public static func read(directory: URL) throws -> SentenceTransformersLayout? {
        let modulesURL = directory.appendingPathComponent("modules.json")
        guard FileManager.default.fileExists(atPath: modulesURL.path) else { return nil }
        guard let modules = try json(modulesURL) as? [[String: Any]] else {
            throw ModelError.invalidConfig(file: modulesURL.path, reason: "not a list of modules")
        }
        var layout = SentenceTransformersLayout(pooling: .cls, normalize: false)
        var sawPooling = false
        for (i, module) in modules.enumerated() {
            let type = module["type"] as? String ?? ""
            let path = module["path"] as? String ?? ""
            let kind = type.split(separator: ".").last.map(String.init) ?? ""
            let moduleDir = path.isEmpty ? directory : directory.appendingPathComponent(path)
            switch kind {
            case "Transformer" where i == 0:
                let configURL = directory.appendingPathComponent("sentence_bert_config.json")
                if FileManager.default.fileExists(atPath: configURL.path) {
                    let config = try json(configURL) as? [String: Any] ?? [:]
                    layout.maxSeqLength = config["max_seq_length"] as? Int
                    layout.doLowerCase = config["do_lower_case"] as? Bool
                }
            case "Pooling" where !sawPooling:
                sawPooling = true
                layout.pooling = try readPooling(moduleDir.appendingPathComponent("config.json"))
            case "Dense" where sawPooling && layout.denseDirectory == nil && !layout.normalize:
                let configURL = moduleDir.appendingPathComponent("config.json")
                let config = try json(configURL) as? [String: Any] ?? [:]
                let activation = config["activation_function"] as? String ?? "torch.nn.modules.activation.Tanh"
                guard activation == identityActivation, (config["use_residual"] as? Bool ?? false) == false else {
                    throw ModelError.invalidConfig(file: configURL.path,
                        reason: "a Dense module with activation \(activation) is not supported (only \(identityActivation), no residual)")
                }
                layout.denseDirectory = moduleDir
            case "Normalize" where sawPooling:
                layout.normalize = true
            default:
                throw ModelError.invalidConfig(file: modulesURL.path,
                    reason: "module \(i) (\(type)) is not supported: srdpr runs Transformer, Pooling (cls or mean), "
                        + "Dense (no activation) and Normalize, in that order")
            }
        }
        guard sawPooling else {
            throw ModelError.invalidConfig(file: modulesURL.path, reason: "no Pooling module")
        }
        let stConfig = directory.appendingPathComponent("config_sentence_transformers.json")
        if FileManager.default.fileExists(atPath: stConfig.path), let config = try json(stConfig) as? [String: Any] {
            layout.similarityFunctionName = config["similarity_fn_name"] as? String
        }
        return layout
    }

    /// The pooling of a Pooling module's config.json (the one reader: `SentenceTransformersPooling`).
    static func readPooling(_ url: URL) throws -> Pooling {
        do { return try SentenceTransformersPooling.pooling(config: url) } catch let e as SentenceTransformersPooling.Unsupported {
            throw ModelError.invalidConfig(file: e.path, reason: e.reason + " (srdpr pools with cls or mean)")
        }
    }

    static func json(_ url: URL) throws -> Any {
        let data: Foundation.Data
        do { data = try Foundation.Data(contentsOf: url) } catch {
            throw ModelError.ioError(file: url.path, reason: "cannot read: \(error.localizedDescription)")
        }
        do { return try JSONSerialization.jsonObject(with: data) } catch {
            throw ModelError.invalidConfig(file: url.path, reason: "not JSON: \(error.localizedDescription)")
        }
    }

    /// Copies the Dense module's weights (`linear.weight` [out, in], `linear.bias`) into the
    /// projection head of `encoder`, whose projection_dim must be the module's out_features.
    func loadDense(into encoder: BertEncoder) throws {
        guard denseDirectory != nil else { return }
        guard let w = encoder.layout.projW, let b = encoder.layout.projB else {
            throw ModelError.invalidConfig(file: denseDirectory!.path, reason: "the encoder was built without a projection head")
        }
        let (weight, bias) = try denseTensors(projectionDim: encoder.layout.projectionDim, hidden: encoder.config.hiddenSize)
        weight.withUnsafeBufferPointer { (encoder.parameters.pointer + w).update(from: $0.baseAddress!, count: $0.count) }
        bias.withUnsafeBufferPointer { (encoder.parameters.pointer + b).update(from: $0.baseAddress!, count: $0.count) }
    }

    /// The Dense module's weight [projectionDim, hidden] and bias (zeros when it has none), checked.
    func denseTensors(projectionDim: Int, hidden: Int) throws -> (weight: [Float], bias: [Float]) {
        guard let dir = denseDirectory else { throw ModelError.invalidConfig(file: "modules.json", reason: "no Dense module") }
        let source = try WeightSource.open(directory: dir)
        let weight = try source.tensor("linear.weight")
        let shape = [projectionDim, hidden]
        guard weight.shape == shape else {
            throw ModelError.shapeMismatch(file: source.path, name: "linear.weight", expected: shape, found: weight.shape)
        }
        let bias = source.names.contains("linear.bias") ? try source.tensor("linear.bias").floats
            : [Float](repeating: 0, count: projectionDim)
        guard bias.count == projectionDim else {
            throw ModelError.shapeMismatch(file: source.path, name: "linear.bias", expected: [projectionDim], found: [bias.count])
        }
        return (weight.floats, bias)
    }

    /// out_features of the Dense module (its projection_dim), 0 without one.
    func denseOutputSize() throws -> Int {
        guard let dir = denseDirectory else { return 0 }
        let url = dir.appendingPathComponent("config.json")
        guard let out = (try Self.json(url) as? [String: Any])?["out_features"] as? Int, out > 0 else {
            throw ModelError.invalidConfig(file: url.path, reason: "out_features must be a positive integer")
        }
        return out
    }

    /// Writes the sentence-transformers files of an encoder directory that already holds the
    /// Hugging Face files: pooling, the projection head as a Dense module, Normalize for cosine.
    public static func write(directory: URL, encoder: BertEncoder, settings: EncoderSettings) throws {
        func write(_ object: Any, _ relative: String) throws {
            let url = directory.appendingPathComponent(relative)
            do {
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]).write(to: url)
            } catch {
                throw ModelError.ioError(file: url.path, reason: error.localizedDescription)
            }
        }
        let hidden = encoder.config.hiddenSize
        var modules: [[String: Any]] = [
            ["idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"],
            ["idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"],
        ]
        try write(["max_seq_length": settings.maxLength, "do_lower_case": settings.doLowerCase], "sentence_bert_config.json")
        try write(["word_embedding_dimension": hidden,
                   "pooling_mode_cls_token": settings.pooling == .cls, "pooling_mode_mean_tokens": settings.pooling == .mean,
                   "pooling_mode_max_tokens": false, "pooling_mode_mean_sqrt_len_tokens": false], "1_Pooling/config.json")
        if let w = encoder.layout.projW, let b = encoder.layout.projB {
            let dim = encoder.layout.projectionDim
            let path = "\(modules.count)_Dense"
            modules.append(["idx": modules.count, "name": "\(modules.count)", "path": path, "type": "sentence_transformers.models.Dense"])
            try write(["in_features": hidden, "out_features": dim, "bias": true, "activation_function": identityActivation],
                      path + "/config.json")
            try WeightSource.writeSafetensors([
                (name: "linear.weight", shape: [dim, hidden], data: UnsafeBufferPointer(start: encoder.parameters.pointer + w, count: dim * hidden)),
                (name: "linear.bias", shape: [dim], data: UnsafeBufferPointer(start: encoder.parameters.pointer + b, count: dim)),
            ], to: directory.appendingPathComponent(path + "/model.safetensors"))
        }
        if settings.simFunc == .cosine {
            let path = "\(modules.count)_Normalize"
            modules.append(["idx": modules.count, "name": "\(modules.count)", "path": path, "type": "sentence_transformers.models.Normalize"])
            try write([String: Any](), path + "/config.json")
        }
        try write(modules, "modules.json")
        try write(["model_type": "SentenceTransformer", "prompts": [String: String](), "default_prompt_name": NSNull(),
                   "similarity_fn_name": settings.simFunc == .cosine ? "cosine" : "dot"], "config_sentence_transformers.json")
    }
}
