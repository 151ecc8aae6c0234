import Data
import Foundation

/// DPR bi-encoder: a question encoder and a context encoder (both BERT, same config), their
/// parameters `question_model.*` then `ctx_model.*` in ONE contiguous buffer, gradients in a
/// second buffer of the same layout (one all-reduce, one optimizer loop, one checkpoint write).
/// A bi-encoder made for inference (`trainable: false`) has no gradient buffer: the parameters
/// are all it holds besides one batch's activations, and `backward` is refused.
///
/// A step, without grad cache: `encode` (keeps activations) → loss and dL/d(embeddings) →
/// `backward`. With grad cache (`chunkSize`), `encode` runs chunk by chunk without keeping
/// activations and `backward` re-encodes each chunk with the same dropout masks before
/// back-propagating its slice of dL/d(embeddings). Encode all questions (or all contexts) of a
/// step in one call: a later `encode` of the same side replaces the kept activations.
public final class BiEncoder {
    public enum Side: Int, Sendable { case question = 0, context = 1 }

    public let config: BertConfig
    public let layout: ParameterLayout
    public let parameters: FloatBuffer
    public let gradients: FloatBuffer
    public let question: BertEncoder
    public let context: BertEncoder
    /// With `threads` > 1, each side's rows run in groups, one thread each (RowParallelTraining).
    private lazy var rowParallel = RowParallelTraining(parameters: parameters, gradients: gradients)
    /// true (default): with `threads` > 1 each thread encodes (and back-propagates) its own rows.
    /// false: every thread works on the whole batch (multi-threaded sgemm and loops), the step
    /// before row groups, kept to compare them (`srdpr bench train-step --whole-batch`).
    public var splitsRows = true
    /// The threads that get rows of their own (1: the whole batch on every thread).
    private var rowThreads: Int { splitsRows ? threads : 1 }
    /// `fix_ctx_encoder`: the context encoder is used without gradients and never updated.
    public var fixContextEncoder: Bool
    /// Seed of the dropout masks (with the step, side and row they make each mask).
    public var seed: UInt64
    /// By side, the word-embedding gradient rows written since the last zeroing (empty for inference).
    private let writtenWords: [WrittenWordRows]

    /// `trainable` false: for inference only, no gradient buffer (half the parameter memory).
    /// `sharedSides` (inference only): both sides are one encoder over one set of parameters, named
    /// as Hugging Face names them (no prefix): a single encoder directory embeds questions and
    /// passages with half the memory of two copies.
    public init(config: BertConfig, projectionDim: Int = 0, fixContextEncoder: Bool = false, seed: UInt64 = 12345,
                trainable: Bool = true, sharedSides: Bool = false) {
        precondition(!(sharedSides && trainable), "a bi-encoder that trains has two sets of parameters")
        self.config = config
        var pl = ParameterLayout()
        let q = BertLayout(config: config, projectionDim: projectionDim, prefix: sharedSides ? "" : "question_model.", into: &pl)
        var c = q
        if !sharedSides { c = BertLayout(config: config, projectionDim: projectionDim, prefix: "ctx_model.", into: &pl) }
        layout = pl
        parameters = FloatBuffer(count: pl.totalCount)
        gradients = FloatBuffer(count: trainable ? pl.totalCount : 0)
        question = BertEncoder(config: config, layout: q, parameters: parameters, gradients: gradients)
        context = BertEncoder(config: config, layout: c, parameters: parameters, gradients: gradients)
        self.fixContextEncoder = fixContextEncoder
        self.seed = seed
        writtenWords = trainable ? [question, context].map { _ in WrittenWordRows(vocabSize: config.vocabSize) } : []
        for (encoder, log) in zip([question, context], writtenWords) { encoder.writtenWordRows = log }
    }

