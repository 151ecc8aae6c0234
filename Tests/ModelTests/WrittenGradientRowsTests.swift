import Data
import Foundation
@testable import Model
import TestSupport
import XCTest

/// A step zeroes (`BiEncoder.zeroWrittenGradients`) and the norm reads (`unwrittenGradientRanges`)
/// only the word-embedding gradient rows a backward may have written since the last zeroing. Those
/// must be every row that holds a value, whatever happened since: gradient accumulation, row groups
/// on several threads, grad cache chunks, a backward that threw half way, a write from elsewhere.
final class WrittenGradientRowsTests: XCTestCase {
    func batch(rows: Int, length: Int, seed: Int) throws -> TokenBatch {
        var ids: [Int32] = [], mask: [Int32] = []
        for r in 0..<rows {
            let n = max(3, length - (r * 3 + seed) % 5)
            ids += [101] + (1..<(n - 1)).map { Int32(1000 + (r * 131 + $0 * 17 + seed * 7919) % 20000) } + [102]
            ids += [Int32](repeating: 0, count: length - n)
            mask += [Int32](repeating: 1, count: n) + [Int32](repeating: 0, count: length - n)
        }
        return try TokenBatch(inputIds: ids, attentionMask: mask, rows: rows, seqLen: length)
    }

    func inBatchGradients(_ model: BiEncoder, _ q: TokenBatch, _ c: TokenBatch, step: Int, chunk: Int?) throws -> ([Float], [Float]) {
        let qe = try model.encode(.question, q, step: step, chunkSize: chunk)
        let ce = try model.encode(.context, c, step: step, chunkSize: chunk)
        let (_, dq, dc) = inBatchCrossEntropy(qe, ce, rows: q.rows, ctxRows: c.rows, dim: model.question.outputDim)
        return (dq, dc)
    }

    /// Every element of `ranges` holds +0.0 bits.
    func assertZero(_ model: BiEncoder, _ ranges: [Range<Int>], _ label: String) {
        let bits = UnsafeRawPointer(model.gradients.pointer).assumingMemoryBound(to: UInt32.self)
        for range in ranges {
            if let i = range.first(where: { bits[$0] != 0 }) {
                XCTFail("\(label): gradient \(i) is \(model.gradients.pointer[i]), outside the rows noted as written")
                return
            }
        }
    }

