/// The pos pipeline (SPEC §4): a sliding window over one index stream. Forward items give a
/// question and their first positive; the items left in the window are this step's negatives
/// (one context drawn from each one's positives + hard negatives) and the next step's forward items.
public final class PosPipeline: BatchPipeline {
    public let kind = PipelineKind.pos
    public let forwardBatchSize: Int
    public let contrastiveSize: Int
    private let dataset: any SampleSource
    public let materializer: BatchMaterializer?
    private let choices: SampleChoices
    private var generator: StatelessIndexGenerator
    private var window = IndexWindow()
    private var pool = ViewPool()

    /// - Parameters:
    ///   - shuffleSeed: `seed + 234567891` in training (`PipelineSeeds.pos`).
    ///   - tokenizer: nil for a pipeline that only plans (`nextPlan`).
    public init(dataset: any SampleSource, tokenizer: BertTokenizer?, forwardBatchSize: Int, contrastiveSize: Int,
                maxLength: Int, shuffleSeed: Int, datasetName: String = "bytedataset.pos") throws {
        try checkPositive("pipeline.pos.forward_batch_size", forwardBatchSize)
        try checkNonNegative("pipeline.pos.contrastive_size", contrastiveSize)
        try checkPositive("max_length", maxLength, minimum: 2)
        self.dataset = dataset
        sourceNames = [datasetName]
        self.forwardBatchSize = forwardBatchSize
        self.contrastiveSize = contrastiveSize
        materializer = tokenizer.map { BatchMaterializer(tokenizer: $0, maxLength: maxLength) }
        choices = SampleChoices(pipeline: .pos, maxLength: maxLength)
        generator = try StatelessIndexGenerator(count: dataset.count, shuffleSeed: shuffleSeed, datasetName: datasetName)
    }

    public var sources: [any SampleSource] { [dataset] }
    public let sourceNames: [String]

    public var state: PipelineState {
        PipelineState(epoch: generator.epoch, iteration: generator.iteration, shiftBack: window.buffer.count)
    }

    public func restore(_ state: PipelineState) throws {
        let shiftBack = state.shiftBack ?? 0
        try checkRestorable(state, pipeline: kind, count: generator.count, maxWindow: contrastiveSize, shiftBack: shiftBack)
        generator.restore(IndexGeneratorState(epoch: state.epoch, iteration: state.iteration))
        window.buffer = generator.previous(shiftBack)
    }

    public func nextPlan() throws -> BatchPlan {
        let (forward, negatives) = window.take(forward: forwardBatchSize, contrastive: contrastiveSize, from: &generator)
        let indices = forward + negatives
        try pool.read(indices, from: dataset)
        var rng = PythonRandom(seed: generator.shuffleSeed + generator.epoch + generator.iteration)
        let choices = self.choices
        return try planWindowBatch(kind: .pos, items: pool.prefix(indices.count), indices: indices.map { (0, $0) },
                                   forwardCount: forwardBatchSize, choices: choices, rng: &rng) { sample, index, rng in
            try choices.firstPositive(sample, source: index.source, index: index.sample)
        }
    }
}

/// The shared plan of pos and hard: forward items (question + `positive(sample)`) then negatives
/// (one context drawn from each); `duplicate_mask` from the sample ids. `indices` are the items'
/// (source, sample index).
func planWindowBatch(kind: PipelineKind, items: ArraySlice<SampleView>, indices: [(source: Int, sample: Int)], forwardCount: Int,
                     choices: SampleChoices, rng: inout PythonRandom,
                     positive: (SampleView, (source: Int, sample: Int), inout PythonRandom) throws -> TextRef) throws -> BatchPlan {
    var questions: [TextRef] = [], positives: [TextRef] = [], negatives: [TextRef] = []
    for (j, (item, index)) in zip(items, indices).enumerated() {
        if j < forwardCount {
            questions.append(try choices.randomQuestion(item, source: index.source, index: index.sample, &rng))
            positives.append(try positive(item, index, &rng))
        } else {
            negatives.append(try choices.randomNegative(item, source: index.source, index: index.sample, &rng))
        }
    }
    var plan = BatchPlan(pipeline: kind, questions: questions, contextParts: [positives, negatives], sampleIDs: items.map(\.sampleID))
    let ids = plan.sampleIDs
    plan.duplicateMask = duplicateMask(forwardIDs: Array(ids[..<forwardCount]), negativeIDs: Array(ids[forwardCount...]))
    return plan
}

func checkPositive(_ parameter: String, _ value: Int, minimum: Int = 1) throws {
    guard value >= minimum else {
        throw PipelineError.invalidSetting(parameter: parameter, value: String(value), reason: "must be at least \(minimum)")
    }
}

func checkNonNegative(_ parameter: String, _ value: Int) throws {
    guard value >= 0 else {
        throw PipelineError.invalidSetting(parameter: parameter, value: String(value), reason: "must not be negative")
    }
}

func checkRestorable(_ state: PipelineState, pipeline: PipelineKind, count: Int, maxWindow: Int, shiftBack: Int) throws {
    guard state.epoch >= 0, state.iteration >= 0, state.iteration <= count else {
        throw PipelineError.invalidState(pipeline: pipeline.rawValue,
            reason: "epoch \(state.epoch), iteration \(state.iteration) is outside a dataset of \(count) samples")
    }
    guard shiftBack >= 0, shiftBack <= maxWindow, shiftBack <= state.epoch * count + state.iteration else {
        throw PipelineError.invalidState(pipeline: pipeline.rawValue,
            reason: "shift_back \(shiftBack) does not fit the window (contrastive size \(maxWindow)) or the indices drawn so far")
    }
}
