import Foundation

/// Errors of `key=value` configuration; each names the parameter and says what would be valid.
public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case malformedArgument(String)
    case unknownKey(String, suggestion: String?)
    case invalidValue(key: String, value: String, expected: String)
    case invalid(key: String, reason: String)
    /// A value of the right type that cannot be used, and why.
    case invalidSetting(key: String, value: String, reason: String)
    /// Required parameters that are not set (every one, not only the first).
    case missing([Missing])

    public struct Missing: Equatable, Sendable {
        public var key: String
        public var reason: String
    }

    public var description: String {
        switch self {
        case .malformedArgument(let a):
            return "argument '\(a)' is not key=value (Hydra style, e.g. pipeline.pos.forward_batch_size=8)"
        case .unknownKey(let k, let suggestion):
            return "unknown parameter '\(k)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
        case .invalidValue(let k, let v, let expected):
            return "\(k)=\(v): expected \(expected)"
        case .invalid(let k, let reason):
            return "\(k): \(reason)"
        case .invalidSetting(let k, let v, let reason):
            return "\(k)=\(v): \(reason)"
        case .missing(let list):
            return "missing required parameter\(list.count == 1 ? "" : "s") (KEY=VALUE; srdpr train --help lists them all):\n"
                + list.map { "  \($0.key)=...  \($0.reason)" }.joined(separator: "\n")
        }
    }
}

/// One settable parameter: its dotted key, the type it expects, how to set it and how to print it,
/// (its one line of meaning is in `ParameterReference.swift`).
struct ConfigParameter {
    let key: String
    let expected: String
    let apply: (inout TrainingConfig, String, String) throws -> Void
    let show: (TrainingConfig) -> String
}

extension TrainingConfig {
    /// Parameters the original keeps only for compatibility with GC-DPR: accepted and ignored with a warning.
    public static let compatibilityKeys: Set<String> = [
        "train_file", "batch_size", "dev_batch_size", "train_rolling_loss_step",
        "gradient_accumulation_steps", "num_train_epochs", "hard_negatives", "other_negatives",
        "train_files_unsample_rates", "val_av_rank_start_epoch", "val_av_rank_hard_neg", "val_av_rank_other_neg",
        "val_av_rank_bsz", "val_av_rank_max_qs", "sequence_length",
    ]
    /// CUDA / mixed-precision parameters: meaningless on CPU, accepted with a warning.
    public static let cudaKeys: Set<String> = ["no_cuda", "local_rank", "fp16", "fp16_opt_level", "device", "n_gpu", "distributed_world_size"]

    /// Other spellings of parameters (the original README writes `logging_steps` and `constrastive_size`).
    static let aliases: [String: String] = {
        var a: [String: String] = ["pipeline.poshard.constrastive_size": "pipeline.poshard.contrastive_size"]
        for p in PipelineKind.allCases { a["pipeline.\(p.rawValue).logging_steps"] = "pipeline.\(p.rawValue).logging_step" }
        return a
    }()