    func testZeroingOnlyWrittenRowsLeavesEveryGradientZero() throws {
        for fixContext in [false, true] {
            for (threads, chunk) in [(1, nil), (2, nil), (1, 2), (2, 3)] as [(Int, Int?)] {
                let label = "threads \(threads), chunk \(String(describing: chunk)), fix_ctx \(fixContext)"
                let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), fixContextEncoder: fixContext, pooling: .mean)
                model.setDropout(0.1)
                model.threads = threads
                let all = [0..<model.gradients.count]
                // Not known yet: a fresh model's first zeroing clears everything, also what was written directly.
                for i in stride(from: 0, to: model.gradients.count, by: 97) { model.gradients.pointer[i] = 1 }
                XCTAssertEqual(model.unwrittenGradientRanges(), [], label)
                model.zeroWrittenGradients()
                assertZero(model, all, label + ", first zeroing")
                for step in 0..<3 {
                    // Two accumulated batches with different tokens.
                    for micro in 0..<2 {
                        let q = try batch(rows: 4, length: 9, seed: step * 10 + micro), c = try batch(rows: 6, length: 12, seed: step * 10 + micro + 5)
                        let (dq, dc) = try inBatchGradients(model, q, c, step: step, chunk: chunk)
                        try model.backward(.question, q, dEmbeddings: dq, step: step, chunkSize: chunk)
                        try model.backward(.context, c, dEmbeddings: dc, step: step, chunkSize: chunk)
                    }
                    let unwritten = model.unwrittenGradientRanges()
                    XCTAssertGreaterThan(unwritten.reduce(0) { $0 + $1.count }, model.gradients.count / 4, label)
                    assertZero(model, unwritten, label + ", step \(step)")
                    XCTAssertTrue((0..<model.gradients.count).contains { model.gradients.pointer[$0] != 0 }, label)
                    // The norm that skips them is the norm of everything, bit for bit.
                    var partials: [Float] = []
                    for normThreads in [1, 2] {
                        let buffer = UnsafeBufferPointer(model.gradients.buffer)
                        XCTAssertEqual(GradClip.globalNorm(buffer, ranges: nil, threads: normThreads, partials: &partials, zeros: unwritten).bitPattern,
                                       GradClip.globalNorm(buffer, threads: normThreads).bitPattern, label)
                    }
                    model.zeroWrittenGradients()
                    assertZero(model, all, label + ", after step \(step)")
                }
                // A write from elsewhere, declared: the next zeroing clears everything.
                model.forgetWrittenGradientRows()
                XCTAssertEqual(model.unwrittenGradientRanges(), [], label)
                for i in stride(from: 0, to: model.gradients.count, by: 89) { model.gradients.pointer[i] = -2 }
                model.zeroWrittenGradients()
                assertZero(model, all, label + ", after a declared write")
            }
        }
    }

    /// A backward stopped half way (here by its `finished` callback) wrote some rows of its tokens:
    /// they were noted before it started writing.
    func testABackwardThatThrewIsCovered() throws {
        struct Stop: Error {}
        for threads in [1, 2] {
            let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), pooling: .cls)
            model.threads = threads
            model.zeroGradients()
            let q = try batch(rows: 3, length: 8, seed: 1), c = try batch(rows: 5, length: 10, seed: 2)
            let (dq, dc) = try inBatchGradients(model, q, c, step: 0, chunk: nil)
            try model.backward(.question, q, dEmbeddings: dq)
            XCTAssertThrowsError(try model.backward(.context, c, dEmbeddings: dc, finished: { _ in throw Stop() }))
            assertZero(model, model.unwrittenGradientRanges(), "threads \(threads)")
            model.zeroWrittenGradients()
            assertZero(model, [0..<model.gradients.count], "threads \(threads), after the zeroing")
            // The next step starts from zero and its gradients are those of a fresh model's.
            let fresh = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), pooling: .cls)
            fresh.threads = threads
            for m in [model, fresh] {
                let (dq, dc) = try inBatchGradients(m, q, c, step: 1, chunk: nil)
                try m.backward(.question, q, dEmbeddings: dq, step: 1)
                try m.backward(.context, c, dEmbeddings: dc, step: 1)
            }
            XCTAssertEqual(model.gradients.toArray(), fresh.gradients.toArray(), "threads \(threads)")
        }
    }

    /// The norm skips exactly the blocks inside the zero ranges, wherever those start and end.
    func testNormSkippingZeroBlocksIsTheNormOfEverything() {
        let count = 600_011
        var values = (0..<count).map { Float(($0 * 7919) % 2001) * 1e-3 - 1 }
        let zeros = [0..<300, 1_000..<1_255, 5_000..<70_000, 262_100..<262_200, 262_144..<524_300 + 1, 599_000..<count]
            .reduce(into: [Range<Int>]()) { list, r in
                // ascending and disjoint
                if let last = list.last, r.lowerBound < last.upperBound { list[list.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound) } else { list.append(r) }
            }
        for range in zeros { for i in range { values[i] = 0 } }
        values.withUnsafeBufferPointer { g in
            for threads in [1, 2, 3] {
                var partials: [Float] = []
                XCTAssertEqual(GradClip.globalNorm(g, ranges: nil, threads: threads, partials: &partials, zeros: zeros).bitPattern,
                               GradClip.globalNorm(g, threads: 1).bitPattern, "threads \(threads)")
            }
        }
    }

    func testSpansSplitAndComplement() {
        let spans = [3..<10, 10..<11, 20..<57, 100..<101]
        for parts in 1...5 {
            let shares = (0..<parts).map { ElementSpans.share(of: spans, part: $0, of: parts) }
            XCTAssertEqual(shares.flatMap { $0.flatMap { Array($0) } }, spans.flatMap { Array($0) }, "\(parts) parts")
            let sizes = shares.map { $0.reduce(0) { $0 + $1.count } }
            XCTAssertLessThanOrEqual(sizes.max()! - sizes.min()!, 1, "\(parts) parts")
        }
        XCTAssertEqual(ElementSpans.complement(of: [2..<5, 5..<7, 9..<20], in: 0..<12), [0..<2, 7..<9])
        XCTAssertEqual(ElementSpans.complement(of: [], in: 0..<12), [0..<12])
        XCTAssertEqual(ElementSpans.complement(of: [0..<12], in: 0..<12), [])
    }
}
