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
    /// Estimated length in tokens after truncation (from the text's size): what the coordinator
    /// balances the ranks' work by. Not used to tokenize.
    public var cost: Int

    public init(source: Int, sample: Int, part: Part, item: Int, cost: Int = 0) {
        self.source = source
        self.sample = sample
        self.part = part
        self.item = item
        self.cost = cost
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
    /// The refs above are then only this rank's rows, in batch order; the masks stay global.
    public var globalRows: [Int]?
    /// Set on a rank's shard: which rank encodes each row of the whole batch (`rowOwners[t][i]` for
    /// row i of tensor t, the tensors ordered as in `globalRows`). Every rank needs all owners to
    /// put the gathered embeddings back in batch order.
    public var rowOwners: [[Int]]?

    public init(pipeline: PipelineKind, questions: [TextRef], contextParts: [[TextRef]], sampleIDs: [Int]) {
        self.pipeline = pipeline
        self.questions = questions
        self.contextParts = contextParts
        self.sampleIDs = sampleIDs
        hardnegsPerSample = 0
    }

    /// Row counts of the whole batch: questions, then each context part.
    public var rowCounts: [Int] { globalRows ?? ([questions.count] + contextParts.map(\.count)) }

    /// Rank `rank`'s part of this (whole) batch: the rows `balancedOwners` gives it, in batch order.
    public func shard(rank: Int, worldSize: Int, cost: RowCost = RowCost()) -> BatchPlan {
        shard(rank: rank, owners: balancedOwners(worldSize: worldSize, cost: cost))
    }

    /// Rank `rank`'s part of this batch under a given assignment of rows to ranks.
    public func shard(rank: Int, owners: [[Int]]) -> BatchPlan {
        precondition(globalRows == nil, "a shard cannot be sharded again")
        var out = self
        out.questions = zip(questions, owners[0]).filter { $0.1 == rank }.map(\.0)
        out.contextParts = contextParts.enumerated().map { t, part in zip(part, owners[t + 1]).filter { $0.1 == rank }.map(\.0) }
        out.globalRows = rowCounts
        out.rowOwners = owners
        return out
    }

    /// Contiguous chunks, the first ranks one row larger (SPEC §6's split).
    public func contiguousOwners(worldSize: Int) -> [[Int]] {
        rowCounts.map { ShardSplit.owners(count: $0, worldSize: worldSize) }
    }

    /// An assignment of rows to ranks that evens out the encoders' work. Each rank pads its rows to
    /// its own longest, so its cost is rows x `cost` of the longest length (`TextRef.cost`): the
    /// rows are sorted by length and cut into one run per rank minimising the largest cost (the
    /// longest rows together, on a rank with fewer of them), questions and contexts (which share
    /// one padding width) each on their own; the rank with the costliest contexts gets the cheapest
    /// questions. Any assignment gives the same loss and gradients up to float rounding: the
    /// embeddings are gathered back into batch order and dropout is keyed by the row's batch index.
    public func balancedOwners(worldSize: Int, cost: RowCost = RowCost()) -> [[Int]] {
        guard worldSize > 1 else { return rowCounts.map { Array(repeating: 0, count: $0) } }
        let contexts = contextParts.enumerated().flatMap { t, part in part.indices.map { (t, $0) } }
        let contextGroups = Self.partition(contexts.map { contextParts[$0.0][$0.1].cost }, worldSize: worldSize, cost: cost)
        let questionGroups = Self.partition(questions.map(\.cost), worldSize: worldSize, cost: cost)
        // Ranks by context cost, heaviest first; questions lightest first.
        let contextOrder = contextGroups.sorted { $0.cost > $1.cost }
        let questionOrder = questionGroups.sorted { $0.cost < $1.cost }
        var owners = rowCounts.map { [Int](repeating: 0, count: $0) }
        for rank in 0..<worldSize {
            for i in questionOrder[rank].rows { owners[0][i] = rank }
            for i in contextOrder[rank].rows { let (t, row) = contexts[i]; owners[t + 1][row] = rank }
        }
        return owners
    }

    /// `worldSize` groups of row indices (some maybe empty) minimising the largest `RowCost` of a
    /// group. Runs of length-sorted rows are searched (the longest rows together, where their
    /// padding costs least) with a dynamic program over cut points.
    static func partition(_ lengths: [Int], worldSize: Int, cost rowCost: RowCost = RowCost()) -> [(rows: [Int], cost: Int)] {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        let m = order.count
        var prefix = [0]
        for i in order { prefix.append(prefix.last! + lengths[i]) }
        func cost(_ i: Int, _ j: Int) -> Int {
            i < j ? rowCost.of(rows: j - i, paddedTo: lengths[order[i]], tokens: prefix[j] - prefix[i]) : 0
        }
        // best[k][j]: the smallest largest cost of the first j sorted rows in k groups.
        var best = [[Int]](repeating: [Int](repeating: Int.max, count: m + 1), count: worldSize + 1)
        var cut = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: worldSize + 1)
        best[0][0] = 0
        for k in 1...worldSize {
            for j in 0...m {
                for i in 0...j where best[k - 1][i] != Int.max {
                    let value = max(best[k - 1][i], cost(i, j))
                    if value < best[k][j] { best[k][j] = value; cut[k][j] = i }
                }
            }
        }
        var groups: [(rows: [Int], cost: Int)] = []
        var j = m
        for k in stride(from: worldSize, to: 0, by: -1) {
            let i = cut[k][j]
            groups.append((Array(order[i..<j]).sorted(), cost(i, j)))
            j = i
        }
        return groups
    }
}

/// What a rank's encoder pass (forward and backward) over some rows costs, in units of one token
/// of the dense layers. Every row is padded to the longest, so the dense layers cost rows x
/// (padded length + a fixed per-row overhead); attention scores every padded query against the
/// row's real keys only (softmax and dropout skip masked keys), padded length x real tokens,
/// which equals the dense part at `attentionLength` tokens. Measured for MiniLM-L6 (hidden 384,
/// dropout on, one thread; step time 0.33 / 0.53 / 0.97 / 2.08 s at 32 / 64 / 128 / 256 tokens):
/// attentionLength ≈ 640 ≈ 1.65 x hidden. Softmax, masks and dropout cost far more per score
/// than their FLOPs suggest.
public struct RowCost: Sendable {
    public var attentionLength: Int

    public init(attentionLength: Int = 640) { self.attentionLength = max(1, attentionLength) }

    /// For a BERT of this hidden size.
    public init(hiddenSize: Int) { self.init(attentionLength: hiddenSize * 33 / 20) }

    /// `rows` rows padded to `paddedTo` tokens, `tokens` real tokens among them.
    public func of(rows: Int, paddedTo length: Int, tokens: Int) -> Int {
        rows * (length + 8) + length * tokens / attentionLength
    }
}
