/// How many samples of a dataset have no hard negatives (`hardneg_contexts` empty), checked
/// before training: the hard pipeline cannot use such a sample at all (its "positive" is one of
/// the sample's own hard negatives) and poshard learns nothing from it.
public enum HardNegativeCoverage {
    /// Samples of `dataset` without hard negatives, read in blocks of views (no Strings built).
    public static func samplesWithoutHardNegatives(_ dataset: ByteDataset) throws -> Int {
        var views: [SampleView] = []
        var missing = 0
        let block = 4096
        var start = 0
        while start < dataset.count {
            let indices = Array(start..<min(dataset.count, start + block))
            try dataset.readViews(at: indices, into: &views)
            for k in 0..<indices.count where views[k].hardnegCount == 0 { missing += 1 }
            start += block
        }
        return missing
    }

    /// Checks the datasets of `config`'s pipelines that use hard negatives. A hard-pipeline dataset
    /// with samples without them is an error (the run would stop when one is drawn); for poshard
    /// and inbatch (use_hardneg) the count is a warning.
    public static func check(_ config: TrainingConfig, warn: (String) -> Void) throws {
        let kinds = try config.pipelines()
        let fix = "keep only the samples with hard negatives, e.g. `grep -v '\"hardneg_contexts\": \\[\\]' train.jsonl > train-hardneg.jsonl` "
            + "and `srdpr create-dataset` on it (README: \"Hard negatives\")"
        if kinds.contains(.hard), let path = config.bytedataset.hard.hardneg {
            let dataset = try ByteDataset(directory: path)
            let missing = try samplesWithoutHardNegatives(dataset)
            if missing > 0 {
                throw ConfigError.invalidSetting(key: "bytedataset.hard.hardneg", value: path,
                    reason: "\(missing) of \(dataset.count) samples have no hard negatives (empty hardneg_contexts); the hard pipeline "
                        + "takes its positive from a sample's own hard negatives and stops when it draws one of them: \(fix)")
            }
        }
        var others: [(String, String)] = []
        if kinds.contains(.poshard), let path = config.bytedataset.poshard { others.append(("bytedataset.poshard", path)) }
        if kinds.contains(.inbatch), config.pipeline.inbatch.useHardneg, let path = config.bytedataset.inbatch {
            others.append(("bytedataset.inbatch", path))
        }
        for (key, path) in others {
            let dataset = try ByteDataset(directory: path)
            let missing = try samplesWithoutHardNegatives(dataset)
            if missing > 0 {
                let what = key == "bytedataset.poshard" ? "the poshard pipeline learns nothing from them (their rows are masked)"
                    : "their inbatch rows get no hard negative"
                warn("warning: \(key)=\(path): \(missing) of \(dataset.count) samples have no hard negatives (empty hardneg_contexts); \(what)")
            }
        }
    }
}
