/// The poshard pipeline (SPEC §4): each of `forwardBatchSize` samples gives one question, its first
/// positive and its hard negatives shuffled. The contrastive size is the batch's largest hard-negative
/// count capped at `contrastiveSize`; rows with fewer are padded with all-zero sequences and
/// `hardneg_mask` 0. A sample without hard negatives is allowed (all its hard-negative rows are
/// padding); when no sample of a batch has any, the contrastive size is 0 and `hardneg_mask` is [fb x 1].
public final class PoshardPipeline: BatchPipeline {
    public let kind = PipelineKind.poshard
    public let forwardBatchSize: Int
    public let contrastiveSize: Int
    private let dataset: any SampleSource
    public let materializer: BatchMaterializer?
    private let choices: SampleChoices
    private var generator: StatelessIndexGenerator
    private var pool = ViewPool()

    /// - Parameter shuffleSeed: `seed + 345678912` (`PipelineSeeds.poshard`).
    public init(dataset: any SampleSource, tokenizer: BertTokenizer?, forwardBatchSize: Int, contrastiveSize: Int,
                maxLength: Int, shuffleSeed: Int) throws {
        try checkPositive("pipeline.poshard.forward_batch_size", forwardBatchSize)
        try checkNonNegative("pipeline.poshard.contrastive_size", contrastiveSize)
        try checkPositive("max_length", maxLength, minimum: 2)
        self.dataset = dataset
        self.forwardBatchSize = forwardBatchSize
        self.contrastiveSize = contrastiveSize
        materializer = tokenizer.map { BatchMaterializer(tokenizer: $0, maxLength: maxLength) }
        choices = SampleChoices(pipeline: .poshard, maxLength: maxLength)
        generator = try StatelessIndexGenerator(count: dataset.count, shuffleSeed: shuffleSeed, datasetName: "bytedataset.poshard")
    }

    public var sources: [any SampleSource] { [dataset] }
    public var sourceNames: [String] { ["bytedataset.poshard"] }

    public var state: PipelineState { generator.pipelineState }

    public func restore(_ state: PipelineState) throws { try generator.restore(state, pipeline: kind) }

    public func nextPlan() throws -> BatchPlan {
        let indices = (0..<forwardBatchSize).map { _ in generator.next() }
        try pool.read(indices, from: dataset)
        let items = pool.prefix(indices.count)
        var rng = PythonRandom(seed: generator.shuffleSeed + generator.epoch + generator.iteration)

        // Random choices for every sample in order, as the original.
        var questions: [TextRef] = [], positives: [TextRef] = [], hardnegs: [[Int]] = []
        var dynamicSize = 0
        for (item, index) in zip(items, indices) {
            questions.append(try choices.randomQuestion(item, source: 0, index: index, &rng))
            positives.append(try choices.firstPositive(item, source: 0, index: index))
            let shuffled = choices.shuffledHardnegs(item, &rng)
            dynamicSize = max(dynamicSize, shuffled.count)
            hardnegs.append(shuffled)
        }
        // Contrastive size = min(most hard negatives in the batch, contrastive_size); shorter rows
        // are filled with all-zero sequences and mask 0.
        let size = min(dynamicSize, contrastiveSize)
        var hardnegRows: [TextRef] = []
        var mask: [Int32] = []
        for (item, (index, list)) in zip(items, zip(indices, hardnegs)) {
            mask.append(1)
            for h in 0..<size {
                if h < list.count {
                    hardnegRows.append(choices.ref(item, source: 0, index: index, part: .hardneg, item: list[h]))
                    mask.append(1)
                } else {
                    hardnegRows.append(.empty)
                    mask.append(0)
                }
            }
        }
        var plan = BatchPlan(pipeline: kind, questions: questions, contextParts: [positives, hardnegRows], sampleIDs: items.map(\.sampleID))
        plan.hardnegsPerSample = size
        plan.hardnegMask = mask
        return plan
    }
}
