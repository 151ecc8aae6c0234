import Collectives
import Data
import Foundation
import Model
import TestSupport
import Worker
import XCTest

/// The Worker's update against PyTorch (fixtures/train_steps: three pos updates of tiny-bert),
/// gradient accumulation, and the same update from two ranks as from one.
final class TrainingStepTests: XCTestCase {
    struct Fixture {
        let config: [String: Any]
        let file: SafeTensorsFile
    }

    func fixture() throws -> Fixture {
        Fixture(config: try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("train_steps.json"))) as? [String: Any]),
                file: try SafeTensorsFile(url: Fixtures.url("train_steps.safetensors")))
    }

    func matrix(_ f: SafeTensorsFile, _ prefix: String) throws -> TokenMatrix {
        let shape = try f.info(prefix + "/input_ids").shape
        return TokenMatrix(rows: shape[0], columns: shape[1], ids: try f.ints(prefix + "/input_ids").map(Int32.init),
                           mask: try f.ints(prefix + "/attn_mask").map(Int32.init))
    }

    /// The pos batch of fixture step `step`.
    func batch(_ f: SafeTensorsFile, step: Int) throws -> Batch {
        var b = Batch(pipeline: .pos, questions: try matrix(f, "step\(step).question"), sampleIDs: [])
        b.positiveContexts = try matrix(f, "step\(step).positive_context")
        b.negativeContexts = try matrix(f, "step\(step).negative_context")
        b.duplicateMask = try f.ints("step\(step).duplicate_mask").map(Int32.init)
        return b
    }

    func worker(_ fx: Fixture, communicator: Communicator = InProcessCommunicator(), chunk: Int? = nil, threads: Int = 1) throws -> TrainingWorker {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"))
        model.setDropout(Float(fx.config["dropout"] as! Double))
        model.threads = threads
        let betas = fx.config["adam_betas"] as! [Double]
        let optimizer = AdamW(parameterCount: model.layout.totalCount,
                              groups: ParameterGroup.standardGroups(layout: model.layout, weightDecay: fx.config["weight_decay"] as! Double),
                              betas: (betas[0], betas[1]), eps: fx.config["adam_eps"] as! Double)
        let schedule = LinearWarmupSchedule(baseLearningRate: fx.config["learning_rate"] as! Double,
                                            warmupSteps: fx.config["warmup_steps"] as! Int, totalUpdates: fx.config["total_updates"] as! Int)
        return TrainingWorker(model: model, optimizer: optimizer, schedule: schedule, communicator: communicator,
                              settings: StepSettings(similarity: .dotProduct, lossScale: Float(fx.config["loss_scale"] as! Double),
                                                     maxGradNorm: Float(fx.config["max_grad_norm"] as! Double),
                                                     questionChunkSize: chunk, contextChunkSize: chunk))
    }

    /// Parameters whose gradient is mathematically zero (SPEC §6): AdamW turns their rounding noise into ±lr steps.
    func isNoisy(_ name: String, layers: Int) -> Bool {
        name.contains("attention.self.key.bias") || name == "ctx_model.encoder.layer.\(layers - 1).output.LayerNorm.bias"
    }

    func checkAgainstPyTorch(chunk: Int?, threads: Int = 1) throws {
        let fx = try fixture()
        BLASThreads.set(threads)
        defer { BLASThreads.set(1) }
        let w = try worker(fx, chunk: chunk, threads: threads)
        for step in 0..<3 {
            let result = try w.step(step, batches: [try batch(fx.file, step: step)])
            XCTAssertEqual(result.loss, try fx.file.floats("step\(step).loss")[0], accuracy: 2e-5, "loss of step \(step)")
            let norm = try fx.file.floats("step\(step).grad_norm_before_clip")[0]
            XCTAssertEqual(result.gradientNorm, norm, accuracy: 1e-4 * max(1, norm), "gradient norm of step \(step)")
            XCTAssertGreaterThan(result.tokens, 0)
        }
        var checked = 0
        for slot in w.model.layout.slots {
            let d = deviation(Array(w.model.parameters.buffer[slot.range]), try fx.file.floats("final." + slot.name))
            XCTAssertLessThan(d.maxAbs, isNoisy(slot.name, layers: w.model.config.numLayers) ? 3e-3 : 2e-5, "final \(slot.name): \(d)")
            checked += 1
        }
        XCTAssertEqual(checked, w.model.layout.slots.count)
    }

    func testThreeUpdatesMatchPyTorch() throws { try checkAgainstPyTorch(chunk: nil) }
    func testThreeUpdatesMatchPyTorchWithGradCache() throws { try checkAgainstPyTorch(chunk: 2) }
    /// Two threads: each side's rows in two groups, one thread and encoder replica each (RowParallelTraining).
    func testThreeUpdatesMatchPyTorchOnTwoThreads() throws { try checkAgainstPyTorch(chunk: nil, threads: 2) }
    func testThreeUpdatesMatchPyTorchOnTwoThreadsWithGradCache() throws { try checkAgainstPyTorch(chunk: 2, threads: 2) }

    /// global_loss_buf_sz is enforced by the communicator, in one process as on several (the ring's
    /// case, the same error on every rank, is in ZMQCollectivesTests): the step fails before any update.
    func testAllGatherBoundIsEnforcedInOneProcess() throws {
        let fx = try fixture()
        let w = try worker(fx, communicator: InProcessCommunicator(globalLossBufferSize: 64))
        let before = w.model.parameters.toArray()
        XCTAssertThrowsError(try w.step(0, batches: [try batch(fx.file, step: 0)])) { error in
            XCTAssertTrue("\(error)".contains("over global_loss_buf_sz=64"), "\(error)")
        }
        XCTAssertEqual(w.model.parameters.toArray(), before)
    }

    /// gradient_accumulate_steps=2 over the same batch twice is one update with that batch's
    /// gradient (each backward is scaled by 1/2; dropout 0 makes both passes equal).
    func testGradientAccumulationAveragesTheBatches() throws {
        let fx = try fixture()
        let b = try batch(fx.file, step: 0)
        let once = try worker(fx), twice = try worker(fx)
        let r1 = try once.step(0, batches: [b])
        let r2 = try twice.step(0, batches: [b, b])
        XCTAssertEqual(r1.loss, r2.loss, accuracy: 1e-6)
        XCTAssertEqual(r1.gradientNorm, r2.gradientNorm, accuracy: 1e-5 * r1.gradientNorm)
        let d = deviation(twice.model.parameters.toArray(), once.model.parameters.toArray())
        XCTAssertLessThan(d.maxAbs, 1e-6, "\(d)")
        XCTAssertEqual(r2.tokens, 2 * r1.tokens)
    }

    /// Two ranks, each encoding half of every tensor, all-gathering the embeddings and averaging
    /// the gradients, make the same updates as one rank with the whole batch (SPEC §6).
    func testTwoRanksMatchOneRank() throws {
        let fx = try fixture()
        BLASThreads.set(1)
        let single = try worker(fx)
        let group = ThreadGroup(size: 2)
        let ranks = try (0..<2).map { try worker(fx, communicator: group.member($0)) }
        let batches = try (0..<3).map { try batch(fx.file, step: $0) }
        var singleLosses: [Float] = []
        for (s, b) in batches.enumerated() { singleLosses.append(try single.step(s, batches: [b]).loss) }
        final class Outcome { var losses: [Float] = []; var failure = "" }
        let outcomes = [Outcome(), Outcome()]
        let done = DispatchGroup()
        for r in 0..<2 {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                do { for (s, b) in batches.enumerated() { outcomes[r].losses.append(try ranks[r].step(s, batches: [b]).loss) } } catch {
                    outcomes[r].failure = "\(error)"
                }
            }
        }
        done.wait()
        XCTAssertEqual(outcomes.map(\.failure), ["", ""])
        for r in 0..<2 {
            for (a, b) in zip(outcomes[r].losses, singleLosses) { XCTAssertEqual(a, b, accuracy: 1e-5) }
            XCTAssertEqual(outcomes[r].losses.count, 3)
        }
        XCTAssertEqual(ranks[0].model.parameters.toArray(), ranks[1].model.parameters.toArray(), "ranks must stay identical")
        for slot in single.model.layout.slots {
            let d = deviation(Array(ranks[0].model.parameters.buffer[slot.range]), Array(single.model.parameters.buffer[slot.range]))
            XCTAssertLessThan(d.maxAbs, isNoisy(slot.name, layers: single.model.config.numLayers) ? 3e-3 : 2e-5, "\(slot.name): \(d)")
        }
    }
}

