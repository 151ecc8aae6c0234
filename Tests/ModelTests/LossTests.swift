import Data
import XCTest
import Model
import TestSupport

/// Parity of the three losses, with both similarity functions, against PyTorch
/// (fixtures/losses.safetensors): the loss and the gradient w.r.t. every embedding input.
final class LossTests: XCTestCase {
    var fixture: SafeTensorsFile!

    override func setUpWithError() throws {
        fixture = try SafeTensorsFile(url: Fixtures.url("losses.safetensors"))
    }

    /// Loss within 1e-5 absolute; gradients within 1e-5 of the tensor's largest magnitude.
    func assertClose(_ actual: [Float], _ name: String, scaleTolerance: Float = 1e-5,
                     file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try fixture.floats(name)
        let d = deviation(actual, expected)
        XCTAssertLessThanOrEqual(d.maxAbs, scaleTolerance * max(1, d.scale), "\(name): \(d)", file: file, line: line)
    }

    func checkPositive(_ sim: SimilarityFunction) throws {
        let prefix = "pos_randneg.\(sim.rawValue)."
        let q = try fixture.floats(prefix + "q"), p = try fixture.floats(prefix + "p"), n = try fixture.floats(prefix + "n")
        let shapeN = try fixture.info(prefix + "n").shape
        let dim = shapeN[1], rows = q.count / dim, negatives = shapeN[0]
        let mask = try fixture.ints(prefix + "dup", shape: [rows, 1 + negatives])
        XCTAssertTrue(mask.contains(0), "the fixture should exercise the duplicate mask")
        let r = try PositiveLoss.forwardBackward(q: q, p: p, n: n, rows: rows, negatives: negatives, dim: dim,
                                                 duplicateMask: mask, similarity: sim)
        try assertClose([r.loss], prefix + "loss")
        try assertClose(r.gq, prefix + "gq")
        try assertClose(r.gp, prefix + "gp")
        try assertClose(r.gn, prefix + "gn")
        // Forward only gives the same loss; gradScale scales every gradient.
        let lossOnly = try q.withUnsafeBufferPointer { Q in try p.withUnsafeBufferPointer { P in
            try n.withUnsafeBufferPointer { N in
                try PositiveLoss.forwardBackward(q: Q, p: P, n: N, rows: rows, negatives: negatives, dim: dim,
                                                 duplicateMask: mask, similarity: sim)
            } } }
        XCTAssertEqual(lossOnly, r.loss)
        let scaled = try PositiveLoss.forwardBackward(q: q, p: p, n: n, rows: rows, negatives: negatives, dim: dim,
                                                      duplicateMask: mask, similarity: sim, gradScale: 0.25)
        XCTAssertLessThan(deviation(scaled.gq, r.gq.map { $0 * 0.25 }).maxAbs, 1e-7)
        XCTAssertEqual(scaled.loss, r.loss)
    }

    func checkPosHard(_ sim: SimilarityFunction) throws {
        let prefix = "pos_hardneg.\(sim.rawValue)."
        let q = try fixture.floats(prefix + "q"), p = try fixture.floats(prefix + "p"), h = try fixture.floats(prefix + "h")
        let shapeH = try fixture.info(prefix + "h").shape
        let (rows, c, dim) = (shapeH[0], shapeH[1], shapeH[2])
        let mask = try fixture.ints(prefix + "hm", shape: [rows, 1 + c])
        XCTAssertTrue(mask.contains(0), "the fixture should exercise the hard-negative mask")
        let r = try PosHardLoss.forwardBackward(q: q, p: p, h: h, rows: rows, hardNegatives: c, dim: dim,
                                                hardnegMask: mask, similarity: sim)
        try assertClose([r.loss], prefix + "loss")
        try assertClose(r.gq, prefix + "gq")
        try assertClose(r.gp, prefix + "gp")
        try assertClose(r.gh, prefix + "gh")
    }

    func checkInBatch(_ sim: SimilarityFunction) throws {
        let prefix = "inbatch.\(sim.rawValue)."
        let q = try fixture.floats(prefix + "q"), c = try fixture.floats(prefix + "c")
        let shapeQ = try fixture.info(prefix + "q").shape, shapeC = try fixture.info(prefix + "c").shape
        let mask = try fixture.ints(prefix + "mask", shape: [shapeQ[0], shapeC[0]])
        XCTAssertTrue(mask.contains(0), "the fixture should exercise the in-batch mask")
        let r = try InBatchLoss.forwardBackward(q: q, c: c, rows: shapeQ[0], contexts: shapeC[0], dim: shapeQ[1],
                                                mask: mask, similarity: sim)
        try assertClose([r.loss], prefix + "loss")
        try assertClose(r.gq, prefix + "gq")
        try assertClose(r.gc, prefix + "gc")
    }

    func testPositiveLossDotProduct() throws { try checkPositive(.dotProduct) }
    func testPositiveLossCosine() throws { try checkPositive(.cosine) }
    func testPosHardLossDotProduct() throws { try checkPosHard(.dotProduct) }
    func testPosHardLossCosine() throws { try checkPosHard(.cosine) }
    func testInBatchLossDotProduct() throws { try checkInBatch(.dotProduct) }
    func testInBatchLossCosine() throws { try checkInBatch(.cosine) }

