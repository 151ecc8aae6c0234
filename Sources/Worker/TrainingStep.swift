import Collectives
import Data
import Foundation
import Model

/// What one optimizer update needs to know besides the batches (SPEC §5, §6), taken from the
/// training configuration.
public struct StepSettings: Sendable {
    public var similarity: Model.SimilarityFunction
    /// Factor on the similarity scores before every loss's softmax (`sim_scale`).
    public var scoreScale: Float
    /// Gradients are divided by it before the update (`loss_scale`).
    public var lossScale: Float
    /// Global-norm clipping threshold (`max_grad_norm`); ≤ 0 disables clipping.
    public var maxGradNorm: Float
    /// Grad cache chunk sizes (`q_chunk_size`, `ctx_chunk_size`), nil without grad cache.
    public var questionChunkSize: Int?
    public var contextChunkSize: Int?
    /// `global_loss_buf_sz`: the largest embedding payload one rank may contribute to the all-gather.
    public var globalLossBufferSize: Int

    public init(similarity: Model.SimilarityFunction = .dotProduct, scoreScale: Float = 1, lossScale: Float = 8, maxGradNorm: Float = 1,
                questionChunkSize: Int? = nil, contextChunkSize: Int? = nil, globalLossBufferSize: Int = 150_000) {
        self.similarity = similarity
        self.scoreScale = scoreScale
        self.lossScale = lossScale
        self.maxGradNorm = maxGradNorm
        self.questionChunkSize = questionChunkSize
        self.contextChunkSize = contextChunkSize
        self.globalLossBufferSize = globalLossBufferSize
    }
}

/// The outcome of one optimizer update.
public struct StepResult: Sendable {
    /// Mean loss over the accumulated batches (unscaled; the same on every rank).
    public var loss: Float
    /// Global gradient norm before clipping.
    public var gradientNorm: Float
    /// Learning rate used for this update.
    public var learningRate: Double
    /// Real (unpadded) tokens encoded by this rank.
    public var tokens: Int

    public init(loss: Float, gradientNorm: Float, learningRate: Double, tokens: Int) {
        self.loss = loss; self.gradientNorm = gradientNorm; self.learningRate = learningRate; self.tokens = tokens
    }
}

/// Errors of a training step; each names the step and says what to do.
public enum WorkerError: Error, CustomStringConvertible, Equatable {
    case nonFiniteLoss(step: Int, pipeline: String, loss: Float)
    case nonFiniteGradient(step: Int, pipeline: String, norm: Float)
    case payloadTooLarge(bytes: Int, limit: Int)
    case malformedBatch(pipeline: String, reason: String)
    case malformedPayload(rank: Int, bytes: Int, expected: Int)

    public var description: String {
        switch self {
        case let .nonFiniteLoss(step, pipeline, loss):
            return "step \(step + 1) (\(pipeline) pipeline): the loss is \(loss); training stopped before this update, "
                + "the weights are those of the previous step. Lower learning_rate, raise loss_scale or check the data"
        case let .nonFiniteGradient(step, pipeline, norm):
            return "step \(step + 1) (\(pipeline) pipeline): the gradient norm is \(norm); training stopped before this update. "
                + "Lower learning_rate or set max_grad_norm"
        case let .payloadTooLarge(bytes, limit):
            return "global_loss_buf_sz=\(limit) is too small: this rank's embeddings need \(bytes) bytes; "
                + "set global_loss_buf_sz to at least \(bytes)"
        case let .malformedBatch(pipeline, reason):
            return "\(pipeline) batch: \(reason)"
        case let .malformedPayload(rank, bytes, expected):
            return "all-gather: rank \(rank) sent \(bytes) bytes of embeddings, expected \(expected)"
        }
    }
}