    /// Both encoders initialised from one Hugging Face directory (`pretrained_model_cfg`), or
    /// from a bi-encoder directory: config.json with weights named `question_model.…` and
    /// `ctx_model.…` (as `saveWeights` writes them), whose projection heads set projection_dim.
    /// For a plain BERT the projection head starts from PyTorch's nn.Linear init. `pooling` nil:
    /// the one a sentence-transformers directory declares (1_Pooling/config.json), else [CLS].
    /// `shareSides` (with `trainable` false): a directory of one encoder is held once for both sides
    /// (`sharedSides`); a bi-encoder directory keeps its two encoders.
    public static func load(directory: URL, projectionDim: Int = 0, fixContextEncoder: Bool = false,
                            seed: UInt64 = 12345, pooling: Pooling? = nil, trainable: Bool = true,
                            shareSides: Bool = false) throws -> BiEncoder {
        let model = try loadWeights(directory: directory, projectionDim: projectionDim, fixContextEncoder: fixContextEncoder,
                                    seed: seed, trainable: trainable, shareSides: shareSides)
        if let pooling {
            model.pooling = pooling
        } else {
            do {
                model.pooling = try SentenceTransformersPooling.pooling(of: directory)?.pooling ?? .cls
            } catch let e as SentenceTransformersPooling.Unsupported {
                throw ModelError.invalidConfig(file: e.path, reason: e.reason + " (srdpr pools with cls or mean)")
            }
        }
        return model
    }

    private static func loadWeights(directory: URL, projectionDim: Int, fixContextEncoder: Bool,
                                    seed: UInt64, trainable: Bool, shareSides: Bool) throws -> BiEncoder {
        let config = try BertConfig.load(directory.appendingPathComponent("config.json"))
        let source = try WeightSource.open(directory: directory)
        if source.names.contains(where: { $0.hasPrefix("question_model.") }) {
            let dim = source.shape(of: "question_model.encode_proj.weight")?.first ?? 0
            let model = BiEncoder(config: config, projectionDim: dim, fixContextEncoder: fixContextEncoder, seed: seed, trainable: trainable)
            try source.load(into: model.parameters.pointer, layout: model.question.layout, filePrefix: "question_model.")
            try source.load(into: model.parameters.pointer, layout: model.context.layout, filePrefix: "ctx_model.")
            return model
        }
        let model = BiEncoder(config: config, projectionDim: projectionDim, fixContextEncoder: fixContextEncoder, seed: seed,
                              trainable: trainable, sharedSides: shareSides && !trainable)
        let head: Set<String> = ["encode_proj.weight", "encode_proj.bias"]
        for encoder in model.distinctEncoders {
            try source.load(into: model.parameters.pointer, layout: encoder.layout, optional: head)
        }
        // A directory exported with its projection head keeps it; a plain BERT gets a fresh one.
        if projectionDim > 0, !source.names.contains(where: { $0.hasSuffix("encode_proj.weight") }) {
            model.initialiseProjectionHeads()
        }
        return model
    }

    /// nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias (seeded).
    public func initialiseProjectionHeads() {
        var state = seed ^ 0x5DEE_CE66
        let bound = 1 / Float(config.hiddenSize).squareRoot()
        for encoder in distinctEncoders {
            guard let w = encoder.layout.projW, let b = encoder.layout.projB else { continue }
            for i in 0..<(encoder.layout.projectionDim * config.hiddenSize + encoder.layout.projectionDim) {
                state = DropoutContext.mix(state)
                let u = Float(state >> 40) / 16_777_216
                parameters.pointer[(i < encoder.layout.projectionDim * config.hiddenSize ? w + i : b + i - encoder.layout.projectionDim * config.hiddenSize)] = (2 * u - 1) * bound
            }
        }
    }

    public func encoder(_ side: Side) -> BertEncoder { side == .question ? question : context }

    /// Whether both sides are one set of parameters (`sharedSides`).
    public var sidesShareParameters: Bool { question.layout.range == context.layout.range }

    /// The encoders that own parameters: both, or the one of `sharedSides`.
    var distinctEncoders: [BertEncoder] { sidesShareParameters ? [question] : [question, context] }

    /// The pooling of both encoders (`pooling`).
    public var pooling: Pooling {
        get { question.pooling }
        set { question.pooling = newValue; context.pooling = newValue }
    }

    /// Sets `dropout` (hidden and attention, SR-DPR's single `dropout` setting) on both encoders.
    public func setDropout(_ p: Float) {
        for e in [question, context] {
            e.hiddenDropout = p
            e.attentionDropout = p
        }
    }

    public var threads: Int {
        get { question.threads }
        set { question.threads = newValue; context.threads = newValue }
    }

    /// Every gradient to zero, whatever wrote them (from here on the backwards' rows are known again).
    public func zeroGradients() {
        forgetWrittenGradientRows()
        zeroWrittenGradients()
    }

