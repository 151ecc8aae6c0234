import Foundation
import Model
import TestSupport
import XCTest

final class ProjectionAndIOTests: XCTestCase {
    /// Linear(64, 16) projection head against PyTorch (fixtures/projection.safetensors).
    func testProjectionParity() throws {
        let f = try SafeTensorsFile(url: Fixtures.url("projection.safetensors"))
        let x = try f.floats("input"), w = try f.floats("weight"), b = try f.floats("bias")
        let out = ProjectionHead.forward(input: x, weight: w, bias: b, rows: 3, inDim: 64, outDim: 16)
        let d = deviation(out, try f.floats("output"))
        XCTAssertLessThan(d.maxAbs, 1e-5, "\(d)")
        // The fixture's upstream gradient dOut [3, 16] is not stored; recover it from grad.weight =
        // dOutᵀ·input (input has full row rank 3), then check grad.input and grad.bias against it
        // and grad.weight as a round trip.
        let gw = try f.floats("grad.weight")
        let dOut = recoverUpstream(gradWeight: gw, input: x, rows: 3, inDim: 64, outDim: 16)
        let g = ProjectionHead.backward(dOut: dOut, input: x, weight: w, rows: 3, inDim: 64, outDim: 16)
        for (name, actual) in [("grad.input", g.dInput), ("grad.weight", g.dWeight), ("grad.bias", g.dBias)] {
            let e = try f.floats(name)
            let dd = deviation(actual, e)
            XCTAssertLessThan(dd.maxAbs, 1e-4 * max(dd.scale, 1e-3), "\(name): \(dd)")
        }
    }

    /// Saving an encoder as a Hugging Face directory and loading it back gives the same weights.
    func testSaveAndReloadHuggingFaceDirectory() throws {
        let dir = Fixtures.url("tiny-bert")
        let a = try BertEncoder.load(directory: dir)
        let out = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: out) }
        try a.save(to: out, tokenizerFrom: dir)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("vocab.txt").path))
        let b = try BertEncoder.load(directory: out)
        XCTAssertEqual(a.config, b.config)
        XCTAssertEqual(a.parameters.toArray(), b.parameters.toArray())
    }

    /// A bi-encoder's weights (both encoders, with projection heads) survive saveWeights/loadWeights.
    func testBiEncoderWeightsRoundTrip() throws {
        let a = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: 16)
        for i in stride(from: 0, to: a.layout.totalCount, by: 97) { a.parameters.pointer[i] += Float(i % 7) * 0.01 }
        let tmp = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let url = tmp.appendingPathComponent("model.safetensors")
        try a.saveWeights(to: url)
        let b = BiEncoder(config: a.config, projectionDim: 16)
        try b.loadWeights(from: url)
        XCTAssertEqual(a.parameters.toArray(), b.parameters.toArray())
        // A directory with config.json and these weights loads as a bi-encoder (heads included).
        try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/config.json"), to: tmp.appendingPathComponent("config.json"))
        let c = try BiEncoder.load(directory: tmp)
        XCTAssertEqual(c.question.outputDim, 16)
        XCTAssertEqual(a.parameters.toArray(), c.parameters.toArray())
        // A plain BERT file has no question_model./ctx_model. names: reported, not silently used.
        XCTAssertThrowsError(try b.loadWeights(from: Fixtures.url("tiny-bert/model.safetensors"))) { error in
            XCTAssertTrue("\(error)".contains("question_model."), "\(error)")
        }
    }

    /// Solves dOut from gW = dOutᵀ x: dOutᵀ = gW xᵀ (x xᵀ)⁻¹, in Double.
    func recoverUpstream(gradWeight gw: [Float], input x: [Float], rows: Int, inDim: Int, outDim: Int) -> [Float] {
        var m = [[Double]](repeating: [Double](repeating: 0, count: rows), count: rows)
        for i in 0..<rows { for j in 0..<rows { for k in 0..<inDim { m[i][j] += Double(x[i * inDim + k]) * Double(x[j * inDim + k]) } } }
        // Gauss-Jordan inverse of the small Gram matrix.
        var inv = (0..<rows).map { i in (0..<rows).map { $0 == i ? 1.0 : 0.0 } }
        for c in 0..<rows {
            let p = m[c][c]
            for j in 0..<rows { m[c][j] /= p; inv[c][j] /= p }
            for r in 0..<rows where r != c {
                let f = m[r][c]
                for j in 0..<rows { m[r][j] -= f * m[c][j]; inv[r][j] -= f * inv[c][j] }
            }
        }
        var dOut = [Float](repeating: 0, count: rows * outDim)
        for o in 0..<outDim {
            var gx = [Double](repeating: 0, count: rows)
            for i in 0..<rows { for k in 0..<inDim { gx[i] += Double(gw[o * inDim + k]) * Double(x[i * inDim + k]) } }
            for i in 0..<rows { dOut[i * outDim + o] = Float((0..<rows).reduce(0.0) { $0 + gx[$1] * inv[$1][i] }) }
        }
        return dOut
    }
}