/// In-process ranks on threads, for tests: every collective waits for all members, then combines.
final class ThreadGroup {
    let size: Int
    private let condition = NSCondition()
    private var arrived = 0
    private var generation = 0
    private var slots: [[UInt8]]
    private var floatSlots: [[Float]]
    private var result: [[UInt8]] = []
    private var floatResult: [Float] = []

    init(size: Int) {
        self.size = size
        slots = Array(repeating: [], count: size)
        floatSlots = Array(repeating: [], count: size)
    }

    func member(_ rank: Int) -> Communicator { Member(group: self, rank: rank) }

    /// Deposits this rank's contribution; the last to arrive runs `combine`; everyone returns after it.
    private func exchange(rank: Int, deposit: () -> Void, combine: () -> Void) {
        condition.lock()
        let myGeneration = generation
        deposit()
        arrived += 1
        if arrived == size {
            combine()
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == myGeneration { condition.wait() }
        }
        condition.unlock()
    }

    func allGather(rank: Int, _ payload: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        exchange(rank: rank, deposit: { slots[rank] = payload }, combine: { result = slots })
        condition.lock(); out = result; condition.unlock()
        // Wait until everyone has read before the next exchange can overwrite `result`.
        exchange(rank: rank, deposit: {}, combine: {})
        return out
    }

