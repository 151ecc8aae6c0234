/// The four training pipelines (`train_mode` names), in schedule order.
public enum PipelineKind: String, Codable, CaseIterable, Sendable, Comparable {
    case inbatch, pos, poshard, hard

    /// The context tensors of a batch of this pipeline, in score order (plan, batch and loss).
    public var contextPartNames: [String] {
        switch self {
        case .pos, .hard: return ["positive contexts", "negative contexts"]
        case .poshard: return ["positive contexts", "hard negative contexts"]
        case .inbatch: return ["contexts"]
        }
    }

    public static func < (a: PipelineKind, b: PipelineKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Dictionaries keyed by pipeline (e.g. checkpointed states) encode as JSON objects `{"pos": ...}`.
extension PipelineKind: CodingKeyRepresentable {}

/// Token ids and attention mask of `rows` sequences padded to `columns`, row-major: what the encoder consumes.
public struct TokenMatrix: Equatable, Codable, Sendable {
    public var rows: Int
    public var columns: Int
    /// `rows * columns` token ids.
    public var ids: [Int32]
    /// `rows * columns` attention mask values (1 real token, 0 padding).
    public var mask: [Int32]

    public init(rows: Int, columns: Int, ids: [Int32], mask: [Int32]) {
        self.rows = rows
        self.columns = columns
        self.ids = ids
        self.mask = mask
    }

    /// Pads `sequences` to `columns` (default: the longest) with `padID` — dynamic padding.
    /// A `nil` entry is an all-zero row (ids and mask 0), the original's filler for missing hard negatives.
    public init(padding sequences: [[Int32]?], padID: Int32, columns: Int? = nil) {
        let width = columns ?? sequences.reduce(0) { max($0, $1?.count ?? 0) }
        rows = sequences.count
        self.columns = width
        ids = []
        mask = []
        ids.reserveCapacity(rows * width)
        mask.reserveCapacity(rows * width)
        for sequence in sequences {
            if let sequence {
                ids.append(contentsOf: sequence)
                mask.append(contentsOf: repeatElement(1, count: sequence.count))
                ids.append(contentsOf: repeatElement(padID, count: width - sequence.count))
                mask.append(contentsOf: repeatElement(0, count: width - sequence.count))
            } else {
                ids.append(contentsOf: repeatElement(0, count: width))
                mask.append(contentsOf: repeatElement(0, count: width))
            }
        }
    }

    /// Rows `range` as a matrix of their own (a rank's contiguous chunk of a global batch, SPEC §6).
    public func rows(_ range: Range<Int>) -> TokenMatrix {
        let span = (range.lowerBound * columns)..<(range.upperBound * columns)
        return TokenMatrix(rows: range.count, columns: columns, ids: Array(ids[span]), mask: Array(mask[span]))
    }

    /// Rows `indices` (in that order) as a matrix of their own, padded as this one.
    public func rows(_ indices: [Int]) -> TokenMatrix {
        var out = TokenMatrix(rows: indices.count, columns: columns, ids: [], mask: [])
        out.ids.reserveCapacity(indices.count * columns)
        out.mask.reserveCapacity(indices.count * columns)
        for r in indices {
            out.ids += idsRow(r)
            out.mask += maskRow(r)
        }
        return out
    }

    /// Row `r` of the ids.
    public func idsRow(_ r: Int) -> ArraySlice<Int32> { ids[(r * columns)..<((r + 1) * columns)] }
    /// Row `r` of the attention mask.
    public func maskRow(_ r: Int) -> ArraySlice<Int32> { mask[(r * columns)..<((r + 1) * columns)] }
}

/// One batch of any pipeline: the questions and the context tensors in score order
/// (`contextParts`, named by ``PipelineKind/contextPartNames``):
/// - pos, hard: `questions` [fb], positives [fb], negatives [cs], `duplicateMask` [fb x (1+cs)]
///   (for hard, the "positive" is one of the sample's own hard negatives and the negatives are random negatives);
/// - poshard: `questions`, positives, hard negatives [fb*cs] (sample-major), `hardnegMask` [fb x (1+cs)];
/// - inbatch: `questions`, contexts [fb + fb*k] (all positives, then k hard negatives per sample),
///   `inbatchMask` [fb x (fb + fb*k)] (true = the column takes part in row's softmax).
/// `sampleIDs` are the `sample_id`s of every item read, in order (the original's `ids`).
public struct Batch: Equatable, Codable, Sendable {
    public var pipeline: PipelineKind
    public var questions: TokenMatrix
    /// The context tensors in the order they are scored, as the plan lists them.
    public var contextParts: [TokenMatrix] = []
    /// Hard negatives per row of the poshard hard negatives (the dynamic contrastive size of poshard).
    public var hardnegsPerSample: Int
    public var sampleIDs: [Int]
    public var duplicateMask: [Int32]?
    public var hardnegMask: [Int32]?
    public var inbatchMask: [Bool]?
    /// Set when the batch holds only one rank's rows (materialized from a `BatchPlan` shard): the
    /// whole batch's row counts, questions first then each context part. Masks stay global.
    public var globalRows: [Int]?
    /// With `globalRows`: which rank holds each row of the whole batch (see `BatchPlan.rowOwners`).
    public var rowOwners: [[Int]]?

    /// The context part `index` when the pipeline has it (for the named accessors below).
    private func part(_ index: Int, of kinds: Set<PipelineKind>) -> TokenMatrix? {
        kinds.contains(pipeline) && contextParts.indices.contains(index) ? contextParts[index] : nil
    }

    private mutating func setPart(_ index: Int, _ value: TokenMatrix?) {
        guard let value else { return }
        while contextParts.count <= index { contextParts.append(TokenMatrix(rows: 0, columns: 0, ids: [], mask: [])) }
        contextParts[index] = value
    }

    /// pos, hard, poshard: the positive contexts (part 0).
    public var positiveContexts: TokenMatrix? {
        get { part(0, of: [.pos, .hard, .poshard]) }
        set { setPart(0, newValue) }
    }
    /// pos, hard: the negative contexts (part 1).
    public var negativeContexts: TokenMatrix? {
        get { part(1, of: [.pos, .hard]) }
        set { setPart(1, newValue) }
    }
    /// poshard: the hard negative contexts (part 1).
    public var hardnegContexts: TokenMatrix? {
        get { part(1, of: [.poshard]) }
        set { setPart(1, newValue) }
    }
    /// inbatch: every context (part 0).
    public var contexts: TokenMatrix? {
        get { part(0, of: [.inbatch]) }
        set { setPart(0, newValue) }
    }

    public init(pipeline: PipelineKind, questions: TokenMatrix, sampleIDs: [Int]) {
        self.pipeline = pipeline
        self.questions = questions
        self.sampleIDs = sampleIDs
        hardnegsPerSample = 0
    }

    /// Number of questions (forward items).
    public var forwardBatchSize: Int { questions.rows }

    /// The original batch dict as ordered JSON: the same keys, nesting and values
    /// (`question/input_ids`, `duplicate_mask`, ...). Token values are printed as integers.
    public func originalKeys() -> [(String, OrderedJSON)] {
        func matrix(_ flat: [Int32], rows: Int, columns: Int) -> OrderedJSON {
            .array((0..<rows).map { r in .array(flat[(r * columns)..<((r + 1) * columns)].map { .int(Int($0)) }) })
        }
        func tokens(_ prefix: String, _ m: TokenMatrix, groups: Int? = nil) -> [(String, OrderedJSON)] {
            if let groups {
                // [fb, cs, L]
                let per = groups
                let sample = { (flat: [Int32]) -> OrderedJSON in
                    .array((0..<(per == 0 ? m.rows : m.rows / per)).map { s in
                        .array((0..<per).map { h in
                            let r = s * per + h
                            return .array(flat[(r * m.columns)..<((r + 1) * m.columns)].map { .int(Int($0)) })
                        })
                    })
                }
                return [("\(prefix)/input_ids", sample(m.ids)), ("\(prefix)/attn_mask", sample(m.mask))]
            }
            return [("\(prefix)/input_ids", matrix(m.ids, rows: m.rows, columns: m.columns)),
                    ("\(prefix)/attn_mask", matrix(m.mask, rows: m.rows, columns: m.columns))]
        }
        var out = tokens("question", questions)
        let fb = forwardBatchSize
        let ids = OrderedJSON.array(sampleIDs.map { .int($0) })
        switch pipeline {
        case .pos, .hard:
            if let p = positiveContexts { out += tokens("positive_context", p) }
            if let n = negativeContexts { out += tokens("negative_context", n) }
            out.append(("ids", ids))
            if let d = duplicateMask { out.append(("duplicate_mask", matrix(d, rows: fb, columns: fb == 0 ? 0 : d.count / fb))) }
        case .poshard:
            if let p = positiveContexts { out += tokens("positive_context", p) }
            if let h = hardnegContexts {
                if hardnegsPerSample == 0 {
                    let empty = OrderedJSON.array((0..<fb).map { _ in .array([]) })
                    out += [("hardneg_context/input_ids", empty), ("hardneg_context/attn_mask", empty)]
                } else {
                    out += tokens("hardneg_context", h, groups: hardnegsPerSample)
                }
            }
            if let m = hardnegMask { out.append(("hardneg_mask", matrix(m, rows: fb, columns: fb == 0 ? 0 : m.count / fb))) }
            out.append(("ids", ids))
        case .inbatch:
            if let c = contexts { out += tokens("context", c) }
            if let m = inbatchMask {
                let columns = fb == 0 ? 0 : m.count / fb
                out.append(("mask", .array((0..<fb).map { r in .array(m[(r * columns)..<((r + 1) * columns)].map { .bool($0) }) })))
            }
            out.append(("ids", ids))
        }
        return out
    }
}
