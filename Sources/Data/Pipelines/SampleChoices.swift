/// The random choices the original collate functions make inside one sample (which question,
/// which negative, the order of the hard negatives), as `TextRef`s: tokenization comes later, in
/// `BatchMaterializer`, possibly on another machine. Errors name the pipeline and the sample.
struct SampleChoices {
    let pipeline: PipelineKind
    /// `max_length`: estimated lengths are capped to it.
    let maxLength: Int

    /// A reference to one text of `sample` with its estimated token count: about 4 UTF-8 bytes per
    /// WordPiece token in the FAQ data, plus the special tokens, at most `maxLength`.
    func ref(_ sample: SampleView, source: Int, index: Int, part: TextRef.Part, item: Int) -> TextRef {
        func tokens(_ field: FieldView) -> Int {
            switch field {
            case .utf8(let bytes): return (bytes.count + 3) / 4
            case .tokenIDs(let ids): return ids.count
            }
        }
        let estimate: Int
        switch part {
        case .question: estimate = tokens(sample.question(item)) + 2
        case .positive: let p = sample.positive(item); estimate = tokens(p.title) + tokens(p.text) + 3
        case .hardneg: let h = sample.hardneg(item); estimate = tokens(h.title) + tokens(h.text) + 3
        case .empty: estimate = 0
        }
        return TextRef(source: source, sample: index, part: part, item: item, cost: min(estimate, maxLength))
    }

    /// `shuffle(copy(questions))[0]`: which question of the sample.
    func randomQuestion(_ sample: SampleView, source: Int, index: Int, _ rng: inout PythonRandom) throws -> TextRef {
        guard sample.questionCount > 0 else { throw PipelineError.noQuestions(pipeline: pipeline.rawValue, sampleID: sample.sampleID) }
        var order = Array(0..<sample.questionCount)
        rng.shuffle(&order)
        return ref(sample, source: source, index: index, part: .question, item: order[0])
    }

    /// The first positive context (the original's default `shuffle_positive=False`).
    func firstPositive(_ sample: SampleView, source: Int, index: Int) throws -> TextRef {
        guard sample.positiveCount > 0 else {
            throw PipelineError.noPositiveContexts(pipeline: pipeline.rawValue, sampleID: sample.sampleID)
        }
        return ref(sample, source: source, index: index, part: .positive, item: 0)
    }

    /// The indices of the sample's hard negatives in shuffled order (no random call for fewer than two).
    func shuffledHardnegs(_ sample: SampleView, _ rng: inout PythonRandom) -> [Int] {
        var order = Array(0..<sample.hardnegCount)
        rng.shuffle(&order)
        return order
    }

    /// `shuffle(positives + hardnegs)[0]`: a negative drawn from another sample.
    func randomNegative(_ sample: SampleView, source: Int, index: Int, _ rng: inout PythonRandom) throws -> TextRef {
        let count = sample.positiveCount + sample.hardnegCount
        guard count > 0 else {
            throw PipelineError.noNegativeCandidates(pipeline: pipeline.rawValue, sampleID: sample.sampleID)
        }
        var order = Array(0..<count)
        rng.shuffle(&order)
        let pick = order[0]
        return pick < sample.positiveCount ? ref(sample, source: source, index: index, part: .positive, item: pick)
            : ref(sample, source: source, index: index, part: .hardneg, item: pick - sample.positiveCount)
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
