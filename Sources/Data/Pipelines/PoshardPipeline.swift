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
    private let encoder: SampleEncoder
    private var generator: StatelessIndexGenerator
    private var pool = ViewPool()

    /// - Parameter shuffleSeed: `seed + 345678912` (`PipelineSeeds.poshard`).
    public init(dataset: any SampleSource, tokenizer: BertTokenizer, forwardBatchSize: Int, contrastiveSize: Int,
                maxLength: Int, shuffleSeed: Int) throws {
        try checkPositive("pipeline.poshard.forward_batch_size", forwardBatchSize)
        try checkNonNegative("pipeline.poshard.contrastive_size", contrastiveSize)
        try checkPositive("max_length", maxLength, minimum: 2)
        self.dataset = dataset
        self.forwardBatchSize = forwardBatchSize
        self.contrastiveSize = contrastiveSize
        encoder = SampleEncoder(tokenizer: tokenizer, maxLength: maxLength, pipeline: .poshard)
        generator = try StatelessIndexGenerator(count: dataset.count, shuffleSeed: shuffleSeed, datasetName: "bytedataset.poshard")
    }

    public var state: PipelineState { generator.pipelineState }

    public func restore(_ state: PipelineState) throws { try generator.restore(state, pipeline: kind) }

    public func nextBatch() throws -> Batch {
        let indices = (0..<forwardBatchSize).map { _ in generator.next() }
        try pool.read(indices, from: dataset)
        let items = pool.prefix(indices.count)
        var rng = PythonRandom(seed: generator.shuffleSeed + generator.epoch + generator.iteration)

        // Random choices first, for every sample in order (as the original), tokenization after.
        var questions: [[Int32]] = [], positives: [[Int32]] = [], hardnegs: [[Int]] = []
        var dynamicSize = 0
        for item in items {
            questions.append(try encoder.randomQuestion(item, &rng))
            positives.append(try encoder.firstPositive(item))
            let shuffled = encoder.shuffledHardnegs(item, &rng)
            dynamicSize = max(dynamicSize, shuffled.count)
            hardnegs.append(shuffled)
        }
        let size = min(dynamicSize, contrastiveSize)
        var hardnegRows: [[Int32]?] = []
        var mask: [Int32] = []
        for (item, list) in zip(items, hardnegs) {
            let kept = list.prefix(size)
            mask.append(1)
            for h in 0..<size {
                if h < kept.count {
                    hardnegRows.append(encoder.encodePassage(item.hardneg(kept[kept.startIndex + h])))
                    mask.append(1)
                } else {
                    hardnegRows.append(nil)
                    mask.append(0)
                }
            }
        }
        let pad = encoder.tokenizer.padID
        let width = (positives + hardnegRows.compactMap { $0 }).reduce(0) { max($0, $1.count) }
        var batch = Batch(pipeline: kind, questions: TokenMatrix(padding: questions, padID: pad), sampleIDs: items.map(\.sampleID))
        batch.positiveContexts = TokenMatrix(padding: positives, padID: pad, columns: width)
        batch.hardnegContexts = TokenMatrix(padding: hardnegRows, padID: pad, columns: width)
        batch.hardnegsPerSample = size
        batch.hardnegMask = mask
        return batch
    }
}
