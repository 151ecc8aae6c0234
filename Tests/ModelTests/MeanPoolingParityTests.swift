import Data
import Foundation
import Model
import TestSupport
import XCTest

/// `pooling=mean` and `sim_scale` against PyTorch: a fixture recorded when the tests start by
/// scripts/make-fixture-mean-pooling.py (transformers' BertModel, sentence-transformers' own
/// Pooling module, the three losses with scaled scores) into a temporary directory.
/// - the three losses × dot/cosine × sim_scale 20 and 0.5: loss and input gradients (as LossTests);
/// - tiny-bert bi-encoders with mean pooling (cosine + pos loss + sim_scale 20; a projection head
///   + dot + poshard loss + sim_scale 0.5): embeddings, loss and every parameter gradient of both
///   encoders (as ForwardBackwardParityTests), without and with grad cache.
/// The script needs the test venv (torch, transformers, sentence-transformers: scripts/setup.sh
/// --test); without it these tests FAIL, they do not skip.
final class MeanPoolingParityTests: XCTestCase {
    /// Recorded once per test process.
    nonisolated(unsafe) static var recorded: Result<SafeTensorsFile, Error>?

    static func python() -> String {
        if let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] { return python }
        let venv = Fixtures.packageRoot.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: venv) ? venv : "/usr/bin/python3"
    }

    static func record() throws -> SafeTensorsFile {
        let dir = try Fixtures.temporaryDirectory("srdpr-mean-pooling-fixture")
        // The file is read (or mapped) before the directory goes: nothing is left behind.
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("mean_pooling.safetensors")
        let script = Fixtures.packageRoot.appendingPathComponent("scripts/make-fixture-mean-pooling.py")
        let r = try Command.run(URL(fileURLWithPath: python()), [script.path, Fixtures.root.path, out.path])
        guard r.status == 0 else {
            throw ModelError.invalidInput("\(script.lastPathComponent) failed with \(python()) (status \(r.status); "
                + "run scripts/setup.sh --test and set SRDPR_PYTHON=.venv/bin/python): \(r.stderr.suffix(2000))")
        }
        return try SafeTensorsFile(url: out)
    }

    var fixture: SafeTensorsFile!

    override func setUpWithError() throws {
        if Self.recorded == nil { Self.recorded = Result { try Self.record() } }
        fixture = try Self.recorded!.get()
    }

    // MARK: losses with scaled scores

    /// Loss within 1e-5 absolute; gradients within 1e-5 of the tensor's largest magnitude (LossTests).
    func assertClose(_ actual: [Float], _ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let d = deviation(actual, try fixture.floats(name))
        XCTAssertLessThanOrEqual(d.maxAbs, 1e-5 * max(1, d.scale), "\(name): \(d)", file: file, line: line)
    }

    func testScaledLossesMatchPyTorch() throws {
        let inputs = try SafeTensorsFile(url: Fixtures.url("losses.safetensors"))
        var checked = 0
        for sim in [SimilarityFunction.dotProduct, SimilarityFunction.cosine] {
            for scale: Float in [20, 0.5] {
                let key = "loss.%@.\(sim.rawValue).scale\(scale == 20 ? "20" : "0.5")."
                func name(_ loss: String, _ tensor: String) -> String { String(format: key, loss) + tensor }

                var prefix = "pos_randneg.\(sim.rawValue)."
                let q = try inputs.floats(prefix + "q"), p = try inputs.floats(prefix + "p"), n = try inputs.floats(prefix + "n")
                let shapeN = try inputs.info(prefix + "n").shape
                let dim = shapeN[1], rows = q.count / dim
                let pos = try PositiveLoss.forwardBackward(
                    q: q, p: p, n: n, rows: rows, negatives: shapeN[0], dim: dim,
                    duplicateMask: try inputs.ints(prefix + "dup"), similarity: sim, scoreScale: scale)
                try assertClose([pos.loss], name("pos_randneg", "loss"))
                try assertClose(pos.gq, name("pos_randneg", "gq"))
                try assertClose(pos.gp, name("pos_randneg", "gp"))
                try assertClose(pos.gn, name("pos_randneg", "gn"))

                prefix = "pos_hardneg.\(sim.rawValue)."
                let shapeH = try inputs.info(prefix + "h").shape
                let hard = try PosHardLoss.forwardBackward(
                    q: try inputs.floats(prefix + "q"), p: try inputs.floats(prefix + "p"), h: try inputs.floats(prefix + "h"),
                    rows: shapeH[0], hardNegatives: shapeH[1], dim: shapeH[2], hardnegMask: try inputs.ints(prefix + "hm"),
                    similarity: sim, scoreScale: scale)
                try assertClose([hard.loss], name("pos_hardneg", "loss"))
                try assertClose(hard.gq, name("pos_hardneg", "gq"))
                try assertClose(hard.gp, name("pos_hardneg", "gp"))
                try assertClose(hard.gh, name("pos_hardneg", "gh"))

                prefix = "inbatch.\(sim.rawValue)."
                let shapeQ = try inputs.info(prefix + "q").shape, shapeC = try inputs.info(prefix + "c").shape
                let inbatch = try InBatchLoss.forwardBackward(
                    q: try inputs.floats(prefix + "q"), c: try inputs.floats(prefix + "c"), rows: shapeQ[0], contexts: shapeC[0],
                    dim: shapeQ[1], mask: try inputs.ints(prefix + "mask"), similarity: sim, scoreScale: scale)
                try assertClose([inbatch.loss], name("inbatch", "loss"))
                try assertClose(inbatch.gq, name("inbatch", "gq"))
                try assertClose(inbatch.gc, name("inbatch", "gc"))
                checked += 3
            }
        }
        XCTAssertEqual(checked, 12)
    }

    func testScaleOneIsTheOriginalLoss() throws {
        let inputs = try SafeTensorsFile(url: Fixtures.url("losses.safetensors"))
        let q = try inputs.floats("inbatch.cosine.q"), c = try inputs.floats("inbatch.cosine.c")
        let shapeQ = try inputs.info("inbatch.cosine.q").shape, shapeC = try inputs.info("inbatch.cosine.c").shape
        let mask = try inputs.ints("inbatch.cosine.mask")
        let plain = try InBatchLoss.forwardBackward(q: q, c: c, rows: shapeQ[0], contexts: shapeC[0], dim: shapeQ[1],
                                                    mask: mask, similarity: .cosine)
        let one = try InBatchLoss.forwardBackward(q: q, c: c, rows: shapeQ[0], contexts: shapeC[0], dim: shapeQ[1],
                                                  mask: mask, similarity: .cosine, scoreScale: 1)
        XCTAssertEqual(plain.loss, one.loss)
        XCTAssertEqual(plain.gq, one.gq)
        XCTAssertEqual(plain.gc, one.gc)
    }

    // MARK: bi-encoders with mean pooling

    func batch(_ prefix: String) throws -> TokenBatch {
        let ids = try fixture.ints(prefix + "/input_ids"), mask = try fixture.ints(prefix + "/attention_mask")
        let shape = try fixture.info(prefix + "/input_ids").shape
        return try TokenBatch(inputIds: ids.map(Int32.init), attentionMask: mask.map(Int32.init), rows: shape[0], seqLen: shape[1])
    }

    /// One forward, loss and backward of `case` (see the script) with grad cache chunks `chunk`.
    func check(_ name: String, projectionDim: Int, similarity: SimilarityFunction, scale: Float, chunk: Int?) throws {
        let key = "model.\(name)."
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: projectionDim, pooling: .mean)
        model.setDropout(0)
        if projectionDim > 0 {
            for slot in model.layout.slots where slot.name.contains("encode_proj") {
                let values = try fixture.floats(key + slot.name)
                XCTAssertEqual(values.count, slot.count)
                for (i, v) in values.enumerated() { model.parameters.pointer[slot.offset + i] = v }
            }
        }
        let q = try batch(key + "question"), ctx = try batch(key + "context")
        XCTAssertTrue(q.attentionMask.contains(0) && ctx.attentionMask.contains(0), "the fixture should pad some rows")
        model.zeroGradients()
        let qe = try model.encode(.question, q, chunkSize: chunk)
        let ce = try model.encode(.context, ctx, chunkSize: chunk)
        let label = "\(name), grad cache \(chunk.map(String.init) ?? "off")"
        let dqe = deviation(qe, try fixture.floats(key + "q")), dce = deviation(ce, try fixture.floats(key + "c"))
        XCTAssertLessThan(dqe.maxAbs, 2e-5, "question embeddings (\(label)): \(dqe)")
        XCTAssertLessThan(dce.maxAbs, 2e-5, "context embeddings (\(label)): \(dce)")

        let dim = model.question.outputDim, split = q.rows * dim
        let mask = try fixture.ints(key + "loss_mask")
        let loss: Float, dq: [Float], dc: [Float]
        if name.hasSuffix("_pos") {
            let r = try PositiveLoss.forwardBackward(q: qe, p: Array(ce[0..<split]), n: Array(ce[split...]), rows: q.rows,
                                                     negatives: ctx.rows - q.rows, dim: dim, duplicateMask: mask,
                                                     similarity: similarity, scoreScale: scale)
            (loss, dq, dc) = (r.loss, r.gq, r.gp + r.gn)
        } else {
            let r = try PosHardLoss.forwardBackward(q: qe, p: Array(ce[0..<split]), h: Array(ce[split...]), rows: q.rows,
                                                    hardNegatives: (ctx.rows - q.rows) / q.rows, dim: dim, hardnegMask: mask,
                                                    similarity: similarity, scoreScale: scale)
            (loss, dq, dc) = (r.loss, r.gq, r.gp + r.gh)
        }
        XCTAssertEqual(loss, try fixture.floats(key + "loss")[0], accuracy: 2e-5, "loss (\(label))")
        let ddq = deviation(dq, try fixture.floats(key + "dq")), ddc = deviation(dc, try fixture.floats(key + "dc"))
        XCTAssertLessThanOrEqual(ddq.maxAbs, 1e-5 * max(1, ddq.scale), "d loss / d question embeddings (\(label)): \(ddq)")
        XCTAssertLessThanOrEqual(ddc.maxAbs, 1e-5 * max(1, ddc.scale), "d loss / d context embeddings (\(label)): \(ddc)")

        try model.backward(.question, q, dEmbeddings: dq, chunkSize: chunk)
        try model.backward(.context, ctx, dEmbeddings: dc, chunkSize: chunk)
        var checked = 0
        for slot in model.layout.slots {
            let expected = try fixture.floats(key + "grad." + slot.name)
            let d = deviation(Array(model.gradients.buffer[slot.range]), expected)
            // Mathematically zero gradients (fixtures README): every key bias, and with a dot
            // product over contexts only (poshard) whatever shifts all context vectors alike.
            if slot.name.contains("attention.self.key.bias") || d.scale < 1e-6 {
                XCTAssertLessThan(d.maxAbs, 1e-5, "grad \(slot.name) (\(label)): \(d)")
            } else {
                XCTAssertLessThan(d.maxAbs, 1e-4 * max(d.scale, 1e-3), "grad \(slot.name) (\(label)): \(d)")
            }
            checked += 1
        }
        XCTAssertEqual(checked, model.layout.slots.count)
        XCTAssertEqual(checked, 2 * (37 + (projectionDim > 0 ? 2 : 0)))
    }

    func testMeanPoolingCosineScaledPosLoss() throws {
        try check("mean_cosine_pos", projectionDim: 0, similarity: .cosine, scale: 20, chunk: nil)
    }

    func testMeanPoolingCosineScaledPosLossWithGradCache() throws {
        try check("mean_cosine_pos", projectionDim: 0, similarity: .cosine, scale: 20, chunk: 3)
    }

    func testMeanPoolingProjectionDotScaledPosHardLoss() throws {
        try check("mean_proj16_dot_poshard", projectionDim: 16, similarity: .dotProduct, scale: 0.5, chunk: nil)
    }

    func testMeanPoolingProjectionDotScaledPosHardLossWithGradCache() throws {
        try check("mean_proj16_dot_poshard", projectionDim: 16, similarity: .dotProduct, scale: 0.5, chunk: 2)
    }

    /// A row without any unmasked token pools to the zero vector (sentence-transformers divides its
    /// zero sum by a count clamped to 1e-9) and gets no gradient; its neighbours are unaffected.
    func testFullyMaskedRowPoolsToZero() throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), pooling: .mean)
        model.setDropout(0)
        let ids: [Int32] = [101, 2054, 102, 0, 101, 2003, 1037, 102]
        let full = try TokenBatch(inputIds: ids, attentionMask: [1, 1, 1, 0, 1, 1, 1, 1], rows: 2, seqLen: 4)
        let masked = try TokenBatch(inputIds: ids, attentionMask: [0, 0, 0, 0, 1, 1, 1, 1], rows: 2, seqLen: 4)
        let a = try model.encode(.context, full), b = try model.encode(.context, masked)
        XCTAssertTrue(b[0..<64].allSatisfy { $0 == 0 })
        // Equal within fp32 rounding, not bit for bit: `full` is packed (7 token rows) while `masked`,
        // with its empty row, runs padded (8 rows), and sgemm rounds other shapes differently.
        XCTAssertLessThan(deviation(Array(a[64...]), Array(b[64...])).maxAbs, 1e-6)
        model.zeroGradients()
        try model.backward(.context, masked, dEmbeddings: [Float](repeating: 1, count: 64) + [Float](repeating: 0, count: 64))
        XCTAssertTrue(model.gradients.toArray().allSatisfy { $0 == 0 })
    }
}
