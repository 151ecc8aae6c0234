import Foundation
import Model
import TestSupport
import XCTest

/// Three full bi-encoder updates of the pos pipeline from tiny-bert (fixtures/train_steps):
/// encode → pos loss → backward (loss / loss_scale) → clip → AdamW with warmup/decay. Checks
/// each step's loss and pre-clip gradient norm and every final weight of both encoders, starting
/// from model.safetensors and from pytorch_model.bin.
final class TrainStepsParityTests: XCTestCase {
    func batch(_ f: SafeTensorsFile, _ prefix: String) throws -> TokenBatch {
        let ids = try f.ints(prefix + "/input_ids"), mask = try f.ints(prefix + "/attn_mask")
        let shape = f.tensors[prefix + "/input_ids"]!.shape
        return try TokenBatch(inputIds: ids.map(Int32.init), attentionMask: mask.map(Int32.init), rows: shape[0], seqLen: shape[1])
    }

    func run(weights: String, chunkSize: Int?) throws {
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: Fixtures.url("train_steps.json"))) as! [String: Any]
        let lr = config["learning_rate"] as! Double, lossScale = Float(config["loss_scale"] as! Double)
        let maxNorm = Float(config["max_grad_norm"] as! Double)
        let f = try SafeTensorsFile(url: Fixtures.url("train_steps.safetensors"))

        // Both encoders from tiny-bert, in the weight format under test.
        let tmp = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        for name in ["config.json", weights] {
            try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/\(name)"), to: tmp.appendingPathComponent(name))
        }
        let model = try BiEncoder.load(directory: tmp)
        model.setDropout(Float(config["dropout"] as! Double))
        let groups = ParameterGroup.standardGroups(layout: model.layout, weightDecay: config["weight_decay"] as! Double)
        let betas = config["adam_betas"] as! [Double]
        let optimizer = AdamW(parameterCount: model.layout.totalCount, groups: groups, betas: (betas[0], betas[1]),
                              eps: config["adam_eps"] as! Double)
        let schedule = LinearWarmupSchedule(baseLearningRate: lr, warmupSteps: config["warmup_steps"] as! Int,
                                            totalUpdates: config["total_updates"] as! Int)
        let dim = model.config.hiddenSize
        for step in 0..<3 {
            let q = try batch(f, "step\(step).question")
            let pos = try batch(f, "step\(step).positive_context"), neg = try batch(f, "step\(step).negative_context")
            let ctx = try TokenBatch.concatenate([pos, neg])
            let mask = try f.ints("step\(step).duplicate_mask")
            model.zeroGradients()
            let qe = try model.encode(.question, q, step: step, chunkSize: chunkSize)
            let ce = try model.encode(.context, ctx, step: step, chunkSize: chunkSize)
            var dq = [Float](repeating: 0, count: qe.count), dc = [Float](repeating: 0, count: ce.count)
            let split = pos.rows * dim
            let loss: Float = try qe.withUnsafeBufferPointer { Q in
                try ce.withUnsafeBufferPointer { C in
                    try dq.withUnsafeMutableBufferPointer { DQ in
                        try dc.withUnsafeMutableBufferPointer { DC in
                            try PositiveLoss.forwardBackward(
                                q: Q, p: UnsafeBufferPointer(rebasing: C[0..<split]), n: UnsafeBufferPointer(rebasing: C[split...]),
                                rows: q.rows, negatives: neg.rows, dim: dim, duplicateMask: mask, similarity: .dotProduct,
                                gradScale: 1 / lossScale,
                                gradients: .init(q: DQ, p: UnsafeMutableBufferPointer(rebasing: DC[0..<split]),
                                                 n: UnsafeMutableBufferPointer(rebasing: DC[split...])))
                        }
                    }
                }
            }
            try model.backward(.question, q, dEmbeddings: dq, step: step, chunkSize: chunkSize)
            try model.backward(.context, ctx, dEmbeddings: dc, step: step, chunkSize: chunkSize)
            let norm = GradClip.clip(model.gradients.buffer, maxNorm: maxNorm)
            XCTAssertEqual(loss, try f.floats("step\(step).loss")[0], accuracy: 2e-5, "loss of step \(step) (\(weights))")
            let expectedNorm = try f.floats("step\(step).grad_norm_before_clip")[0]
            XCTAssertEqual(norm, expectedNorm, accuracy: 1e-4 * max(1, expectedNorm), "grad norm of step \(step) (\(weights))")
            optimizer.update(parameters: model.parameters.buffer, gradients: UnsafeBufferPointer(model.gradients.buffer),
                             learningRate: schedule.learningRate(atStep: step))
        }
        let last = model.config.numLayers - 1
        var checked = 0
        for slot in model.layout.slots {
            let expected = try f.floats("final." + slot.name)
            let d = deviation(Array(model.parameters.buffer[slot.range]), expected)
            // Mathematically zero gradients (fixtures README): AdamW turns their noise into ±lr steps.
            let noisy = slot.name.contains("attention.self.key.bias") || slot.name == "ctx_model.encoder.layer.\(last).output.LayerNorm.bias"
            XCTAssertLessThan(d.maxAbs, noisy ? 3e-3 : 2e-5, "final \(slot.name) (\(weights)): \(d)")
            checked += 1
        }
        XCTAssertEqual(checked, 2 * 37)
    }

    func testFromSafetensors() throws { try run(weights: "model.safetensors", chunkSize: nil) }
    func testFromPytorchBin() throws { try run(weights: "pytorch_model.bin", chunkSize: nil) }
    func testWithGradCache() throws { try run(weights: "model.safetensors", chunkSize: 2) }
}
