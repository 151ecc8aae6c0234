import Data
import Foundation
import Model

/// `srdpr bench train-step`: one full bi-encoder training step of the pos loss at the shapes of
/// ../shared/bench/torch_train_anchor.py — both encoders forward and backward with dropout 0.1,
/// loss over [q·p_i, q·n_1..n_C], global-norm clipping (2.0) and AdamW (lr 2e-5, no decay) —
/// with the anchor's FLOP model, so the two JSON lines compare directly. With `minQLen` / `minCtxLen`
/// below the lengths, each sequence draws its length uniformly in [min, length] and a batch is padded
/// to its longest, as real batches are: `real_tokens_per_s` counts the unpadded tokens, and `padded`
/// runs the layers over the padding too (the computation before packing) for a same-binary comparison.
public enum TrainStepBench {
    public struct Options {
        public var modelDirectory: String?
        /// hidden, layers, heads, intermediate.
        public var randomConfig: [Int]?
        public var batch = 8, contrastive = 8, qLen = 32, ctxLen = 256, threads = 2, steps = 5, warmupSteps = 1
        /// Shortest question and context lengths (nil = every sequence at qLen / ctxLen).
        public var minQLen: Int?, minCtxLen: Int?
        /// Run the encoders over the padding too (BertEncoder.packsSequences false).
        public var padded = false
        /// Every thread on the whole batch (BiEncoder.splitsRows false): the step before RowParallelTraining.
        public var wholeBatch = false
        /// Run every row of the last layer (BertEncoder.prunesLastLayer false).
        public var fullLastLayer = false
        public var seed: UInt64 = 12345
        public init() {}
    }

    /// A randomly initialised BERT like transformers' (weights N(0, 0.02), LayerNorm 1/0, biases 0).
    static func randomModel(_ c: BertConfig, seed: UInt64) -> BiEncoder {
        let model = BiEncoder(config: c, seed: seed)
        BertInitialisation.initialise(model.layout.slots, parameters: model.parameters.pointer, std: 0.02, seed: seed)
        return model
    }

