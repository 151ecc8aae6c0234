/// Turns the parts of a sample into token ids the way the original collate functions do:
/// questions normalised then `[CLS] q [SEP]`, passages `[CLS] title [SEP] text [SEP]`, each
/// truncated to `maxLength` with `[SEP]` last. Pre-tokenized fields (`TextField.tokenIDs`) are
/// taken as WordPiece ids without special tokens.
struct SampleEncoder {
    let tokenizer: BertTokenizer
    let maxLength: Int
    let pipeline: PipelineKind

    /// Which passage of a sample: positive `i` or hard negative `i`.
    enum PassageRef {
        case positive(Int)
        case hardneg(Int)
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

    func encodePassage(_ sample: SampleView, _ ref: PassageRef) -> [Int32] {
        switch ref {
        case .positive(let i): return encodePassage(sample.positive(i))
        case .hardneg(let i): return encodePassage(sample.hardneg(i))
        }
    }

    /// `shuffle(copy(questions))[0]`, encoded.
    func randomQuestion(_ sample: SampleView, _ rng: inout PythonRandom) throws -> [Int32] {
        guard sample.questionCount > 0 else { throw PipelineError.noQuestions(pipeline: pipeline.rawValue, sampleID: sample.sampleID) }
        var order = Array(0..<sample.questionCount)
        rng.shuffle(&order)
        return encodeQuestion(sample.question(order[0]))
    }

    /// The first positive context (the original's default `shuffle_positive=False`), encoded.
    func firstPositive(_ sample: SampleView) throws -> [Int32] {
        guard sample.positiveCount > 0 else {
            throw PipelineError.noPositiveContexts(pipeline: pipeline.rawValue, sampleID: sample.sampleID)
        }
        return encodePassage(sample.positive(0))
    }

    /// The indices of the sample's hard negatives in shuffled order (no random call for fewer than two).
    func shuffledHardnegs(_ sample: SampleView, _ rng: inout PythonRandom) -> [Int] {
        var order = Array(0..<sample.hardnegCount)
        rng.shuffle(&order)
        return order
    }

    /// `shuffle(positives + hardnegs)[0]`, encoded: a negative drawn from another sample.
    func randomNegative(_ sample: SampleView, _ rng: inout PythonRandom) throws -> [Int32] {
        let count = sample.positiveCount + sample.hardnegCount
        guard count > 0 else {
            throw PipelineError.noNegativeCandidates(pipeline: pipeline.rawValue, sampleID: sample.sampleID)
        }
        var order = Array(0..<count)
        rng.shuffle(&order)
        let pick = order[0]
        return encodePassage(sample, pick < sample.positiveCount ? .positive(pick) : .hardneg(pick - sample.positiveCount))
    }
}

/// The samples of one batch as views whose buffers are reused from batch to batch.
struct ViewPool {
    private(set) var views: [SampleView] = []

    /// Reads `indices` of `source` into the first `indices.count` views (from `offset`).
    mutating func read(_ indices: [Int], from source: any SampleSource, offset: Int = 0) throws {
        try source.readViews(at: indices, into: &views, startingAt: offset)
    }

    /// The first `count` views.
    func prefix(_ count: Int) -> ArraySlice<SampleView> { views[0..<count] }
}

/// Sliding window over an index stream (pos and hard pipelines): the first `forward` indices are
/// popped as this step's forward items, the next `contrastive` stay as negatives and become the
/// next step's forward items.
struct IndexWindow {
    var buffer: [Int] = []

    mutating func take(forward: Int, contrastive: Int, from generator: inout StatelessIndexGenerator) -> (forward: [Int], contrastive: [Int]) {
        while buffer.count < forward + contrastive { buffer.append(generator.next()) }
        let f = Array(buffer.prefix(forward))
        buffer.removeFirst(forward)
        return (f, Array(buffer.prefix(contrastive)))
    }
}

/// The original duplicate mask: [fb x (1 + cs)], column 0 is 1, column 1 + j is 0 where
/// negative j has the forward item's sample_id.
func duplicateMask(forwardIDs: [Int], negativeIDs: [Int]) -> [Int32] {
    var mask: [Int32] = []
    mask.reserveCapacity(forwardIDs.count * (1 + negativeIDs.count))
    for f in forwardIDs {
        mask.append(1)
        for n in negativeIDs { mask.append(f != n ? 1 : 0) }
    }
    return mask
}