    /// `zeroGradients`' result, writing only what may not be zero: everything but the word-embedding
    /// rows no backward wrote since the last zeroing (they still hold the +0.0 it wrote; most of the
    /// tables, about half the model, in a step). For a caller through whose `backward` every write
    /// into `gradients` went since; after any other write (a multi-rank all-reduce brings in the rows
    /// other ranks wrote) call `forgetWrittenGradientRows` first. Zeroes everything when not known.
    public func zeroWrittenGradients() {
        gradients.zero(spans: ElementSpans.complement(of: unwrittenGradientRanges(), in: 0..<gradients.count), threads: threads)
        for log in writtenWords { log.reset() }
    }

    /// Something besides `backward` wrote into `gradients`: the next `zeroWrittenGradients` zeroes
    /// everything and no row counts as unwritten until then.
    public func forgetWrittenGradientRows() {
        for log in writtenWords { log.forget() }
    }

    /// Element ranges of `gradients` that hold +0.0 (ascending): the word-embedding rows no backward
    /// wrote since the last zeroing (see `zeroWrittenGradients`); empty when not known. Scaling the
    /// gradients by a positive factor (clipping) keeps them +0.0.
    public func unwrittenGradientRanges() -> [Range<Int>] {
        guard !sidesShareParameters else { return [] }
        var ranges: [Range<Int>] = []
        for (encoder, log) in zip([question, context], writtenWords) {
            let table = encoder.layout.wordEmbeddingRange, width = config.hiddenSize
            guard table.count == config.vocabSize * width, let runs = log.unwrittenRuns() else { continue }
            ranges += runs.map { (table.lowerBound + $0.lowerBound * width)..<(table.lowerBound + $0.upperBound * width) }
        }
        return ranges.sorted { $0.lowerBound < $1.lowerBound }
    }

    /// Whether the model was made for training (it has a gradient buffer).
    public var hasGradients: Bool { gradients.count == parameters.count }

    /// Whether `side` gets gradients (false for the context encoder with fix_ctx_encoder, and for
    /// both sides of an inference model).
    public func isTrainable(_ side: Side) -> Bool { hasGradients && !(side == .context && fixContextEncoder) }

    func dropoutContext(_ side: Side, step: Int, train: Bool) -> DropoutContext? {
        train ? DropoutContext(seed: seed, step: UInt64(step), stream: UInt64(side.rawValue)) : nil
    }

    /// Embeddings [rows, outputDim] of `batch`. `train` turns dropout on (masks keyed by seed,
    /// `step`, side and global row `rowOffset + r`). `chunkSize` > 0 = grad cache: encode in
    /// chunks of that many rows, keeping no activations.
    public func encode(_ side: Side, _ batch: TokenBatch, step: Int = 0, train: Bool = true, rowOffset: Int = 0,
                       rowLabels: [Int]? = nil, chunkSize: Int? = nil) throws -> [Float] {
        let e = encoder(side)
        let dropout = dropoutContext(side, step: step, train: train)
        let labels = try Self.labels(batch, rowOffset: rowOffset, rowLabels: rowLabels)
        rowParallel.dropKept(side)
        guard let chunk = chunkSize, chunk > 0 else {
            let groups = RowParallelTraining.groups(batch, threads: rowThreads, config: config)
            guard groups.isEmpty else {
                try e.validate(batch)
                return try rowParallel.forward(side, base: e, batch, groups: groups, dropout: dropout, labels: labels,
                                               keep: isTrainable(side))
            }
            return try e.forward(batch, dropout: dropout, labels: labels, keepActivations: isTrainable(side))
        }
        var out = [Float]()
        out.reserveCapacity(batch.rows * e.outputDim)
        for start in stride(from: 0, to: batch.rows, by: chunk) {
            let rows = start..<min(start + chunk, batch.rows)
            let part = batch.rows(rows)
            let groups = RowParallelTraining.groups(part, threads: rowThreads, config: config)
            if groups.isEmpty {
                out += try e.forward(part, dropout: dropout, labels: labels.rows(rows), keepActivations: false)
            } else {
                try e.validate(part)
                out += try rowParallel.forward(side, base: e, part, groups: groups, dropout: dropout, labels: labels.rows(rows), keep: false)
            }
        }
        return out
    }

    /// Embeddings [rows, outputDim] of `batch` for inference: the training forward without dropout
    /// and without keeping activations for a backward (one layer's buffers, reused batch to batch).
    public func embed(_ side: Side, _ batch: TokenBatch) throws -> [Float] {
        try encoder(side).forward(batch, dropout: nil, labels: RowLabels(), keepActivations: false)
    }

