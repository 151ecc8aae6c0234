/// Turns the parts of a sample into token ids the way the original collate functions do:
/// questions normalised then `[CLS] q [SEP]`, passages `[CLS] title [SEP] text [SEP]`, each
/// truncated to `maxLength` with `[SEP]` last. Pre-tokenized fields (`TextField.tokenIDs`) are
/// taken as WordPiece ids without special tokens.
struct SampleEncoder {
    let tokenizer: BertTokenizer
    let maxLength: Int
    let pipeline: PipelineKind

    private func append(_ field: TextField, to ids: inout [Int32], isQuestion: Bool) {
        switch field {
        case .text(let s):
            tokenizer.appendTokenIDs(isQuestion ? BertTokenizer.normalizeQuestion(s) : s, to: &ids)
        case .tokenIDs(let values):
            ids.append(contentsOf: values.map { Int32(truncatingIfNeeded: $0) })
        }
    }

    func encodeQuestion(_ field: TextField) -> [Int32] {
        var ids: [Int32] = [tokenizer.clsID]
        append(field, to: &ids, isQuestion: true)
        ids.append(tokenizer.sepID)
        return tokenizer.truncate(ids, maxLength)
    }

    func encodePassage(_ passage: Passage) -> [Int32] {
        var ids: [Int32] = [tokenizer.clsID]
        append(passage.title, to: &ids, isQuestion: false)
        ids.append(tokenizer.sepID)
        append(passage.text, to: &ids, isQuestion: false)
        ids.append(tokenizer.sepID)
        return tokenizer.truncate(ids, maxLength)
    }

    /// `shuffle(copy(questions))[0]`, encoded.
    func randomQuestion(_ sample: Sample, _ rng: inout PythonRandom) throws -> [Int32] {
        guard !sample.questions.isEmpty else { throw PipelineError.noQuestions(pipeline: pipeline.rawValue, sampleID: sample.sampleID) }
        var order = Array(sample.questions.indices)
        rng.shuffle(&order)
        return encodeQuestion(sample.questions[order[0]])
    }

    /// The first positive context (the original's default `shuffle_positive=False`), encoded.
    func firstPositive(_ sample: Sample) throws -> [Int32] {
        guard let first = sample.positiveContexts.first else {
            throw PipelineError.noPositiveContexts(pipeline: pipeline.rawValue, sampleID: sample.sampleID)
        }
        return encodePassage(first)
    }

    /// The sample's hard negatives in shuffled order (no random call for fewer than two).
    func shuffledHardnegs(_ sample: Sample, _ rng: inout PythonRandom) -> [Passage] {
        var order = Array(sample.hardnegContexts.indices)
        rng.shuffle(&order)
        return order.map { sample.hardnegContexts[$0] }
    }

    /// `shuffle(positives + hardnegs)[0]`, encoded: a negative drawn from another sample.
    func randomNegative(_ sample: Sample, _ rng: inout PythonRandom) throws -> [Int32] {
        let candidates = sample.positiveContexts + sample.hardnegContexts
        guard !candidates.isEmpty else {
            throw PipelineError.noNegativeCandidates(pipeline: pipeline.rawValue, sampleID: sample.sampleID)
        }
        var order = Array(candidates.indices)
        rng.shuffle(&order)
        return encodePassage(candidates[order[0]])
    }
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