    /// Central finite differences (in Double-ish float steps) agree with the analytic gradient on
    /// a case the fixture does not cover: no negatives masked, a larger batch, cosine.
    func testInBatchGradientMatchesFiniteDifferences() throws {
        let rows = 3, contexts = 6, dim = 5
        var rng = SystemRandomNumberGenerator()
        let q = (0..<(rows * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
        let c = (0..<(contexts * dim)).map { _ in Float.random(in: -1...1, using: &rng) }
        let r = try InBatchLoss.forwardBackward(q: q, c: c, rows: rows, contexts: contexts, dim: dim, mask: nil,
                                                similarity: .cosine)
        let h: Float = 1e-2
        for i in 0..<q.count {
            var plus = q, minus = q
            plus[i] += h
            minus[i] -= h
            let lp = try InBatchLoss.forwardBackward(q: plus, c: c, rows: rows, contexts: contexts, dim: dim, mask: nil, similarity: .cosine).loss
            let lm = try InBatchLoss.forwardBackward(q: minus, c: c, rows: rows, contexts: contexts, dim: dim, mask: nil, similarity: .cosine).loss
            XCTAssertEqual((lp - lm) / (2 * h), r.gq[i], accuracy: 2e-3, "d loss / d q[\(i)]")
        }
    }

    func testSizeMismatchIsAClearError() {
        XCTAssertThrowsError(try PositiveLoss.forwardBackward(
            q: [Float](repeating: 0, count: 8), p: [Float](repeating: 0, count: 8), n: [Float](repeating: 0, count: 7),
            rows: 2, negatives: 2, dim: 4, duplicateMask: nil, similarity: .dotProduct)) { error in
            XCTAssertEqual(error as? LossError, .sizeMismatch(loss: "pos", argument: "n", count: 7, expected: 8))
            XCTAssertTrue("\(error)".contains("'n' has 7 values, expected 8"))
        }
        XCTAssertThrowsError(try InBatchLoss.forwardBackward(
            q: [Float](repeating: 0, count: 8), c: [Float](repeating: 0, count: 4),
            rows: 2, contexts: 1, dim: 4, mask: nil, similarity: .cosine))
        XCTAssertThrowsError(try PosHardLoss.forwardBackward(
            q: [Float](repeating: 0, count: 8), p: [Float](repeating: 0, count: 8), h: [Float](repeating: 0, count: 8),
            rows: 2, hardNegatives: 1, dim: 4, hardnegMask: [1, 1, 1], similarity: .cosine))
    }

    /// Large scores (unnormalised embeddings of big norm) stay finite: log-softmax subtracts the row max.
    func testLargeScoresStayFinite() throws {
        let dim = 4
        let q: [Float] = [300, 200, -100, 50, -250, 10, 400, 0]
        let p: [Float] = [200, 100, 0, -300, 10, 20, 300, 40]
        let n: [Float] = [-200, 300, 100, 10, 50, 50, 50, 50, 0, 0, 0, 0]
        let r = try PositiveLoss.forwardBackward(q: q, p: p, n: n, rows: 2, negatives: 3, dim: dim,
                                                 duplicateMask: [1, 1, 0, 1, 1, 1, 1, 0], similarity: .dotProduct)
        XCTAssertTrue(r.loss.isFinite)
        XCTAssertTrue((r.gq + r.gp + r.gn).allSatisfy(\.isFinite))
        // Row 0's positive score (120000) dwarfs its negatives: its loss is 0 and so are its gradients.
        XCTAssertEqual(r.gp[0..<4].map { $0 }, [0, 0, 0, 0])
    }

    /// A padded (all-zero) hard negative under cosine is masked: finite loss, zero gradient for it,
    /// and the same result as leaving the padding out.
    func testMaskedZeroPaddingUnderCosine() throws {
        let dim = 3
        let q: [Float] = [1, 2, 3, -1, 0.5, 2]
        let p: [Float] = [0.5, 2, 1, -2, 1, 1]
        let h: [Float] = [1, 0, 0, 0, 1, 0,   0, 0, 1, 0, 0, 0]   // row 1's second hard negative is padding
        let padded = try PosHardLoss.forwardBackward(q: q, p: p, h: h, rows: 2, hardNegatives: 2, dim: dim,
                                                     hardnegMask: [1, 1, 1, 1, 1, 0], similarity: .cosine)
        XCTAssertTrue(padded.loss.isFinite)
        XCTAssertEqual(Array(padded.gh[9..<12]), [0, 0, 0])
        // Row 1 alone with only its real hard negative gives the same per-row loss and gradients.
        let row1 = try PosHardLoss.forwardBackward(q: Array(q[3..<6]), p: Array(p[3..<6]), h: Array(h[6..<9]),
                                                   rows: 1, hardNegatives: 1, dim: dim, hardnegMask: nil, similarity: .cosine)
        let row0 = try PosHardLoss.forwardBackward(q: Array(q[0..<3]), p: Array(p[0..<3]), h: Array(h[0..<6]),
                                                   rows: 1, hardNegatives: 2, dim: dim, hardnegMask: nil, similarity: .cosine)
        XCTAssertEqual(padded.loss, (row0.loss + row1.loss) / 2, accuracy: 1e-6)
        XCTAssertLessThan(deviation(Array(padded.gq[3..<6]), row1.gq.map { $0 / 2 }).maxAbs, 1e-6)
        XCTAssertLessThan(deviation(Array(padded.gh[6..<9]), row1.gh.map { $0 / 2 }).maxAbs, 1e-6)
    }
}