/// One training step of one rank (DESIGN.md, Worker): for each of the step's batches, encode this
/// rank's contiguous chunk of every per-item tensor, all-gather the embeddings, compute the global
/// loss and its gradient w.r.t. the embeddings, back-propagate this rank's rows (with or without
/// grad cache); then all-reduce (average) the gradients, clip, and apply AdamW. Single-node training
/// is this code with `InProcessCommunicator`, so every world size runs the same path.
public final class TrainingWorker {
    public let model: BiEncoder
    public let optimizer: AdamW
    public let schedule: LinearWarmupSchedule
    public let communicator: Communicator
    public var settings: StepSettings
    /// Seconds the last `step` spent blocked on peers: in the all-gathers and waiting for the
    /// gradient all-reduce to finish after backward (the part that overlapped backward is not counted).
    public var lastCommunicationWait: Double { lastGatherWait + lastReduceWait }
    /// The all-gathers' share of it (waiting for the slowest rank's forward, mostly).
    public private(set) var lastGatherWait: Double = 0
    /// The gradient all-reduce's share: what was left to reduce when backward ended.
    public private(set) var lastReduceWait: Double = 0
    /// Reduces each layer's gradients while backward computes the layers below (world > 1).
    private lazy var overlappedReduce = BucketedAllReduce(communicator: communicator)
    private lazy var gradientPlan: GradientPlan? = GradientPlan(model)

    public init(model: BiEncoder, optimizer: AdamW, schedule: LinearWarmupSchedule, communicator: Communicator,
                settings: StepSettings) {
        self.model = model
        self.optimizer = optimizer
        self.schedule = schedule
        self.communicator = communicator
        self.settings = settings
    }

    /// The dropout key of batch `micro` of update `step`: masks depend only on (seed, step, micro,
    /// side, row), never on a generator consumed across the run, so a resumed run draws the same masks.
    static func dropoutStep(step: Int, micro: Int) -> Int { step &* 65_536 &+ micro }

    /// Runs update `step` (0-based) over `batches` (the pipeline's gradient_accumulate_steps batches).
    /// Throws `WorkerError.nonFiniteLoss` before touching the weights when the loss is NaN or infinite.
    public func step(_ step: Int, batches: [Batch]) throws -> StepResult {
        guard let first = batches.first else {
            throw WorkerError.malformedBatch(pipeline: "?", reason: "an update needs at least one batch")
        }
        let pipeline = first.pipeline.rawValue
        communicator.step = step
        model.zeroGradients()
        var lossSum: Float = 0
        var tokens = 0
        lastGatherWait = 0
        lastReduceWait = 0
        let plan = communicator.worldSize > 1 ? gradientPlan : nil
        for (micro, batch) in batches.enumerated() {
            // The last batch's backward writes final gradients: reduce each encoder's as soon as it is done.
            let isLast = micro == batches.count - 1
            let (loss, n) = try accumulate(batch, dropoutStep: Self.dropoutStep(step: step, micro: micro),
                                          gradScale: Float(communicator.worldSize) / settings.lossScale / Float(batches.count),
                                          beforeBackward: {
                                              guard let plan, isLast else { return }
                                              guard $0.isFinite else { throw WorkerError.nonFiniteLoss(step: step, pipeline: pipeline, loss: $0) }
                                              try self.overlappedReduce.start(self.model.gradients.buffer, buckets: plan.buckets, op: .mean)
                                          },
                                          finished: { side, part in
                                              guard let plan, isLast else { return }
                                              for bucket in plan.buckets(side, part: part) { try self.overlappedReduce.markReady(bucket) }
                                          })
            guard loss.isFinite else { throw WorkerError.nonFiniteLoss(step: step, pipeline: pipeline, loss: loss) }
            lossSum += loss
            tokens += n
        }
        let waitStart = DispatchTime.now().uptimeNanoseconds
        if plan != nil {
            try overlappedReduce.wait()
        } else {
            try communicator.allReduce(model.gradients.buffer, op: .mean)
        }
        lastReduceWait = Double(DispatchTime.now().uptimeNanoseconds - waitStart) / 1e9
        let norm = GradClip.clip(model.gradients.buffer, maxNorm: settings.maxGradNorm)
        guard norm.isFinite else { throw WorkerError.nonFiniteGradient(step: step, pipeline: pipeline, norm: norm) }
        let lr = schedule.learningRate(atStep: step)
        optimizer.update(parameters: model.parameters.buffer, gradients: UnsafeBufferPointer(model.gradients.buffer),
                         learningRate: lr)
        return StepResult(loss: lossSum / Float(batches.count), gradientNorm: norm, learningRate: lr, tokens: tokens)
    }