    /// User and system CPU seconds of the process so far (all threads).
    static func cpuSeconds() -> (user: Double, system: Double) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return (Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6,
                Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6)
    }

    /// Minor page faults of the process so far (pages the kernel mapped in and zeroed on first touch).
    static func minorPageFaults() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_minflt
    }

    static func peakRSSMegabytes() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024  // kilobytes on Linux
    }

    public static func run(_ o: Options) throws -> [String: Any] {
        let loadStart = Date()
        let model: BiEncoder
        if let rc = o.randomConfig {
            guard rc.count == 4 else { throw ModelError.invalidInput("--random-config needs H,LAYERS,HEADS,INTER") }
            let c = BertConfig(vocabSize: 30522, hiddenSize: rc[0], numLayers: rc[1], numHeads: rc[2], intermediateSize: rc[3],
                               maxPositions: 512)
            try c.validate(file: "--random-config")
            model = randomModel(c, seed: o.seed)
        } else if let dir = o.modelDirectory {
            model = try BiEncoder.load(directory: URL(fileURLWithPath: dir), seed: o.seed, pooling: .cls)
        } else {
            throw ModelError.invalidInput("give --model DIR or --random-config H,LAYERS,HEADS,INTER")
        }
        let loadSeconds = Date().timeIntervalSince(loadStart)
        BLASThreads.set(o.threads)
        model.threads = o.threads
        model.splitsRows = !o.wholeBatch
        model.setDropout(0.1)
        model.question.packsSequences = !o.padded
        model.context.packsSequences = !o.padded
        model.question.prunesLastLayer = !o.fullLastLayer
        model.context.prunesLastLayer = !o.fullLastLayer
        let c = model.config, B = o.batch, C = o.contrastive, H = c.hiddenSize
        guard max(o.qLen, o.ctxLen) <= c.maxPositions else {
            throw ModelError.sequenceTooLong(length: max(o.qLen, o.ctxLen), maxPositions: c.maxPositions)
        }
        let allParams = ParameterGroup(ranges: [0..<model.layout.totalCount], weightDecay: 0)
        let optimizer = AdamW(parameterCount: model.layout.totalCount, groups: [allParams], betas: (0.9, 0.999), eps: 1e-8)

        var random = SplitMix64(seed: o.seed)
        func batch(rows: Int, length: Int, minLength: Int?) throws -> TokenBatch {
            guard let minLength, minLength < length else {
                var ids = [Int32](repeating: 0, count: rows * length)
                for i in ids.indices {
                    ids[i] = Int32(1000 + Int(random.next() % UInt64(c.vocabSize - 1000)))
                }
                return try TokenBatch(inputIds: ids, attentionMask: [Int32](repeating: 1, count: rows * length), rows: rows, seqLen: length)
            }
            let lengths = (0..<rows).map { _ in minLength + Int(random.next() % UInt64(length - minLength + 1)) }
            return try TokenBatch(sequences: lengths.map { n in
                (0..<n).map { _ in Int32(1000 + Int(random.next() % UInt64(c.vocabSize - 1000))) }
            })
        }
        var dq = [Float](repeating: 0, count: B * H), dc = [Float](repeating: 0, count: (B + C) * H)
        var lastBackward = 0.0  // both encoders' backward of the last step (what the gradient all-reduce can overlap)
        // The batches are drawn once: every step (and a --padded run) sees the same lengths.
        let stepBatches = try (0..<(o.warmupSteps + o.steps)).map { _ in
            (q: try batch(rows: B, length: o.qLen, minLength: o.minQLen),
             ctx: try batch(rows: B + C, length: o.ctxLen, minLength: o.minCtxLen))
        }
        func step(_ index: Int) throws -> (Float, Float) {
            let (q, ctx) = stepBatches[index]
            model.zeroWrittenGradients()
            let qe = try model.encode(.question, q, step: index)
            let ce = try model.encode(.context, ctx, step: index)
            let loss: Float = try qe.withUnsafeBufferPointer { Q in
                try ce.withUnsafeBufferPointer { CE in
                    try dq.withUnsafeMutableBufferPointer { DQ in
                        try dc.withUnsafeMutableBufferPointer { DC in
                            try PositiveLoss.forwardBackward(
                                q: Q, p: UnsafeBufferPointer(rebasing: CE[0..<(B * H)]),
                                n: UnsafeBufferPointer(rebasing: CE[(B * H)...]), rows: B, negatives: C, dim: H,
                                duplicateMask: nil, similarity: .dotProduct,
                                gradients: .init(q: DQ, p: UnsafeMutableBufferPointer(rebasing: DC[0..<(B * H)]),
                                                 n: UnsafeMutableBufferPointer(rebasing: DC[(B * H)...])))
                        }
                    }
                }
            }
            let backwardStart = Date()
            try model.backward(.question, q, dEmbeddings: dq, step: index)
            try model.backward(.context, ctx, dEmbeddings: dc, step: index)
            lastBackward = Date().timeIntervalSince(backwardStart)
            let norm = optimizer.clipAndUpdate(parameters: model.parameters.buffer, gradients: model.gradients.buffer,
                                               maxNorm: 2.0, learningRate: 2e-5, zeroGradients: model.unwrittenGradientRanges())
            return (loss, norm)
        }

        // FLOP model of the anchor: 6·(encoder parameters)·tokens + attention 12·L·H·Σ rows·T², over
        // the real tokens (each sequence at its own length): the work a padded run also does is not
        // counted twice. Fixed shapes: the anchor's numbers exactly.
        let encoderParams = model.question.layout.slots.filter { $0.name.hasPrefix("encoder.") }.reduce(0) { $0 + $1.count }
        func lengths(_ b: TokenBatch) -> [Int] {
            (0..<b.rows).map { r in b.attentionMask[(r * b.seqLen)..<((r + 1) * b.seqLen)].reduce(0) { $0 + Int($1) } }
        }
        let timed = stepBatches[o.warmupSteps...]
        let realLengths = timed.map { lengths($0.q) + lengths($0.ctx) }
        let realTokens = realLengths.map { $0.reduce(0, +) }
        let paddedTokens = timed.map { $0.q.rows * $0.q.seqLen + $0.ctx.rows * $0.ctx.seqLen }
        let flopsPerStep = realLengths.map { ls in
            Double(6 * encoderParams * ls.reduce(0, +) + 12 * c.numLayers * H * ls.reduce(0) { $0 + $1 * $1 })
        }
        let qTokens = B * o.qLen, cTokens = (B + C) * o.ctxLen
        let dense = 6 * encoderParams * qTokens + 6 * encoderParams * cTokens
        let attention = 12 * c.numLayers * H * (B * o.qLen * o.qLen + (B + C) * o.ctxLen * o.ctxLen)
        let mixed = (o.minQLen ?? o.qLen) < o.qLen || (o.minCtxLen ?? o.ctxLen) < o.ctxLen
        // What the encoders really execute (the FLOP model above counts the full model, as model-FLOPs
        // utilisation does): the packed rows (SequencePacking: the real tokens, nothing between sequences), or
        // the padded ones; and with [CLS] pooling a last layer that runs only keys and values over
        // every row and the rest over one row per sgemm row period per sequence (PooledLastLayer).
        let perLayerParams = encoderParams / c.numLayers, keyValueParams = 2 * (H * H + H)
        func executedFlops(_ b: TokenBatch, _ encoder: BertEncoder) -> Double {
            let period = SgemmRowTiling.period
            let attended = encoder.packsSequences ? lengths(b) : [Int](repeating: b.seqLen, count: b.rows)
            let rows = encoder.packsSequences ? attended.reduce(0, +) : b.rows * b.seqLen
            let squares = attended.reduce(0) { $0 + $1 * $1 }
            guard encoder.prunesLastLayer && encoder.pooling == .cls else {
                return Double(6 * encoderParams * rows + 12 * c.numLayers * H * squares)
            }
            let skippedRows = rows - b.rows * period
            return Double(6 * encoderParams * rows - 6 * (perLayerParams - keyValueParams) * skippedRows
                          + 12 * (c.numLayers - 1) * H * squares + 12 * H * attended.reduce(0, +))
        }
        let executedPerStep = timed.map { executedFlops($0.q, model.question) + executedFlops($0.ctx, model.context) }
        let executed = executedPerStep.reduce(0, +) / Double(max(executedPerStep.count, 1))
        let flops = mixed ? flopsPerStep.reduce(0, +) / Double(max(flopsPerStep.count, 1)) : Double(dense + attention)

        var loadBefore = [Double](repeating: 0, count: 3)
        _ = getloadavg(&loadBefore, 3)
        var times: [Double] = [], backwardTimes: [Double] = [], losses: [Float] = [], norms: [Float] = [], userCPU: [Double] = [], sysCPU: [Double] = []
        for i in 0..<(o.warmupSteps + o.steps) {
            let t = Date(), cpu0 = cpuSeconds()
            let (loss, norm) = try step(i)
            let dt = Date().timeIntervalSince(t), cpu1 = cpuSeconds()
            if i >= o.warmupSteps {
                userCPU.append(((cpu1.user - cpu0.user) * 1000).rounded() / 1000)
                sysCPU.append(((cpu1.system - cpu0.system) * 1000).rounded() / 1000)
            }
            FileHandle.standardError.write("[train-step] step \(i)\(i < o.warmupSteps ? " (warmup)" : "") \(String(format: "%.3f", dt))s loss=\(loss) gnorm=\(norm)\n".data(using: .utf8)!)
            losses.append(loss)
            norms.append(norm)
            if i >= o.warmupSteps { times.append(dt); backwardTimes.append(lastBackward) }
        }
        var loadAfter = [Double](repeating: 0, count: 3)
        _ = getloadavg(&loadAfter, 3)
        let sorted = times.sorted()
        let median = sorted.isEmpty ? 0 : (sorted.count % 2 == 1 ? sorted[sorted.count / 2]
                                           : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2)
        let tokens = qTokens + cTokens
        // Mixed lengths: tokens per second of the whole timed run (steps differ in length).
        let totalTime = times.reduce(0, +)
        let realPerSecond = totalTime > 0 ? Double(realTokens.reduce(0, +)) / totalTime : 0
        return [
            "bench": "srdpr_train_step", "ok": !times.isEmpty,
            "model": o.modelDirectory as Any, "random_config": o.randomConfig.map { $0.map(String.init).joined(separator: ",") } as Any,
            "hidden": H, "layers": c.numLayers, "heads": c.numHeads, "intermediate": c.intermediateSize,
            "threads": o.threads, "batch": B, "contrastive": C, "q_len": o.qLen, "ctx_len": o.ctxLen,
            "min_q_len": o.minQLen ?? o.qLen, "min_ctx_len": o.minCtxLen ?? o.ctxLen, "padded": o.padded, "whole_batch": o.wholeBatch,
            "real_tokens_per_step": realTokens, "padded_tokens_per_step": paddedTokens,
            "real_tokens_per_s": realPerSecond,
            "warmup_steps": o.warmupSteps, "steps": o.steps, "tokens_per_step": tokens,
            "non_embedding_params_q": encoderParams, "total_params_both": model.layout.totalCount,
            "flops_per_step": flops, "dense_flops_per_step": dense, "attn_flops_per_step": attention,
            "executed_flops_per_step": executed, "prunes_last_layer": model.question.prunesLastLayer,
            "step_times_s": times.map { ($0 * 10_000).rounded() / 10_000 },
            "backward_times_s": backwardTimes.map { ($0 * 10_000).rounded() / 10_000 },
            "step_user_cpu_s": userCPU, "step_sys_cpu_s": sysCPU,
            "losses": losses.map { Double($0) }, "grad_norms": norms.map { Double($0) },
            "seconds_per_step": median, "median_step_s": median,
            // Mixed lengths: the padded batches' tokens and the real FLOPs over the whole timed run.
            "tokens_per_s": mixed ? (totalTime > 0 ? Double(paddedTokens.reduce(0, +)) / totalTime : 0)
                : (median > 0 ? Double(tokens) / median : 0),
            "executed_gflops": mixed ? (totalTime > 0 ? executedPerStep.reduce(0, +) / totalTime / 1e9 : 0)
                : (median > 0 ? executed / median / 1e9 : 0),
            "gflops": mixed ? (totalTime > 0 ? flopsPerStep.reduce(0, +) / totalTime / 1e9 : 0) : (median > 0 ? flops / median / 1e9 : 0),
            "peak_rss_mb": peakRSSMegabytes(), "load_s": loadSeconds, "openblas_core": BLASKernels.coreName, "openblas_chosen_by": BLASCoreChoice.chosenBy,
            "loadavg_before": loadBefore, "loadavg_after": loadAfter,
        ]
    }
}
