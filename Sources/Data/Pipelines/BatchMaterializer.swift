/// Turns a `BatchPlan` into the token tensors of a `Batch`, the way the original collate functions
/// encode: questions normalised then `[CLS] q [SEP]`, passages `[CLS] title [SEP] text [SEP]`, each
/// truncated to `maxLength` with `[SEP]` last; questions padded on their own, all context parts to
/// one width. Pre-tokenized fields are taken as WordPiece ids without special tokens.
///
/// A plan may come from another process (the coordinator), so every reference is checked against
/// the dataset: a bad one is an error naming the dataset, sample and field, never a crash.
public struct BatchMaterializer {
    public let tokenizer: BertTokenizer
    public let maxLength: Int

    public init(tokenizer: BertTokenizer, maxLength: Int) {
        self.tokenizer = tokenizer
        self.maxLength = maxLength
    }

    /// The batch of `plan` (only its rows when it is a shard), reading samples from `sources`
    /// (index = `TextRef.source`); `sourceNames` name them in errors (e.g. `bytedataset.pos`).
    public func batch(_ plan: BatchPlan, sources: [any SampleSource], sourceNames: [String]) throws -> Batch {
        var view = SampleView()
        func encode(_ ref: TextRef) throws -> [Int32]? {
            try tokens(ref, of: plan, sources: sources, sourceNames: sourceNames, view: &view)
        }
        let questions = try plan.questions.map { try encode($0) }
        guard !questions.contains(where: { $0 == nil }) else {
            throw PipelineError.invalidPlan(pipeline: plan.pipeline.rawValue, reason: "a question row is empty")
        }
        let parts = try plan.contextParts.map { try $0.map { try encode($0) } }
        let pad = tokenizer.padID
        let width = parts.joined().reduce(0) { max($0, $1?.count ?? 0) }
        var batch = Batch(pipeline: plan.pipeline, questions: TokenMatrix(padding: questions, padID: pad), sampleIDs: plan.sampleIDs)
        let expected = plan.pipeline.contextPartNames.count
        guard parts.count == expected else {
            throw PipelineError.invalidPlan(pipeline: plan.pipeline.rawValue, reason: "\(parts.count) context parts, expected \(expected)")
        }
        batch.contextParts = parts.map { TokenMatrix(padding: $0, padID: pad, columns: width) }
        batch.hardnegsPerSample = plan.hardnegsPerSample
        batch.duplicateMask = plan.duplicateMask
        batch.hardnegMask = plan.hardnegMask
        batch.inbatchMask = plan.inbatchMask
        batch.globalRows = plan.globalRows
        batch.rowOwners = plan.rowOwners
        return batch
    }

    /// The token ids of one reference (nil for an empty filler row), checked against the dataset.
    func tokens(_ ref: TextRef, of plan: BatchPlan, sources: [any SampleSource], sourceNames: [String],
                view: inout SampleView) throws -> [Int32]? {
        if ref.part == .empty { return nil }
        let name = sourceNames.indices.contains(ref.source) ? sourceNames[ref.source] : "dataset \(ref.source)"
        guard sources.indices.contains(ref.source) else {
            throw PipelineError.invalidPlan(pipeline: plan.pipeline.rawValue, reason: "it names \(name), which this pipeline does not have")
        }
        let source = sources[ref.source]
        guard (0..<source.count).contains(ref.sample) else {
            throw PipelineError.invalidPlan(pipeline: plan.pipeline.rawValue,
                                            reason: "sample \(ref.sample) is outside \(name) (\(source.count) samples): is it the same dataset everywhere?")
        }
        try source.readView(at: ref.sample, into: &view)
        let available: Int
        switch ref.part {
        case .question: available = view.questionCount
        case .positive: available = view.positiveCount
        case .hardneg: available = view.hardnegCount
        case .empty: available = 0
        }
        guard ref.item >= 0, ref.item < available else {
            throw PipelineError.invalidPlan(pipeline: plan.pipeline.rawValue,
                reason: "sample \(ref.sample) of \(name) (sample_id \(view.sampleID)) has \(available) \(ref.part) field(s), the plan asks for number \(ref.item): is it the same dataset everywhere?")
        }
        switch ref.part {
        case .question: return encodeQuestion(view.question(ref.item))
        case .positive: return encodePassage(view.positive(ref.item))
        case .hardneg: return encodePassage(view.hardneg(ref.item))
        case .empty: return nil
        }
    }

    /// `plan` with every reference's `cost` set to its exact token count (what its row will be
    /// padded to at most), for the coordinator to balance the ranks' work by.
    public func measured(_ plan: BatchPlan, sources: [any SampleSource], sourceNames: [String]) throws -> BatchPlan {
        var view = SampleView()
        func measure(_ ref: TextRef) throws -> TextRef {
            var out = ref
            out.cost = try tokens(ref, of: plan, sources: sources, sourceNames: sourceNames, view: &view)?.count ?? 0
            return out
        }
        var out = plan
        out.questions = try plan.questions.map(measure)
        out.contextParts = try plan.contextParts.map { try $0.map(measure) }
        return out
    }

    /// Tokenises a view's field straight from its UTF-8 bytes in the mapped file.
    private func append(_ field: FieldView, to ids: inout [Int32], isQuestion: Bool) {
        switch field {
        case .utf8(let bytes):
            let raw = UnsafeRawBufferPointer(bytes)
            if isQuestion { tokenizer.appendQuestionTokenIDs(utf8: raw, to: &ids) } else { tokenizer.appendTokenIDs(utf8: raw, to: &ids) }
        case .tokenIDs(let values):
            for v in values { ids.append(Int32(truncatingIfNeeded: v)) }
        }
    }

    func encodeQuestion(_ field: FieldView) -> [Int32] {
        var ids: [Int32] = [tokenizer.clsID]
        append(field, to: &ids, isQuestion: true)
        ids.append(tokenizer.sepID)
        return tokenizer.truncate(ids, maxLength)
    }

    func encodePassage(_ passage: PassageView) -> [Int32] {
        var ids: [Int32] = [tokenizer.clsID]
        append(passage.title, to: &ids, isQuestion: false)
        ids.append(tokenizer.sepID)
        append(passage.text, to: &ids, isQuestion: false)
        ids.append(tokenizer.sepID)
        return tokenizer.truncate(ids, maxLength)
    }
}
