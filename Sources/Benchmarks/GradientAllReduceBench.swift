import Collectives
import Foundation
import Model
import Worker

/// `srdpr bench gradient-allreduce`: one rank of the all-reduce of a bi-encoder's real gradient
/// buckets (the trainer's ``GradientPlan``: one bucket per layer, top layer first, question
/// encoder then context encoder, the word-embedding tables reduced as their touched rows only),
/// for the scaling model (cluster/scaling/run.sh starts one rank per network-namespace host).
///
/// Three measurements, each the median over `iterations` of the slowest rank's time:
/// - `allgather_s`: the all-gather of the batch's embeddings that precedes the loss (each rank's
///   share of the global batch's question and context rows, `hidden` floats each, under the
///   trainer's `global_loss_buf_sz` limit), which nothing overlaps;
/// - `allreduce_s`: all buckets reduced back to back, nothing else running (the communication
///   time of one update), with the CPU seconds all ranks spent on it (`allreduce_cpu_s`);
/// - `exposed_s`: the same buckets reduced by ``BucketedAllReduce`` while an emulated backward
///   marks them ready as the real one does (question encoder first, each encoder's top layer
///   first), each part after a wait proportional to its cost (parameters x tokens of its side);
///   the time from the end of that backward to the end of the last reduction is what a training
///   step waits for. Backward is emulated by waiting, not computing: the cores stay free for the
///   ring, as on separate machines, where the network rather than these 2 cores is the limit.
public enum GradientAllReduceBench {
    public struct Settings: Sendable {
        public var config = BertConfig(hiddenSize: 384, numLayers: 6, numHeads: 12, intermediateSize: 1536)
        public var wire: AllReduceWireType = .fp32
        /// Rows of each word-embedding table a global batch touches (distinct token ids).
        public var touchedRowsQuestion = 64
        public var touchedRowsContext = 1024
        /// This rank's backward time (the single-machine backward divided by the world size).
        public var backwardSeconds = 0.0
        /// Tokens of each side in the global batch (weights of the emulated backward).
        public var questionTokens = 256
        public var contextTokens = 4096
        /// Rows of the global batch whose embeddings are all-gathered (the seed's: 8 questions, 16 passages).
        public var questionRows = 8
        public var contextRows = 16
        public var iterations = 3
        public var warmup = 1
        public var communicator = ZMQCommunicator.Options()

        public init() {}
    }

