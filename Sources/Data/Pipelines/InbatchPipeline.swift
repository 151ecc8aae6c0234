/// The inbatch pipeline (SPEC §4): `forwardBatchSize` samples; contexts are all first positives,
/// then (with `useHardneg`) up to `useNumHardnegs` shuffled hard negatives per sample, missing ones
/// as all-zero rows. `mask` [fb x (fb + fb*k)] is true where a column takes part in a row's softmax:
/// it hides padded hard negatives, and the positive of ANOTHER forward item with the same
/// sample_id (a repeat across the epoch boundary), which would otherwise be a false negative.
/// The target of row i is column i.
public final class InbatchPipeline: BatchPipeline {
    public let kind = PipelineKind.inbatch
    public let forwardBatchSize: Int
    public let useHardneg: Bool
    public let useNumHardnegs: Int
    private let dataset: any SampleSource
    public let materializer: BatchMaterializer?
    private let choices: SampleChoices
    private var generator: StatelessIndexGenerator
    private var pool = ViewPool()

    /// - Parameter shuffleSeed: `seed + 123456789` (`PipelineSeeds.inbatch`).
    public init(dataset: any SampleSource, tokenizer: BertTokenizer?, forwardBatchSize: Int, useHardneg: Bool,
                useNumHardnegs: Int, maxLength: Int, shuffleSeed: Int) throws {
        try checkPositive("pipeline.inbatch.forward_batch_size", forwardBatchSize)
        try checkNonNegative("pipeline.inbatch.use_num_hardnegs", useNumHardnegs)
        try checkPositive("max_length", maxLength, minimum: 2)
        self.dataset = dataset
        self.forwardBatchSize = forwardBatchSize
        self.useHardneg = useHardneg
        self.useNumHardnegs = useNumHardnegs
        materializer = tokenizer.map { BatchMaterializer(tokenizer: $0, maxLength: maxLength) }
        choices = SampleChoices(pipeline: .inbatch, maxLength: maxLength)
        generator = try StatelessIndexGenerator(count: dataset.count, shuffleSeed: shuffleSeed, datasetName: "bytedataset.inbatch")
    }

    public var sources: [any SampleSource] { [dataset] }
    public var sourceNames: [String] { ["bytedataset.inbatch"] }

    public var state: PipelineState { generator.pipelineState }

    public func restore(_ state: PipelineState) throws { try generator.restore(state, pipeline: kind) }

    public func nextPlan() throws -> BatchPlan {
        let indices = (0..<forwardBatchSize).map { _ in generator.next() }
        try pool.read(indices, from: dataset)
        let items = Array(pool.prefix(indices.count))
        var rng = PythonRandom(seed: generator.shuffleSeed + generator.epoch + generator.iteration)
        let k = useHardneg ? useNumHardnegs : 0

        var questions: [TextRef] = [], positives: [TextRef] = [], hardnegRows: [TextRef] = []
        var hardnegCounts: [Int] = []
        for (item, index) in zip(items, indices) {
            questions.append(try choices.randomQuestion(item, source: 0, index: index, &rng))
            positives.append(try choices.firstPositive(item, source: 0, index: index))
            guard useHardneg else { continue }
            let kept = choices.shuffledHardnegs(item, &rng).prefix(k)
            hardnegCounts.append(kept.count)
            for h in 0..<k {
                hardnegRows.append(h < kept.count ? choices.ref(item, source: 0, index: index, part: .hardneg, item: kept[kept.startIndex + h]) : .empty)
            }
        }
        var plan = BatchPlan(pipeline: kind, questions: questions, contextParts: [positives + hardnegRows], sampleIDs: items.map(\.sampleID))

        let fb = forwardBatchSize, columns = fb + fb * k
        var mask = [Bool](repeating: true, count: fb * columns)
        for i in 0..<fb {
            for j in 0..<fb where j != i && items[j].sampleID == items[i].sampleID { mask[i * columns + j] = false }
            for s in 0..<hardnegCounts.count {
                for h in hardnegCounts[s]..<k { mask[i * columns + fb + s * k + h] = false }
            }
        }
        plan.inbatchMask = mask
        return plan
    }
}
