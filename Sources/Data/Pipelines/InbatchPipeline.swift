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
    private let encoder: SampleEncoder
    private var generator: StatelessIndexGenerator
    private var pool = ViewPool()

    /// - Parameter shuffleSeed: `seed + 123456789` (`PipelineSeeds.inbatch`).
    public init(dataset: any SampleSource, tokenizer: BertTokenizer, forwardBatchSize: Int, useHardneg: Bool,
                useNumHardnegs: Int, maxLength: Int, shuffleSeed: Int) throws {
        try checkPositive("pipeline.inbatch.forward_batch_size", forwardBatchSize)
        try checkNonNegative("pipeline.inbatch.use_num_hardnegs", useNumHardnegs)
        try checkPositive("max_length", maxLength, minimum: 2)
        self.dataset = dataset
        self.forwardBatchSize = forwardBatchSize
        self.useHardneg = useHardneg
        self.useNumHardnegs = useNumHardnegs
        encoder = SampleEncoder(tokenizer: tokenizer, maxLength: maxLength, pipeline: .inbatch)
        generator = try StatelessIndexGenerator(count: dataset.count, shuffleSeed: shuffleSeed, datasetName: "bytedataset.inbatch")
    }

    public var state: PipelineState { generator.pipelineState }

    public func restore(_ state: PipelineState) throws { try generator.restore(state, pipeline: kind) }

    public func nextBatch() throws -> Batch {
        let indices = (0..<forwardBatchSize).map { _ in generator.next() }
        try pool.read(indices, from: dataset)
        let items = Array(pool.prefix(indices.count))
        var rng = PythonRandom(seed: generator.shuffleSeed + generator.epoch + generator.iteration)
        let k = useHardneg ? useNumHardnegs : 0

        var questions: [[Int32]] = [], positives: [[Int32]?] = [], hardnegRows: [[Int32]?] = []
        var hardnegCounts: [Int] = []
        for item in items {
            questions.append(try encoder.randomQuestion(item, &rng))
            positives.append(try encoder.firstPositive(item))
            guard useHardneg else { continue }
            let kept = encoder.shuffledHardnegs(item, &rng).prefix(k)
            hardnegCounts.append(kept.count)
            for h in 0..<k { hardnegRows.append(h < kept.count ? encoder.encodePassage(item.hardneg(kept[kept.startIndex + h])) : nil) }
        }
        let pad = encoder.tokenizer.padID
        var batch = Batch(pipeline: kind, questions: TokenMatrix(padding: questions, padID: pad), sampleIDs: items.map(\.sampleID))
        batch.contexts = TokenMatrix(padding: positives + hardnegRows, padID: pad)

        let fb = forwardBatchSize, columns = fb + fb * k
        var mask = [Bool](repeating: true, count: fb * columns)
        for i in 0..<fb {
            for j in 0..<fb where j != i && items[j].sampleID == items[i].sampleID { mask[i * columns + j] = false }
            for s in 0..<hardnegCounts.count {
                for h in hardnegCounts[s]..<k { mask[i * columns + fb + s * k + h] = false }
            }
        }
        batch.inbatchMask = mask
        return batch
    }
}
