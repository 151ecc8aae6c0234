/// Which text of which sample one row of a batch holds: what the coordinator decides and a
/// worker turns into tokens (DESIGN.md: the coordinator draws, the worker reads its own copy).
public struct TextRef: Codable, Equatable, Sendable {
    public enum Part: UInt8, Codable, Sendable {
        case question, positive, hardneg
        /// An all-zero filler row (a missing hard negative); no sample is read.
        case empty
    }

    /// The pipeline's dataset: 0 its own (for hard: the hardneg dataset), 1 the hard pipeline's randneg dataset.
    public var source: Int
    /// Index of the sample in that dataset.
    public var sample: Int
    public var part: Part
    /// Which question / positive / hard negative of the sample.
    public var item: Int

    public init(source: Int, sample: Int, part: Part, item: Int) {
        self.source = source
        self.sample = sample
        self.part = part
        self.item = item
    }

    public static let empty = TextRef(source: 0, sample: 0, part: .empty, item: 0)
}

/// One batch before tokenization: every sampling choice made (which sample, which question, which
/// context), masks computed, nothing read beyond the list lengths. `BatchMaterializer` turns it
/// into the `Batch` the pipeline would have produced; a rank's `shard` holds only its rows.
public struct BatchPlan: Codable, Equatable, Sendable {
    public var pipeline: PipelineKind
    public var questions: [TextRef]
    /// The context tensors in score order, all padded to one width: pos/hard [positives, negatives],
    /// poshard [positives, hard negatives (sample-major)], inbatch [positives then hard negatives].
    public var contextParts: [[TextRef]]
    public var hardnegsPerSample: Int
    public var sampleIDs: [Int]
    public var duplicateMask: [Int32]?
    public var hardnegMask: [Int32]?
    public var inbatchMask: [Bool]?
    /// Set on a rank's shard: the whole batch's row counts, questions first then each context part.
    /// The refs above are then only this rank's contiguous rows (SPEC §6); the masks stay global.
    public var globalRows: [Int]?

    public init(pipeline: PipelineKind, questions: [TextRef], contextParts: [[TextRef]], sampleIDs: [Int]) {
        self.pipeline = pipeline
        self.questions = questions
        self.contextParts = contextParts
        self.sampleIDs = sampleIDs
        hardnegsPerSample = 0
    }

    /// Row counts of the whole batch: questions, then each context part.
    public var rowCounts: [Int] { globalRows ?? ([questions.count] + contextParts.map(\.count)) }

    /// Rank `rank`'s part of this (whole) batch: its contiguous rows of every per-item tensor.
    public func shard(rank: Int, worldSize: Int) -> BatchPlan {
        precondition(globalRows == nil, "a shard cannot be sharded again")
        var out = self
        let counts = rowCounts
        out.questions = Array(questions[ShardSplit.range(count: counts[0], rank: rank, worldSize: worldSize)])
        out.contextParts = contextParts.enumerated().map { i, part in
            Array(part[ShardSplit.range(count: counts[i + 1], rank: rank, worldSize: worldSize)])
        }
        out.globalRows = counts
        return out
    }
}

/// How a global batch is cut among ranks (SPEC §6): contiguous chunks, sizes as even as possible,
/// the first `count % worldSize` ranks one item larger.
public enum ShardSplit {
    /// The half-open range of items `rank` owns out of `count`.
    public static func range(count: Int, rank: Int, worldSize: Int) -> Range<Int> {
        precondition(worldSize > 0 && rank >= 0 && rank < worldSize)
        let base = count / worldSize
        let remainder = count % worldSize
        let start = rank * base + min(rank, remainder)
        let size = base + (rank < remainder ? 1 : 0)
        return start..<(start + size)
    }
}