    /// Adds d(loss)/d(parameters) of `side` into `gradients`, given dL/d(embeddings) of the batch
    /// last passed to `encode` (same step, rowOffset and chunkSize). No-op for a fixed context encoder.
    /// `finished(k)`: the gradients of `encoder(side).layout.backwardOrder[k]` are final (with grad
    /// cache, during the last chunk's backward).
    public func backward(_ side: Side, _ batch: TokenBatch, dEmbeddings: [Float], step: Int = 0, train: Bool = true,
                         rowOffset: Int = 0, rowLabels: [Int]? = nil, chunkSize: Int? = nil,
                         finished: (Int) throws -> Void = { _ in }) throws {
        guard hasGradients else {
            throw ModelError.invalidInput("this bi-encoder was loaded for inference (no gradient buffer); load it with trainable: true to train it")
        }
        guard isTrainable(side) else { return }
        let e = encoder(side)
        guard dEmbeddings.count == batch.rows * e.outputDim else {
            throw ModelError.invalidInput("dEmbeddings has \(dEmbeddings.count) values, expected \(batch.rows) x \(e.outputDim)")
        }
        rowParallel.beginBackward(side)
        guard let chunk = chunkSize, chunk > 0 else {
            guard rowParallel.keepsActivations(side, rows: batch.rows) else {
                try e.backward(dEmbeddings, finished: finished)
                return
            }
            // The gradients of a part are final only once every thread's are summed.
            try rowParallel.backward(side, base: e, dEmbeddings: dEmbeddings)
            rowParallel.finishBackward(side, base: e, threads: threads)
            for part in e.layout.backwardOrder.indices { try finished(part) }
            return
        }
        let dropout = dropoutContext(side, step: step, train: train)
        let labels = try Self.labels(batch, rowOffset: rowOffset, rowLabels: rowLabels)
        let d = e.outputDim
        var spread = false
        for start in stride(from: 0, to: batch.rows, by: chunk) {
            let end = min(start + chunk, batch.rows)
            let part = batch.rows(start..<end)
            let groups = RowParallelTraining.groups(part, threads: rowThreads, config: config)
            if groups.isEmpty {
                _ = try e.forward(part, dropout: dropout, labels: labels.rows(start..<end), keepActivations: true)
                try e.backward(Array(dEmbeddings[(start * d)..<(end * d)]), finished: end == batch.rows && !spread ? finished : { _ in })
            } else {
                try e.validate(part)
                try rowParallel.forwardBackward(side, base: e, part, groups: groups, dropout: dropout, labels: labels.rows(start..<end),
                                                dEmbeddings: dEmbeddings[(start * d)..<(end * d)])
                spread = true
            }
        }
        if spread {
            rowParallel.finishBackward(side, base: e, threads: threads)
            for part in e.layout.backwardOrder.indices { try finished(part) }
        }
    }

    /// The dropout row labels of `batch`: `rowLabels` (one per row) or contiguous from `rowOffset`.
    static func labels(_ batch: TokenBatch, rowOffset: Int, rowLabels: [Int]?) throws -> RowLabels {
        if let rowLabels, rowLabels.count != batch.rows {
            throw ModelError.invalidInput("\(rowLabels.count) dropout row labels for \(batch.rows) rows")
        }
        return RowLabels(offset: rowOffset, list: rowLabels)
    }

    /// Writes every parameter under its full name (`question_model.…`, `ctx_model.…`) to one
    /// safetensors file: the model part of a checkpoint.
    public func saveWeights(to url: URL) throws {
        try WeightSource.writeSafetensors(layout.slots.map { slot in
            (name: slot.name, shape: slot.shape, data: UnsafeBufferPointer(start: parameters.pointer + slot.offset, count: slot.count))
        }, to: url)
    }

    /// Reads both encoders from a file written by `saveWeights` (or any file with
    /// `question_model.` / `ctx_model.` names, e.g. a PyTorch DPR checkpoint's state dict).
    public func loadWeights(from url: URL) throws {
        let source = try WeightSource.open(url)
        try source.load(into: parameters.pointer, layout: question.layout, filePrefix: "question_model.")
        try source.load(into: parameters.pointer, layout: context.layout, filePrefix: "ctx_model.")
    }

    /// Writes one encoder as a Hugging Face directory (model.safetensors, config.json and the
    /// tokenizer files copied from `tokenizerFrom`) that `BertModel.from_pretrained` loads.
    public func save(_ side: Side, to directory: URL, tokenizerFrom: URL?) throws {
        try encoder(side).save(to: directory, tokenizerFrom: tokenizerFrom)
    }
}
