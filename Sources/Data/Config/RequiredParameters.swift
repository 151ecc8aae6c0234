/// The parameters a training run cannot start without, all named at once (a first run usually
/// misses several, and fixing them one error at a time is slow).
extension TrainingConfig {
    /// The unset required parameters, with what each is for: output_dir, pretrained_model_cfg and
    /// the `bytedataset.*` paths of the pipelines of train_mode.
    public func missingRequiredParameters() -> [ConfigError.Missing] {
        var missing: [ConfigError.Missing] = []
        if outputDir == nil { missing.append(.init(key: "output_dir", reason: "the directory the checkpoints are written to")) }
        if pretrainedModelCfg == nil {
            missing.append(.init(key: "pretrained_model_cfg",
                                 reason: "the directory of a Hugging Face BERT model (config.json, vocab.txt, weights)"))
        }
        guard let kinds = try? pipelines() else { return missing }
        func need(_ key: String, _ path: String?, _ kind: PipelineKind) {
            if path == nil {
                missing.append(.init(key: key, reason: "a ByteDataset (srdpr create-dataset); train_mode=\(trainMode) includes the \(kind.rawValue) pipeline"))
            }
        }
        for kind in kinds {
            switch kind {
            case .inbatch: need("bytedataset.inbatch", bytedataset.inbatch, kind)
            case .pos: need("bytedataset.pos", bytedataset.pos, kind)
            case .poshard: need("bytedataset.poshard", bytedataset.poshard, kind)
            case .hard:
                need("bytedataset.hard.hardneg", bytedataset.hard.hardneg, kind)
                if pipeline.hard.useRandneg && bytedataset.hard.randneg == nil {
                    missing.append(.init(key: "bytedataset.hard.randneg",
                        reason: "the random negatives of the hard pipeline (or set pipeline.hard.use_randneg=false)"))
                }
            }
        }
        return missing
    }

    /// Throws `ConfigError.missing` naming every unset required parameter.
    public func requireParameters() throws {
        let missing = missingRequiredParameters()
        if !missing.isEmpty { throw ConfigError.missing(missing) }
    }
}