    /// The context tensors of a batch, in the order they are scored: (name, matrix).
    static func contextParts(_ batch: Batch) throws -> [TokenMatrix] {
        func need(_ m: TokenMatrix?, _ name: String) throws -> TokenMatrix {
            guard let m else { throw WorkerError.malformedBatch(pipeline: batch.pipeline.rawValue, reason: "no \(name)") }
            return m
        }
        switch batch.pipeline {
        case .pos, .hard:
            return [try need(batch.positiveContexts, "positive contexts"), try need(batch.negativeContexts, "negative contexts")]
        case .poshard:
            return [try need(batch.positiveContexts, "positive contexts"), try need(batch.hardnegContexts, "hard negative contexts")]
        case .inbatch:
            return [try need(batch.contexts, "contexts")]
        }
    }

    /// A token matrix as a model batch (a matrix of width 0 gives rows of one padding token).
    static func tokenBatch(_ m: TokenMatrix) throws -> TokenBatch {
        guard m.columns > 0 else {
            return try TokenBatch(inputIds: [Int32](repeating: 0, count: m.rows), attentionMask: [Int32](repeating: 0, count: m.rows),
                                  rows: m.rows, seqLen: 1)
        }
        return try TokenBatch(inputIds: m.ids, attentionMask: m.mask, rows: m.rows, seqLen: m.columns)
    }

