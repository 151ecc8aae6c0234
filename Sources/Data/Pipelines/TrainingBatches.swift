import Foundation

/// The batches `srdpr train` consumes, in order: the schedule of `train_mode`/`regulate_factor`
/// over one pipeline per present `PipelineKind`, each step drawing its pipeline's
/// `gradient_accumulate_steps` batches (one optimizer update). Built from a `TrainingConfig`.
public final class TrainingBatches {
    public let schedule: PipelineSchedule
    public private(set) var pipelines: [PipelineKind: any BatchPipeline]
    public let gradientAccumulateSteps: [PipelineKind: Int]

    /// Builds every pipeline of `config.train_mode`.
    /// - Parameters:
    ///   - tokenizer: nil for batches that are only planned (the coordinator's): `plans(forStep:)`
    ///     works, `batches(forStep:)` and `materialize` do not.
    ///   - open: opens a dataset path (`bytedataset.*`); defaults to `ByteDataset`.
    public init(config: TrainingConfig, tokenizer: BertTokenizer?,
                open: (String) throws -> any SampleSource = { try ByteDataset(directory: $0) }) throws {
        try config.validate()
        try config.requireDatasetPaths()
        schedule = try PipelineSchedule(trainMode: config.trainMode, regulateFactor: config.regulateFactor)
        var pipelines: [PipelineKind: any BatchPipeline] = [:]
        var steps: [PipelineKind: Int] = [:]
        let p = config.pipeline
        for kind in schedule.pipelines {
            let seed = config.seed + PipelineSeeds.offset(kind)
            steps[kind] = p.common(kind).gradientAccumulateSteps
            switch kind {
            case .inbatch:
                pipelines[kind] = try InbatchPipeline(dataset: open(config.bytedataset.inbatch!), tokenizer: tokenizer,
                    forwardBatchSize: p.inbatch.forwardBatchSize, useHardneg: p.inbatch.useHardneg,
                    useNumHardnegs: p.inbatch.useNumHardnegs, maxLength: config.maxLength, shuffleSeed: seed)
            case .pos:
                pipelines[kind] = try PosPipeline(dataset: open(config.bytedataset.pos!), tokenizer: tokenizer,
                    forwardBatchSize: p.pos.forwardBatchSize, contrastiveSize: p.pos.contrastiveSize,
                    maxLength: config.maxLength, shuffleSeed: seed)
            case .poshard:
                pipelines[kind] = try PoshardPipeline(dataset: open(config.bytedataset.poshard!), tokenizer: tokenizer,
                    forwardBatchSize: p.poshard.forwardBatchSize, contrastiveSize: p.poshard.contrastiveSize,
                    maxLength: config.maxLength, shuffleSeed: seed)
            case .hard:
                let randneg = p.hard.useRandneg ? try open(config.bytedataset.hard.randneg!) : nil
                pipelines[kind] = try HardPipeline(hardnegDataset: open(config.bytedataset.hard.hardneg!), randnegDataset: randneg,
                    tokenizer: tokenizer, forwardBatchSize: p.hard.forwardBatchSize, contrastiveSize: p.hard.contrastiveSize,
                    maxLength: config.maxLength, shuffleSeed: seed)
            }
        }
        self.pipelines = pipelines
        gradientAccumulateSteps = steps
    }

    /// The batches of step `step` (0-based): `gradient_accumulate_steps` batches of the scheduled pipeline.
    /// Steps must be requested in order; the pipelines advance.
    public func batches(forStep step: Int) throws -> (pipeline: PipelineKind, batches: [Batch]) {
        let (kind, plans) = try self.plans(forStep: step)
        return (kind, try materialize(plans))
    }

    /// The plans of step `step`: what `batches(forStep:)` tokenizes. Advances the pipelines.
    public func plans(forStep step: Int) throws -> (pipeline: PipelineKind, plans: [BatchPlan]) {
        let kind = schedule.pipeline(atStep: step)
        guard let pipeline = pipelines[kind] else { preconditionFailure("schedule names a pipeline that was not built") }
        let count = gradientAccumulateSteps[kind] ?? 1
        return (kind, try (0..<count).map { _ in try pipeline.nextPlan() })
    }

    /// Tokenizes plans (whole batches or one rank's shards) from this process's own datasets.
    public func materialize(_ plans: [BatchPlan]) throws -> [Batch] {
        try plans.map { plan in
            guard let pipeline = pipelines[plan.pipeline] else {
                throw PipelineError.invalidPlan(pipeline: plan.pipeline.rawValue, reason: "train_mode does not include this pipeline here")
            }
            guard let materializer = pipeline.materializer else {
                preconditionFailure("TrainingBatches built without a tokenizer cannot materialize batches")
            }
            return try materializer.batch(plan, sources: pipeline.sources, sourceNames: pipeline.sourceNames)
        }
    }

    /// The plans with exact token counts as their rows' costs (unchanged when built without a
    /// tokenizer: the byte-size estimate stays). Reads the samples a second time; for sharding.
    public func measure(_ plans: [BatchPlan]) throws -> [BatchPlan] {
        try plans.map { plan in
            guard let pipeline = pipelines[plan.pipeline], let materializer = pipeline.materializer else { return plan }
            return try materializer.measured(plan, sources: pipeline.sources, sourceNames: pipeline.sourceNames)
        }
    }

    /// Every pipeline's state, for a checkpoint.
    public var states: [PipelineKind: PipelineState] { pipelines.mapValues { $0.state } }

    /// Restores the pipelines from a checkpoint's states (pipelines absent from `states` start fresh).
    public func restore(_ states: [PipelineKind: PipelineState]) throws {
        for (kind, state) in states {
            guard let pipeline = pipelines[kind] else {
                throw PipelineError.invalidState(pipeline: kind.rawValue, reason: "the checkpoint has a state for a pipeline not in train_mode")
            }
            try pipeline.restore(state)
        }
    }
}