    func allReduceMean(rank: Int, _ buffer: UnsafeMutableBufferPointer<Float>) {
        exchange(rank: rank, deposit: { floatSlots[rank] = Array(buffer) }, combine: {
            var sum = [Float](repeating: 0, count: floatSlots[0].count)
            for s in floatSlots { for i in sum.indices { sum[i] += s[i] } }
            floatResult = sum.map { $0 / Float(size) }
        })
        condition.lock(); for i in 0..<buffer.count { buffer[i] = floatResult[i] }; condition.unlock()
        exchange(rank: rank, deposit: {}, combine: {})
    }

    final class Member: Communicator {
        let group: ThreadGroup
        let rank: Int
        init(group: ThreadGroup, rank: Int) { self.group = group; self.rank = rank }
        var worldSize: Int { group.size }
        var step = 0
        func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp) throws {
            group.allReduceMean(rank: rank, buffer)
            if op == .sum { for i in 0..<buffer.count { buffer[i] *= Float(group.size) } }
        }
        /// bf16: every contribution rounded as the ring sends it, the result rounded as its owner does.
        func allReduce(_ buffer: UnsafeMutableBufferPointer<Float>, op: ReduceOp, wire: AllReduceWireType) throws {
            if wire == .bf16 { for i in 0..<buffer.count { buffer[i] = BFloat16.rounded(buffer[i]) } }
            try allReduce(buffer, op: op)
            if wire == .bf16 { for i in 0..<buffer.count { buffer[i] = BFloat16.rounded(buffer[i]) } }
        }
        func allGather(_ payload: [UInt8]) throws -> [[UInt8]] { group.allGather(rank: rank, payload) }
        func broadcast(_ payload: [UInt8], root: Int) throws -> [UInt8] { try allGather(payload)[root] }
        func barrier() throws { _ = try allGather([]) }
    }
}