    /// Forward, global loss and backward of one batch; adds gradScale · d(loss)/dθ of this rank's rows
    /// into the gradient buffer. Returns the (global, unscaled) loss and this rank's real token count.
    func accumulate(_ batch: Batch, dropoutStep: Int, gradScale: Float,
                    beforeBackward: (Float) throws -> Void = { _ in },
                    finished: (BiEncoder.Side, Int) throws -> Void = { _, _ in }) throws -> (Float, Int) {
        let rank = communicator.rank, world = communicator.worldSize
        let dim = model.question.outputDim
        let parts = try Self.contextParts(batch)

        // Which rank encodes which row of every per-item tensor: contiguous chunks of a whole batch
        // (SPEC §6), or the coordinator's assignment (a shard holds only this rank's rows).
        let counts = batch.globalRows ?? ([batch.questions.rows] + parts.map(\.rows))
        guard counts.count == parts.count + 1, counts.allSatisfy({ $0 >= 0 }) else {
            throw WorkerError.malformedBatch(pipeline: batch.pipeline.rawValue, reason: "\(counts.count) row counts for \(parts.count + 1) tensors")
        }
        let owners = batch.rowOwners ?? counts.map { count in
            (0..<world).flatMap { r in Array(repeating: r, count: ShardSplit.range(count: count, rank: r, worldSize: world).count) }
        }
        guard owners.count == counts.count, zip(owners, counts).allSatisfy({ $0.count == $1 && $0.allSatisfy { (0..<world).contains($0) } }) else {
            throw WorkerError.malformedBatch(pipeline: batch.pipeline.rawValue, reason: "row owners do not match the row counts \(counts) and world size \(world)")
        }
        /// Rows of tensor `t` that rank `r` encodes, in batch order.
        func rows(_ t: Int, of r: Int) -> [Int] { owners[t].indices.filter { owners[t][$0] == r } }
        let fb = counts[0]
        let qRows = rows(0, of: rank)
        let partRows = parts.indices.map { rows($0 + 1, of: rank) }
        let isShard = batch.globalRows != nil
        if isShard {
            for (m, mine) in zip([batch.questions] + parts, [qRows] + partRows) where m.rows != mine.count {
                throw WorkerError.malformedBatch(pipeline: batch.pipeline.rawValue,
                    reason: "rank \(rank) of \(world) got \(m.rows) rows of a tensor where it owns \(mine.count) of \(counts)")
            }
        }
        let qBatch = try Self.tokenBatch(isShard ? batch.questions : batch.questions.rows(qRows))
        let ctxBatch = try TokenBatch.concatenate(zip(parts, partRows).map { try Self.tokenBatch(isShard ? $0 : $0.rows($1)) })
        let tokens = qBatch.attentionMask.reduce(0) { $0 + Int($1) } + ctxBatch.attentionMask.reduce(0) { $0 + Int($1) }
        // Dropout masks are keyed by each row's place in the whole batch (context parts one after
        // the other), so any number of ranks, with any assignment, draws the masks one process draws.
        var partStart = 0
        var ctxLabels: [Int] = []
        for (i, mine) in partRows.enumerated() {
            ctxLabels += mine.map { partStart + $0 }
            partStart += counts[i + 1]
        }
        let qEmb = qBatch.rows > 0
            ? try model.encode(.question, qBatch, step: dropoutStep, train: true, rowLabels: qRows,
                               chunkSize: settings.questionChunkSize) : []
        let cEmb = ctxBatch.rows > 0
            ? try model.encode(.context, ctxBatch, step: dropoutStep, train: true, rowLabels: ctxLabels,
                               chunkSize: settings.contextChunkSize) : []

        // All-gather: every rank's question rows, then its rows of each context part, put back in batch order.
        let payload = qEmb + cEmb
        let bytes = payload.count * MemoryLayout<Float>.size
        if world > 1, bytes > settings.globalLossBufferSize {
            throw WorkerError.payloadTooLarge(bytes: bytes, limit: settings.globalLossBufferSize)
        }
        let gatherStart = DispatchTime.now().uptimeNanoseconds
        let gathered = try communicator.allGather(payload.withUnsafeBytes { Array($0) })
        lastGatherWait += Double(DispatchTime.now().uptimeNanoseconds - gatherStart) / 1e9
        var globalQ = [Float](repeating: 0, count: fb * dim)
        var globalParts = counts.dropFirst().map { [Float](repeating: 0, count: $0 * dim) }
        for (r, raw) in gathered.enumerated() {
            let theirs = (0..<counts.count).map { rows($0, of: r) }
            let expected = theirs.reduce(0) { $0 + $1.count } * dim
            guard raw.count == expected * 4 else { throw WorkerError.malformedPayload(rank: r, bytes: raw.count, expected: expected * 4) }
            raw.withUnsafeBytes { rawBytes in
                let floats = rawBytes.bindMemory(to: Float.self)
                var at = 0
                for (t, mine) in theirs.enumerated() {
                    for row in mine {
                        for d in 0..<dim {
                            if t == 0 { globalQ[row * dim + d] = floats[at + d] } else { globalParts[t - 1][row * dim + d] = floats[at + d] }
                        }
                        at += dim
                    }
                }
            }
        }

        // Global loss and its gradient w.r.t. every embedding.
        var dQ = [Float](repeating: 0, count: globalQ.count)
        var dParts = globalParts.map { [Float](repeating: 0, count: $0.count) }
        let loss = try globalLoss(batch, rows: fb, q: globalQ, parts: globalParts, dQ: &dQ, dParts: &dParts, gradScale: gradScale)
        try beforeBackward(loss)

        // Back-propagate this rank's rows; `finished` hears of each part of an encoder's gradients as
        // it is written, and of all of them once its backward is over (also when it had no rows).
        func gradientRows(_ all: [Float], _ mine: [Int]) -> [Float] { mine.flatMap { all[($0 * dim)..<(($0 + 1) * dim)] } }
        func finishedAll(_ side: BiEncoder.Side) throws {
            for part in model.encoder(side).layout.backwardOrder.indices { try finished(side, part) }
        }
        if qBatch.rows > 0 {
            try model.backward(.question, qBatch, dEmbeddings: gradientRows(dQ, qRows), step: dropoutStep, train: true,
                               rowLabels: qRows, chunkSize: settings.questionChunkSize, finished: { try finished(.question, $0) })
        }
        try finishedAll(.question)
        if ctxBatch.rows > 0 {
            let dC = partRows.enumerated().flatMap { gradientRows(dParts[$0.offset], $0.element) }
            try model.backward(.context, ctxBatch, dEmbeddings: dC, step: dropoutStep, train: true, rowLabels: ctxLabels,
                               chunkSize: settings.contextChunkSize, finished: { try finished(.context, $0) })
        }
        try finishedAll(.context)
        return (loss, tokens)
    }