    /// One rank; rank 0 returns the result, the others nil.
    public static func runRank(_ rank: Int, addresses: [String], bindAddress: String?, settings s: Settings,
                               log: (String) -> Void) throws -> [String: Any]? {
        var layout = ParameterLayout()
        let question = BertLayout(config: s.config, prefix: "question_model.", into: &layout)
        let context = BertLayout(config: s.config, prefix: "ctx_model.", into: &layout)
        guard let plan = GradientPlan(question: question, context: context, totalCount: layout.totalCount,
                                      hiddenSize: s.config.hiddenSize) else {
            throw AllReduceBench.BenchError.child(rank: rank, status: 1, output: "no gradient plan for this layout")
        }
        let comm = try ZMQCommunicator(rank: rank, worldSize: addresses.count, addresses: addresses,
                                       jobID: "bench-gradient-allreduce", bindAddress: bindAddress, options: s.communicator)
        let n = comm.worldSize
        let gradients = UnsafeMutableBufferPointer<Float>.allocate(capacity: layout.totalCount)
        defer { gradients.deallocate() }
        gradients.initialize(repeating: 0)
        // Dense parts: any nonzero values (the time does not depend on them). Word embeddings: the
        // touched rows, dealt out over the ranks, so their union is the global batch's.
        let h = s.config.hiddenSize
        for (encoder, touched) in [(question, s.touchedRowsQuestion), (context, s.touchedRowsContext)] {
            let words = encoder.wordEmbeddingRange
            for i in encoder.range where !words.contains(i) { gradients[i] = Float(rank + 1) * 1e-3 }
            for row in 0..<min(touched, s.config.vocabSize) where row % n == rank {
                for c in 0..<h { gradients[words.lowerBound + row * h + c] = 1e-3 }
            }
        }
        // Bytes one all-reduce of every bucket moves into the ring (dense parts + touched rows + row flags).
        let denseCount = plan.buckets.filter { $0.sparseRowWidth == nil }.reduce(0) { $0 + $1.range.count }
        let sparseCount = (s.touchedRowsQuestion + s.touchedRowsContext) * h
        let flagCount = 2 * s.config.vocabSize
        let payloadBytes = (denseCount + sparseCount) * s.wire.bytesPerElement + flagCount * 4

        // The all-gather's payload: this rank's share of the batch's rows (dealt out round-robin), one
        // embedding of `hidden` floats each, as TrainingWorker sends it.
        let ownedRows = [s.questionRows, s.contextRows].map { rows in (0..<rows).filter { $0 % n == rank }.count }.reduce(0, +)
        let embeddings = [UInt8](repeating: 1, count: ownedRows * h * 4)
        let gatherTotalBytes = (s.questionRows + s.contextRows) * h * 4
        let gatherLargestRankBytes = ((s.questionRows + n - 1) / n + (s.contextRows + n - 1) / n) * h * 4

        // The emulated backward: (side, part, seconds) in the order backward finishes the parts.
        var schedule: [(BiEncoder.Side, Int, Double)] = []
        var totalCost = 0.0
        for (side, encoder, tokens) in [(BiEncoder.Side.question, question, s.questionTokens), (.context, context, s.contextTokens)] {
            let words = encoder.wordEmbeddingRange
            for (part, range) in encoder.backwardOrder.enumerated() {
                let dense = range.count - (range.contains(words.lowerBound) ? words.count : 0)
                let cost = Double(dense) * Double(tokens)
                schedule.append((side, part, cost))
                totalCost += cost
            }
        }
        schedule = schedule.map { ($0.0, $0.1, totalCost > 0 ? $0.2 / totalCost * s.backwardSeconds : 0) }

        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        func slowest(_ seconds: Double) throws -> Double { try AllReduceBench.slowestRank(seconds, comm) }
        let reducer = BucketedAllReduce(communicator: comm)
        var allReduceTimes: [Double] = [], exposedTimes: [Double] = [], stepTimes: [Double] = []
        var gatherTimes: [Double] = [], allReduceCPUTimes: [Double] = []
        let loadBefore = AllReduceBench.loadAverage()
        var step = 0
        for iteration in 0..<(s.warmup + s.iterations) {
            // The embeddings' all-gather (the trainer's, with its global_loss_buf_sz check).
            comm.step = step; step += 1
            try comm.barrier()
            var start = now()
            _ = try comm.allGather(embeddings)
            let gather = try slowest(now() - start)
            // Back to back, nothing else running.
            comm.step = step; step += 1
            try comm.barrier()
            let cpuStart = Self.processCPUSeconds()
            start = now()
            try reducer.start(gradients, buckets: plan.buckets, op: .mean, wire: s.wire)
            try reducer.wait()
            let allReduce = try slowest(now() - start)
            let allReduceCPU = try Self.sumOverRanks(Self.processCPUSeconds() - cpuStart, comm)
            // Overlapped with the emulated backward.
            comm.step = step; step += 1
            try comm.barrier()
            start = now()
            try reducer.start(gradients, buckets: plan.buckets, op: .mean, wire: s.wire)
            var due = start
            for (side, part, seconds) in schedule {
                due += seconds
                let wait = due - now()
                if wait > 0 { usleep(UInt32(wait * 1e6)) }
                for bucket in plan.buckets(side, part: part) { try reducer.markReady(bucket) }
            }
            let backwardEnd = now()
            try reducer.wait()
            let end = now()
            let exposed = try slowest(end - backwardEnd), total = try slowest(end - start)
            if iteration >= s.warmup {
                allReduceTimes.append(allReduce); exposedTimes.append(exposed); stepTimes.append(total)
                gatherTimes.append(gather); allReduceCPUTimes.append(allReduceCPU)
            }
            if rank == 0 {
                log(String(format: "[gradient-allreduce] world %d %@ iteration %d: all-gather %.4f s, all-reduce %.3f s (%.2f CPU s), backward %.3f s + exposed %.3f s",
                           n, s.wire.rawValue, iteration, gather, allReduce, allReduceCPU, s.backwardSeconds, exposed))
            }
        }
        try comm.barrier()
        guard rank == 0 else { return nil }
        let median = AllReduceBench.median
        func round6(_ x: Double) -> Double { (x * 1e6).rounded() / 1e6 }
        return ["bench": "srdpr_gradient_allreduce", "world": n, "wire": s.wire.rawValue,
                "hidden": h, "layers": s.config.numLayers, "intermediate": s.config.intermediateSize,
                "parameters_both_encoders": layout.totalCount, "parameters_per_encoder": question.range.count,
                "buckets": plan.buckets.count, "dense_floats": denseCount, "touched_rows": [s.touchedRowsQuestion, s.touchedRowsContext],
                "payload_bytes": payloadBytes, "backward_s": s.backwardSeconds, "iters": s.iterations,
                "allreduce_s": round6(median(allReduceTimes)), "exposed_s": round6(median(exposedTimes)),
                "backward_plus_exposed_s": round6(median(stepTimes)),
                "allreduce_times_s": allReduceTimes.map(round6), "exposed_times_s": exposedTimes.map(round6),
                "allreduce_cpu_s": round6(median(allReduceCPUTimes)), "allreduce_cpu_times_s": allReduceCPUTimes.map(round6),
                "allgather_s": round6(median(gatherTimes)), "allgather_times_s": gatherTimes.map(round6),
                "allgather_rows": [s.questionRows, s.contextRows], "allgather_bytes": gatherTotalBytes,
                "allgather_largest_rank_bytes": gatherLargestRankBytes, "global_loss_buf_sz": comm.globalLossBufferSize ?? -1,
                "loadavg_before": loadBefore, "loadavg": AllReduceBench.loadAverage()]
    }

    /// User + system CPU seconds of this process so far (every thread: the ring's and ZeroMQ's).
    static func processCPUSeconds() -> Double {
        let cpu = TrainStepBench.cpuSeconds()
        return cpu.user + cpu.system
    }

    /// The sum of every rank's `value` (on every rank).
    static func sumOverRanks(_ value: Double, _ comm: Communicator) throws -> Double {
        let all = try comm.allGather(withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) })
        return all.reduce(0) { sum, bytes in
            sum + Double(bitPattern: UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
        }
    }
}