    /// Every parameter with a value, by dotted key.
    static let parameters: [ConfigParameter] = {
        var list: [ConfigParameter] = []
        func int(_ key: String, _ kp: WritableKeyPath<TrainingConfig, Int>) {
            list.append(ConfigParameter(key: key, expected: "an integer", apply: { c, k, v in c[keyPath: kp] = try parseInt(k, v) },
                                        show: { String($0[keyPath: kp]) }))
        }
        func double(_ key: String, _ kp: WritableKeyPath<TrainingConfig, Double>) {
            list.append(ConfigParameter(key: key, expected: "a number", apply: { c, k, v in c[keyPath: kp] = try parseDouble(k, v) },
                                        show: { String($0[keyPath: kp]) }))
        }
        func bool(_ key: String, _ kp: WritableKeyPath<TrainingConfig, Bool>) {
            list.append(ConfigParameter(key: key, expected: "true or false", apply: { c, k, v in c[keyPath: kp] = try parseBool(k, v) },
                                        show: { String($0[keyPath: kp]) }))
        }
        func string(_ key: String, _ kp: WritableKeyPath<TrainingConfig, String>) {
            list.append(ConfigParameter(key: key, expected: "a string", apply: { c, _, v in c[keyPath: kp] = unquote(v) },
                                        show: { $0[keyPath: kp] }))
        }
        /// A closed set of words, e.g. sim_func: the value must be one of the enum's raw values.
        func choice<Choice: RawRepresentable & CaseIterable>(_ key: String, _ kp: WritableKeyPath<TrainingConfig, Choice>)
        where Choice.RawValue == String {
            let expected = Choice.allCases.map(\.rawValue).joined(separator: " or ")
            list.append(ConfigParameter(key: key, expected: expected, apply: { c, k, v in
                guard let value = Choice(rawValue: unquote(v)) else {
                    throw ConfigError.invalidValue(key: k, value: v, expected: expected)
                }
                c[keyPath: kp] = value
            }, show: { $0[keyPath: kp].rawValue }))
        }
        func path(_ key: String, _ kp: WritableKeyPath<TrainingConfig, String?>) {
            list.append(ConfigParameter(key: key, expected: "a path, or null", apply: { c, _, v in
                let s = unquote(v)
                c[keyPath: kp] = ["", "null", "None", "~"].contains(s) ? nil : s
            }, show: { $0[keyPath: kp] ?? "null" }))
        }
        path("pretrained_model_cfg", \.pretrainedModelCfg)
        string("encoder_model_type", \.encoderModelType)
        path("pretrained_file", \.pretrainedFile)
        path("model_file", \.modelFile)
        list.append(ConfigParameter(key: "resume", expected: "latest or null", apply: { c, k, v in
            let s = unquote(v)
            if ["", "null", "None", "~", "false"].contains(s) { c.resume = nil; return }
            guard s == "latest" else { throw ConfigError.invalidValue(key: k, value: v, expected: "latest (the newest checkpoint in output_dir) or null") }
            c.resume = s
        }, show: { $0.resume ?? "null" }))
        list.append(ConfigParameter(key: "overwrite_output_dir", expected: "true or false", apply: { c, k, v in
            c.overwriteOutputDir = try parseBool(k, v) ? true : nil  // unset means false: keeps the JSON of old checkpoints
        }, show: { String($0.overwriteOutputDir ?? false) }))
        int("projection_dim", \.projectionDim)
        int("seed", \.seed)
        double("adam_eps", \.adamEps)
        list.append(ConfigParameter(key: "adam_betas", expected: "two numbers, e.g. (0.9,0.999)", apply: { c, k, v in
            c.adamBetas = try parseBetas(k, v)
        }, show: { "(\($0.adamBetas.map { String($0) }.joined(separator: ", ")))" }))
        double("max_grad_norm", \.maxGradNorm)
        double("weight_decay", \.weightDecay)
        double("learning_rate", \.learningRate)
        int("warmup_steps", \.warmupSteps)
        int("total_updates", \.totalUpdates)
        double("dropout", \.dropout)
        double("loss_scale", \.lossScale)
        choice("sim_func", \.simFunc)
        choice("pooling", \.pooling)
        list.append(ConfigParameter(key: "sim_scale", expected: "a positive number", apply: { c, k, v in c.simScale = try parseDouble(k, v) },
                                    show: { String($0.simScale) }))
        bool("fix_ctx_encoder", \.fixCtxEncoder)
        bool("grad_cache", \.gradCache)
        int("q_chunk_size", \.qChunkSize)
        int("ctx_chunk_size", \.ctxChunkSize)
        bool("do_lower_case", \.doLowerCase)
        int("max_length", \.maxLength)
        list.append(ConfigParameter(key: "train_mode", expected: "pipelines joined by '+', e.g. pos+poshard+hard", apply: { c, k, v in
            let s = unquote(v)
            do { _ = try PipelineSchedule.parseTrainMode(s) } catch let e as PipelineError {
                throw ConfigError(e, key: k)
            }
            c.trainMode = s
        }, show: { $0.trainMode }))
        int("regulate_factor", \.regulateFactor)
        path("bytedataset.inbatch", \.bytedataset.inbatch)
        path("bytedataset.pos", \.bytedataset.pos)
        path("bytedataset.poshard", \.bytedataset.poshard)
        path("bytedataset.hard.hardneg", \.bytedataset.hard.hardneg)
        path("bytedataset.hard.randneg", \.bytedataset.hard.randneg)
        int("pipeline.inbatch.forward_batch_size", \.pipeline.inbatch.forwardBatchSize)
        bool("pipeline.inbatch.use_hardneg", \.pipeline.inbatch.useHardneg)
        int("pipeline.inbatch.use_num_hardnegs", \.pipeline.inbatch.useNumHardnegs)
        int("pipeline.inbatch.gradient_accumulate_steps", \.pipeline.inbatch.gradientAccumulateSteps)
        int("pipeline.inbatch.logging_step", \.pipeline.inbatch.loggingStep)
        int("pipeline.pos.forward_batch_size", \.pipeline.pos.forwardBatchSize)
        int("pipeline.pos.contrastive_size", \.pipeline.pos.contrastiveSize)
        int("pipeline.pos.gradient_accumulate_steps", \.pipeline.pos.gradientAccumulateSteps)
        int("pipeline.pos.logging_step", \.pipeline.pos.loggingStep)
        int("pipeline.poshard.forward_batch_size", \.pipeline.poshard.forwardBatchSize)
        int("pipeline.poshard.contrastive_size", \.pipeline.poshard.contrastiveSize)
        int("pipeline.poshard.gradient_accumulate_steps", \.pipeline.poshard.gradientAccumulateSteps)
        int("pipeline.poshard.logging_step", \.pipeline.poshard.loggingStep)
        int("pipeline.hard.forward_batch_size", \.pipeline.hard.forwardBatchSize)
        int("pipeline.hard.contrastive_size", \.pipeline.hard.contrastiveSize)
        bool("pipeline.hard.use_randneg", \.pipeline.hard.useRandneg)
        int("pipeline.hard.gradient_accumulate_steps", \.pipeline.hard.gradientAccumulateSteps)
        int("pipeline.hard.logging_step", \.pipeline.hard.loggingStep)
        int("global_loss_buf_sz", \.globalLossBufferSize)
        choice("allreduce_dtype", \.allreduceDtype)
        int("log_batch_step", \.logBatchStep)
        path("output_dir", \.outputDir)
        string("log_dir", \.logDir)
        string("checkpoint_file_name", \.checkpointFileName)
        int("keep_checkpoint_max", \.keepCheckpointMax)
        int("save_checkpoint_freq", \.saveCheckpointFreq)
        // Evaluation during training (DevSetConfig): setting any eval.* key creates the dev set.
        func devSet(_ key: String, _ kp: WritableKeyPath<DevSetConfig, String?>) {
            list.append(ConfigParameter(key: key, expected: "a path, or null", apply: { c, _, v in
                let s = unquote(v)
                let isNull = ["", "null", "None", "~"].contains(s)
                if isNull && c.eval == nil { return }  // null asks for no dev set
                var set = c.eval ?? DevSetConfig()
                set[keyPath: kp] = isNull ? nil : s
                c.eval = set
            }, show: { $0.eval?[keyPath: kp] ?? "null" }))
        }
        devSet("eval.corpus", \.corpus)
        devSet("eval.queries", \.queries)
        devSet("eval.qrels", \.qrels)
        devSet("eval.beir", \.beir)
        list.append(ConfigParameter(key: "eval.split", expected: "a split name (qrels/<split>.tsv of eval.beir)", apply: { c, _, v in
            let s = unquote(v)
            if ["", "null", "None", "~"].contains(s) { if c.eval != nil { c.eval!.split = DevSetConfig().split }; return }
            var set = c.eval ?? DevSetConfig()
            set.split = s
            c.eval = set
        }, show: { $0.eval?.split ?? "null" }))
        list.append(ConfigParameter(key: "eval.k", expected: "positive cut-offs, e.g. 1,5,20,100", apply: { c, k, v in
            if ["", "null", "None", "~"].contains(unquote(v)) { if c.eval != nil { c.eval!.k = DevSetConfig().k }; return }
            let parts = unquote(v).trimmingCharacters(in: CharacterSet(charactersIn: "[]() ")).split(separator: ",")
            let values = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ $0 > 0 }) else {
                throw ConfigError.invalidValue(key: k, value: v, expected: "positive cut-offs separated by commas, e.g. 1,5,20,100")
            }
            var set = c.eval ?? DevSetConfig()
            set.k = values
            c.eval = set
        }, show: { $0.eval.map { $0.k.map(String.init).joined(separator: ",") } ?? "null" }))
        list.append(ConfigParameter(key: "eval_every", expected: "an integer (updates between dev evaluations; 0: only at the end)",
                                    apply: { c, k, v in
            c.evalEvery = ["", "null", "None", "~"].contains(unquote(v)) ? nil : try parseInt(k, v)
        }, show: { $0.evalEvery.map(String.init) ?? "null" }))
        list.append(ConfigParameter(key: "keep_best", expected: "a dev metric (mrr@10, ndcg@10, top_k_accuracy@K, recall@K), or null",
                                    apply: { c, _, v in
            let s = unquote(v)
            c.keepBest = ["", "null", "None", "~"].contains(s) ? nil : s
        }, show: { $0.keepBest ?? "null" }))
        return list
    }()

    static let parameterIndex: [String: ConfigParameter] = Dictionary(uniqueKeysWithValues: parameters.map { ($0.key, $0) })

    /// Every dotted key that takes a value, in a stable order.
    public static var parameterKeys: [String] { parameters.map(\.key) }

    /// Applies Hydra-style `key=value` arguments (later ones win) to `base`, then validates.
    /// - Returns: the configuration and warnings for accepted-but-ignored parameters.
    /// - Throws: `ConfigError` naming the offending parameter (unknown keys come with the closest valid name).
    /// When `pooling` is not given and `pretrained_model_cfg` is a sentence-transformers model, its
    /// Pooling module decides it (a warning says so).
    public static func parse(_ arguments: [String], base: TrainingConfig = TrainingConfig()) throws -> (config: TrainingConfig, warnings: [String]) {
        var config = base
        var warnings: [String] = []
        var poolingGiven = false
        for argument in arguments {
            guard let eq = argument.firstIndex(of: "=") else { throw ConfigError.malformedArgument(argument) }
            var key = String(argument[..<eq]).trimmingCharacters(in: .whitespaces)
            let value = String(argument[argument.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
            // Hydra's `+key=` (add) and `++key=` (force) prefixes set the key just the same here.
            while key.hasPrefix("+") { key.removeFirst() }
            guard !key.isEmpty else { throw ConfigError.malformedArgument(argument) }
            if let warning = try config.set(key, value) { warnings.append(warning) }
            if key == "pooling" { poolingGiven = true }
        }
        if !poolingGiven, let warning = try config.takePoolingFromPretrainedModel() { warnings.append(warning) }
        try config.validate()
        return (config, warnings)
    }

    /// Sets `pooling` to the one `pretrained_model_cfg`'s sentence-transformers Pooling module
    /// declares (e.g. all-MiniLM-L6-v2: mean). Returns the message that says so, nil when the
    /// directory declares none.
    mutating func takePoolingFromPretrainedModel() throws -> String? {
        guard let directory = pretrainedModelCfg else { return nil }
        let declared: (pooling: Pooling, file: URL)?
        do { declared = try SentenceTransformersPooling.pooling(of: URL(fileURLWithPath: directory)) } catch {
            throw ConfigError.invalid(key: "pooling", reason: "not given, and pretrained_model_cfg's \(error)")
        }
        guard let declared else { return nil }
        pooling = declared.pooling
        return "pooling=\(declared.pooling.rawValue) (not given: taken from pretrained_model_cfg's \(declared.file.path); "
            + "pooling=\(declared.pooling == .cls ? "mean" : "cls") overrides it)"
    }

    /// Sets one parameter from its text value.
    /// - Returns: a warning when the key is accepted only for compatibility and ignored.
    @discardableResult
    public mutating func set(_ key: String, _ value: String) throws -> String? {
        let canonical = Self.aliases[key] ?? key
        if let parameter = Self.parameterIndex[canonical] {
            try parameter.apply(&self, key, value)
            return Self.ignoredWarning(canonical, value)
        }
        if key == "dev_file" {
            // The original validates on DPR-format dev samples; srdpr evaluates retrieval on a dev set instead.
            if ["", "null", "None", "~"].contains(unquote(value)) { return nil }
            throw ConfigError.invalid(key: "dev_file", reason: "the original's validation on DPR-format dev samples is not implemented; "
                + "evaluate retrieval on a dev set during training instead: eval.corpus=CORPUS.jsonl eval.qrels=QRELS eval_every=N "
                + "(or eval.beir=DIR eval.split=dev)")
        }
        if key == "eval_per_epoch" {
            // Only meaningful with dev_file in the original, which is refused above: nothing to map it to.
            return "eval_per_epoch=\(value) has no effect: the original evaluates only with dev_file, and srdpr counts updates, "
                + "not epochs; use eval_every=N (updates) with eval.* to evaluate during training"
        }
        if Self.compatibilityKeys.contains(key) {
            let hint = key == "sequence_length" ? " (use max_length)" : ""
            return "\(key)=\(value) is kept only for compatibility with the original and is ignored\(hint)"
        }
        if Self.cudaKeys.contains(key) {
            return "\(key)=\(value) is a CUDA/fp16 setting with no meaning on CPU; ignored"
        }
        throw ConfigError.unknownKey(key, suggestion: Self.closestKey(to: key))
    }

    /// The current value of every parameter as text, by dotted key.
    public func keyValues() -> [(key: String, value: String)] {
        Self.parameters.map { ($0.key, $0.show(self)) }
    }

    /// Upper bound of `regulate_factor` (the original uses single digits).
    public static let maximumRegulateFactor = 1_000_000

    /// Checks values that are well-typed but unusable; errors name the parameter.
    public func validate() throws {
        func atLeast(_ key: String, _ v: Int, _ minimum: Int) throws {
            if v < minimum { throw ConfigError.invalid(key: key, reason: "is \(v), must be at least \(minimum)") }
        }
        // Before the schedule is built: it holds regulate_factor steps per cycle, so 10^12 would
        // be a terabyte-sized array instead of an error.
        if regulateFactor > Self.maximumRegulateFactor {
            throw ConfigError.invalid(key: "regulate_factor",
                                      reason: "is \(regulateFactor), must be at most \(Self.maximumRegulateFactor)")
        }
        do { _ = try PipelineSchedule(trainMode: trainMode, regulateFactor: regulateFactor) } catch let e as PipelineError {
            throw ConfigError(e, key: "train_mode")
        }
        if encoderModelType != "hf_bert" {
            throw ConfigError.invalidValue(key: "encoder_model_type", value: encoderModelType, expected: "hf_bert (the only encoder implemented)")
        }
        try atLeast("max_length", maxLength, 2)
        try atLeast("projection_dim", projectionDim, 0)
        try atLeast("q_chunk_size", qChunkSize, 1)
        try atLeast("ctx_chunk_size", ctxChunkSize, 1)
        try atLeast("total_updates", totalUpdates, 0)
        try atLeast("warmup_steps", warmupSteps, 0)
        try atLeast("global_loss_buf_sz", globalLossBufferSize, 1)
        try atLeast("log_batch_step", logBatchStep, 1)
        try atLeast("keep_checkpoint_max", keepCheckpointMax, 1)
        try atLeast("save_checkpoint_freq", saveCheckpointFreq, 1)
        for p in PipelineKind.allCases {
            let c = pipeline.common(p)
            try atLeast("pipeline.\(p.rawValue).forward_batch_size", c.forwardBatchSize, 1)
            try atLeast("pipeline.\(p.rawValue).gradient_accumulate_steps", c.gradientAccumulateSteps, 1)
            try atLeast("pipeline.\(p.rawValue).logging_step", c.loggingStep, 1)
        }
        try atLeast("pipeline.pos.contrastive_size", pipeline.pos.contrastiveSize, 0)
        try atLeast("pipeline.poshard.contrastive_size", pipeline.poshard.contrastiveSize, 0)
        try atLeast("pipeline.hard.contrastive_size", pipeline.hard.contrastiveSize, 0)
        try atLeast("pipeline.inbatch.use_num_hardnegs", pipeline.inbatch.useNumHardnegs, 0)
        if !(0.0...1.0).contains(dropout) { throw ConfigError.invalid(key: "dropout", reason: "is \(dropout), must be in [0, 1]") }
        if !(simScale > 0 && simScale.isFinite) { throw ConfigError.invalid(key: "sim_scale", reason: "is \(simScale), must be a positive number") }
        if !(lossScale > 0) { throw ConfigError.invalid(key: "loss_scale", reason: "must be positive") }
        if !(learningRate >= 0) { throw ConfigError.invalid(key: "learning_rate", reason: "must not be negative") }
        if !(adamEps > 0) { throw ConfigError.invalid(key: "adam_eps", reason: "must be positive") }
        try validateDevSet()
    }

    /// The dev-set parameters fit together: one form of input, eval_every ≥ 0 and keep_best naming a
    /// metric the evaluation computes. The files themselves are read before training starts.
    func validateDevSet() throws {
        if let every = evalEvery, every < 0 {
            throw ConfigError.invalid(key: "eval_every", reason: "is \(every), must be at least 0 (0: evaluate only at the end)")
        }
        guard let set = eval else {
            if let every = evalEvery, every > 0 {
                throw ConfigError.invalid(key: "eval_every", reason: "there is no dev set to evaluate: give eval.corpus=FILE eval.qrels=FILE "
                    + "(or eval.corpus, eval.queries and eval.qrels, or eval.beir=DIR eval.split=dev)")
            }
            if let best = keepBest {
                throw ConfigError.invalid(key: "keep_best", reason: "keep_best=\(best) needs a dev set (eval.corpus and eval.qrels, or eval.beir) and eval_every")
            }
            return
        }
        if set.beir != nil {
            if set.corpus != nil || set.queries != nil || set.qrels != nil {
                throw ConfigError.invalid(key: "eval.beir", reason: "a BEIR directory brings its corpus, queries and qrels: drop eval.corpus, eval.queries and eval.qrels")
            }
        } else {
            guard set.corpus != nil else {
                throw ConfigError.invalid(key: "eval.corpus", reason: "not set, but other eval.* parameters are: give the dev passages (or eval.beir=DIR)")
            }
            guard set.qrels != nil else {
                throw ConfigError.invalid(key: "eval.qrels", reason: "not set: give the dev judgements (JSON lines {question, positive_ids}, or TREC qrels with eval.queries)")
            }
        }
        if let best = keepBest, !Self.devMetricNames(k: set.k).contains(best) {
            throw ConfigError.invalid(key: "keep_best", reason: "\(best) is not a dev metric; choose one of "
                + Self.devMetricNames(k: set.k).joined(separator: ", "))
        }
    }

    /// The names of the dev metrics for cut-offs `k` (as `RetrievalMetrics.flatNames` gives them).
    public static func devMetricNames(k: [Int]) -> [String] {
        Array(Set(k + [10])).sorted().flatMap { ["mrr@\($0)", "ndcg@\($0)"] } + Set(k).sorted().flatMap { ["top_k_accuracy@\($0)", "recall@\($0)"] }
    }

    /// The pipelines of `train_mode`, in schedule order.
    public func pipelines() throws -> [PipelineKind] { try PipelineSchedule.parseTrainMode(trainMode) }

    /// Checks that every pipeline of `train_mode` has its dataset path set (`bytedataset.*`).
    public func requireDatasetPaths() throws {
        for kind in try pipelines() {
            switch kind {
            case .inbatch: if bytedataset.inbatch == nil { throw missing("bytedataset.inbatch", kind) }
            case .pos: if bytedataset.pos == nil { throw missing("bytedataset.pos", kind) }
            case .poshard: if bytedataset.poshard == nil { throw missing("bytedataset.poshard", kind) }
            case .hard:
                if bytedataset.hard.hardneg == nil { throw missing("bytedataset.hard.hardneg", kind) }
                if pipeline.hard.useRandneg && bytedataset.hard.randneg == nil {
                    throw ConfigError.invalid(key: "bytedataset.hard.randneg",
                        reason: "not set, but pipeline.hard.use_randneg=true; set the path or pipeline.hard.use_randneg=false")
                }
            }
        }
    }

    private func missing(_ key: String, _ kind: PipelineKind) -> ConfigError {
        ConfigError.invalid(key: key, reason: "not set, but train_mode=\(trainMode) includes the \(kind.rawValue) pipeline")
    }

    /// The valid key nearest to `key` by edit distance (nil when nothing is reasonably close).
    static func closestKey(to key: String) -> String? {
        let candidates = parameterKeys + Array(aliases.keys) + Array(compatibilityKeys) + Array(cudaKeys)
        var best: (String, Int)? = nil
        for c in candidates {
            let d = editDistance(key, c)
            if best == nil || d < best!.1 { best = (Self.aliases[c] ?? c, d) }
        }
        guard let (name, distance) = best, distance <= max(3, key.count / 2) else { return nil }
        return name
    }
}

extension ConfigError {
    /// A pipeline's complaint about a setting, said once: `key=value: reason` (its description
    /// already names the key and value, so it is not wrapped in another "key:" prefix).
    init(_ error: PipelineError, key: String) {
        if case .invalidSetting(let parameter, let value, let reason) = error {
            self = .invalidSetting(key: parameter, value: value, reason: reason)
        } else {
            self = .invalid(key: error.parameter ?? key, reason: error.description)
        }
    }
}

extension PipelineError {
    /// The parameter an `invalidSetting` names.
    var parameter: String? {
        if case .invalidSetting(let p, _, _) = self { return p }
        return nil
    }
}

func unquote(_ value: String) -> String {
    if value.count >= 2, let f = value.first, let l = value.last, (f == "\"" && l == "\"") || (f == "'" && l == "'") {
        return String(value.dropFirst().dropLast())
    }
    return value
}

func parseInt(_ key: String, _ value: String) throws -> Int {
    let s = unquote(value).replacingOccurrences(of: "_", with: "")
    if let v = Int(s) { return v }
    // YAML reads 1e4 as a float; accept it when it is a whole number.
    if let d = Double(s), d.isFinite, d == d.rounded(), abs(d) < 9e15 { return Int(d) }
    throw ConfigError.invalidValue(key: key, value: value, expected: "an integer")
}

func parseDouble(_ key: String, _ value: String) throws -> Double {
    guard let v = Double(unquote(value)), v.isFinite else {
        throw ConfigError.invalidValue(key: key, value: value, expected: "a finite number")
    }
    return v
}

func parseBool(_ key: String, _ value: String) throws -> Bool {
    switch unquote(value).lowercased() {
    case "true", "yes", "on", "1": return true
    case "false", "no", "off", "0", "null", "none": return false
    default: throw ConfigError.invalidValue(key: key, value: value, expected: "true or false")
    }
}

func parseBetas(_ key: String, _ value: String) throws -> [Double] {
    let inner = unquote(value).trimmingCharacters(in: CharacterSet(charactersIn: "()[] "))
    let parts = inner.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    let numbers = parts.compactMap { Double($0) }
    guard parts.count == 2, numbers.count == 2, numbers.allSatisfy({ $0 >= 0 && $0 < 1 }) else {
        throw ConfigError.invalidValue(key: key, value: value, expected: "two numbers in [0, 1), e.g. (0.9,0.999)")
    }
    return numbers
}

/// Levenshtein distance over UTF-8 bytes (keys are ASCII).
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.utf8), y = Array(b.utf8)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count)
    var current = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
