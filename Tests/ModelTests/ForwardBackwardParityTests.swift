import Foundation
import Model
import TestSupport
import XCTest

/// tiny-bert forward and backward against PyTorch (fixtures/model_forward_backward.safetensors),
/// with the weights read from model.safetensors and from pytorch_model.bin.
final class ForwardBackwardParityTests: XCTestCase {
    func batch(_ f: SafeTensorsFile) throws -> TokenBatch {
        let ids = try f.ints("input_ids"), mask = try f.ints("attention_mask")
        let shape = f.tensors["input_ids"]!.shape
        return try TokenBatch(inputIds: ids.map(Int32.init), attentionMask: mask.map(Int32.init), rows: shape[0], seqLen: shape[1])
    }

    /// Packed (the default) compares the hidden states at the real tokens (nothing is computed at the
    /// padding); padded (`packsSequences` false) compares every position, padding included. The
    /// hidden states come from a forward over every row of the last layer; the pooled output and the
    /// gradients from the training forward and backward (`pruned`: the last layer's [CLS] rows only,
    /// PooledLastLayer, the default with cls pooling).
    func check(weights: String, packed: Bool, pruned: Bool = true) throws {
        let dir = Fixtures.url("tiny-bert")
        let encoder = try BertEncoder.load(directory: dir, weights: dir.appendingPathComponent(weights))
        encoder.packsSequences = packed
        let label = "\(weights), \(packed ? "packed" : "padded")\(pruned ? ", last layer [CLS] rows only" : "")"
        let f = try SafeTensorsFile(url: Fixtures.url("model_forward_backward.safetensors"))
        let b = try batch(f)
        XCTAssertTrue(b.attentionMask.contains(0), "the fixture batch should have padding")
        encoder.prunesLastLayer = false
        let everyRow = try encoder.forward(b)
        var hidden = try encoder.lastHiddenState()
        encoder.prunesLastLayer = pruned
        let pooled = try encoder.forward(b)
        if pruned {
            XCTAssertThrowsError(try encoder.lastHiddenState(), "a pruned forward has no hidden state at the other rows")
            let d = deviation(pooled, everyRow)
            XCTAssertLessThan(d.maxAbs, 1e-6, "pruned vs every row (\(label)): \(d)")
        }

        var expectedHidden = try f.floats("last_hidden_state")
        if packed {
            let H = encoder.config.hiddenSize
            let real = (0..<(b.rows * b.seqLen)).filter { b.attentionMask[$0] != 0 }
            hidden = real.flatMap { hidden[($0 * H)..<(($0 + 1) * H)] }
            expectedHidden = real.flatMap { expectedHidden[($0 * H)..<(($0 + 1) * H)] }
        }
        let dh = deviation(hidden, expectedHidden)
        XCTAssertLessThan(dh.maxAbs, 2e-5, "last_hidden_state (\(label)): \(dh)")
        let dp = deviation(pooled, try f.floats("pooled"))
        XCTAssertLessThan(dp.maxAbs, 2e-5, "pooled (\(label)): \(dp)")

        let R = try f.floats("R")
        let objective = zip(pooled, R).reduce(Float(0)) { $0 + $1.0 * $1.1 }
        XCTAssertEqual(objective, try f.floats("objective")[0], accuracy: 1e-3)

        encoder.gradients.zero()
        try encoder.backward(R)
        var checked = 0
        for slot in encoder.layout.slots {
            let expected = try f.floats("grad." + slot.name)
            let actual = Array(encoder.gradients.buffer[slot.range])
            let d = deviation(actual, expected)
            if slot.name.contains("attention.self.key.bias") {
                // Mathematically zero (softmax ignores a shift of every key): PyTorch's value is noise.
                XCTAssertLessThan(d.maxAbs, 1e-5, "grad.\(slot.name) (\(label)): \(d)")
            } else {
                XCTAssertLessThan(d.maxAbs, 1e-4 * max(d.scale, 1e-3), "grad.\(slot.name) (\(label)): \(d)")
            }
            checked += 1
        }
        XCTAssertEqual(checked, 5 + 16 * 2)
    }

    func testParityFromSafetensors() throws { try check(weights: "model.safetensors", packed: true) }
    func testParityFromPytorchBin() throws { try check(weights: "pytorch_model.bin", packed: true) }
    func testPaddedParityFromSafetensors() throws { try check(weights: "model.safetensors", packed: false) }
    func testEveryRowParityFromSafetensors() throws { try check(weights: "model.safetensors", packed: true, pruned: false) }

    func testBothWeightFormatsAreIdentical() throws {
        let dir = Fixtures.url("tiny-bert")
        let a = try BertEncoder.load(directory: dir, weights: dir.appendingPathComponent("model.safetensors"))
        let b = try BertEncoder.load(directory: dir, weights: dir.appendingPathComponent("pytorch_model.bin"))
        XCTAssertEqual(a.parameters.toArray(), b.parameters.toArray())
    }
}
