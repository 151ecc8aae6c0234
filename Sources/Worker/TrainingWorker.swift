import Collectives
import Data
import Foundation
import JobContracts
import Model

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
        // Only what the last step wrote (the bi-encoder knows the embedding rows its backward wrote).
        // With several ranks the all-reduce brings in rows other ranks wrote (possibly only part of
        // them, if it throws): those steps zero and read everything.
        model.zeroWrittenGradients()
        if communicator.worldSize > 1 { model.forgetWrittenGradientRows() }
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
                                              try self.overlappedReduce.start(self.model.gradients.buffer, buckets: plan.buckets, op: .mean,
                                                                                             wire: self.settings.gradientWireType)
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
            try communicator.allReduce(model.gradients.buffer, op: .mean, wire: settings.gradientWireType)
        }
        lastReduceWait = Double(DispatchTime.now().uptimeNanoseconds - waitStart) / 1e9
        let lr = schedule.learningRate(atStep: step)
        let norm = optimizer.clipAndUpdate(parameters: model.parameters.buffer, gradients: model.gradients.buffer,
                                           maxNorm: settings.maxGradNorm, learningRate: lr,
                                           zeroGradients: model.unwrittenGradientRanges())
        guard norm.isFinite else { throw WorkerError.nonFiniteGradient(step: step, pipeline: pipeline, norm: norm) }
        return StepResult(loss: lossSum / Float(batches.count), gradientNorm: norm, learningRate: lr, tokens: tokens)
    }

    /// A whole batch cut to rank `rank`'s contiguous chunk of every tensor (SPEC §6's split): what
    /// `accumulate` makes of a batch that is not already a shard, so every batch takes one path.
    static func contiguousShard(of batch: Batch, rank: Int, worldSize: Int) -> Batch {
        var shard = batch
        let counts = [batch.questions.rows] + batch.contextParts.map(\.rows)
        let owners = counts.map { ShardSplit.owners(count: $0, worldSize: worldSize) }
        func mine(_ t: Int) -> [Int] { owners[t].indices.filter { owners[t][$0] == rank } }
        shard.questions = batch.questions.rows(mine(0))
        shard.contextParts = batch.contextParts.enumerated().map { $1.rows(mine($0 + 1)) }
        shard.globalRows = counts
        shard.rowOwners = owners
        return shard
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
    func accumulate(_ whole: Batch, dropoutStep: Int, gradScale: Float,
                    beforeBackward: (Float) throws -> Void = { _ in },
                    finished: (BiEncoder.Side, Int) throws -> Void = { _, _ in }) throws -> (Float, Int) {
        let rank = communicator.rank, world = communicator.worldSize
        let dim = model.question.outputDim
        // Which rank encodes which row of every per-item tensor: the coordinator's assignment (a
        // shard holds only this rank's rows); a whole batch is first cut into contiguous chunks.
        let batch = whole.globalRows == nil ? Self.contiguousShard(of: whole, rank: rank, worldSize: world) : whole
        let parts = batch.contextParts
        let names = batch.pipeline.contextPartNames
        guard parts.count == names.count else {
            throw WorkerError.malformedBatch(pipeline: batch.pipeline.rawValue,
                                             reason: "\(parts.count) context parts, expected \(names.count) (\(names.joined(separator: ", ")))")
        }
        let counts = batch.globalRows ?? []
        guard counts.count == parts.count + 1, counts.allSatisfy({ $0 >= 0 }) else {
            throw WorkerError.malformedBatch(pipeline: batch.pipeline.rawValue, reason: "\(counts.count) row counts for \(parts.count + 1) tensors")
        }
        guard let owners = batch.rowOwners, owners.count == counts.count,
              zip(owners, counts).allSatisfy({ $0.count == $1 && $0.allSatisfy { (0..<world).contains($0) } }) else {
            throw WorkerError.malformedBatch(pipeline: batch.pipeline.rawValue, reason: "row owners do not match the row counts \(counts) and world size \(world)")
        }
        /// Rows of tensor `t` that rank `r` encodes, in batch order.
        func rows(_ t: Int, of r: Int) -> [Int] { owners[t].indices.filter { owners[t][$0] == r } }
        let fb = counts[0]
        let qRows = rows(0, of: rank)
        let partRows = parts.indices.map { rows($0 + 1, of: rank) }
        for (m, mine) in zip([batch.questions] + parts, [qRows] + partRows) where m.rows != mine.count {
            throw WorkerError.malformedBatch(pipeline: batch.pipeline.rawValue,
                reason: "rank \(rank) of \(world) got \(m.rows) rows of a tensor where it owns \(mine.count) of \(counts)")
        }
        let qBatch = try Self.tokenBatch(batch.questions)
        let ctxBatch = try TokenBatch.concatenate(parts.map { try Self.tokenBatch($0) })
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
        // The communicator enforces global_loss_buf_sz on the payload, with the same error on every rank.
        let payload = qEmb + cEmb
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
        let loss = try PipelineLoss.forwardBackward(batch, rows: fb, dim: dim, similarity: settings.similarity, scoreScale: settings.scoreScale, q: globalQ,
                                                    parts: globalParts, dQ: &dQ, dParts: &dParts, gradScale: gradScale)
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
}