    /// The pipeline's loss over the global embeddings (SPEC §5).
    func globalLoss(_ batch: Batch, rows fb: Int, q: [Float], parts: [[Float]], dQ: inout [Float], dParts: inout [[Float]],
                    gradScale: Float) throws -> Float {
        let dim = model.question.outputDim
        let sim = settings.similarity
        switch batch.pipeline {
        case .pos, .hard:
            let mask = batch.duplicateMask.map { $0.map(Int.init) }
            var dP = dParts[0], dN = dParts[1]
            defer { dParts = [dP, dN] }
            return try q.withUnsafeBufferPointer { Q in try parts[0].withUnsafeBufferPointer { P in
                try parts[1].withUnsafeBufferPointer { N in try dQ.withUnsafeMutableBufferPointer { DQ in
                    try dP.withUnsafeMutableBufferPointer { DP in try dN.withUnsafeMutableBufferPointer { DN in
                        try PositiveLoss.forwardBackward(q: Q, p: P, n: N, rows: fb, negatives: parts[1].count / dim, dim: dim,
                                                         duplicateMask: mask, similarity: sim, scoreScale: settings.scoreScale, gradScale: gradScale,
                                                         gradients: .init(q: DQ, p: DP, n: DN))
                    } }
                } }
            } }
        case .poshard:
            let mask = batch.hardnegMask.map { $0.map(Int.init) }
            var dP = dParts[0], dH = dParts[1]
            defer { dParts = [dP, dH] }
            return try q.withUnsafeBufferPointer { Q in try parts[0].withUnsafeBufferPointer { P in
                try parts[1].withUnsafeBufferPointer { H in try dQ.withUnsafeMutableBufferPointer { DQ in
                    try dP.withUnsafeMutableBufferPointer { DP in try dH.withUnsafeMutableBufferPointer { DH in
                        try PosHardLoss.forwardBackward(q: Q, p: P, h: H, rows: fb, hardNegatives: batch.hardnegsPerSample, dim: dim,
                                                        hardnegMask: mask, similarity: sim, scoreScale: settings.scoreScale, gradScale: gradScale,
                                                        gradients: .init(q: DQ, p: DP, h: DH))
                    } }
                } }
            } }
        case .inbatch:
            let mask = batch.inbatchMask.map { $0.map { $0 ? 1 : 0 } }
            var dC = dParts[0]
            defer { dParts = [dC] }
            return try q.withUnsafeBufferPointer { Q in try parts[0].withUnsafeBufferPointer { C in
                try dQ.withUnsafeMutableBufferPointer { DQ in try dC.withUnsafeMutableBufferPointer { DC in
                    try InBatchLoss.forwardBackward(q: Q, c: C, rows: fb, contexts: parts[0].count / dim, dim: dim, mask: mask,
                                                    similarity: sim, scoreScale: settings.scoreScale, gradScale: gradScale, gradients: .init(q: DQ, c: DC))
                } }
            } }
        }
    }
}
