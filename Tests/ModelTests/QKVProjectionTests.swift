import Data
@testable import Model
import XCTest

/// The query, key and value projections as one sgemm over [W_q; W_k; W_v] (QKVProjection).
/// OpenBLAS does not give a column the same bits in a 3 × hidden-wide product as in a hidden-wide
/// one (its kernels round a column by its place in their blocks: 5% of the values differ by an ulp
/// or so), so the test holds the fused product to the exact product computed in double, as tightly
/// as three separate calls are held, and keeps what the encoder's parity rests on: a token row gets
/// the same bits wherever it lies, at a multiple of sgemm's row period (SgemmRowTiling), on 1 and 2
/// BLAS threads.
final class QKVProjectionTests: XCTestCase {
    func testOneProductMatchesThreeProjectionsAndKeepsRowsIndependentOfTheirPlace() {
        let hidden = 96
        var layout = ParameterLayout()
        let config = BertConfig(vocabSize: 50, hiddenSize: hidden, numLayers: 1, numHeads: 3, intermediateSize: 128,
                                maxPositions: 64)
        let bert = BertLayout(config: config, into: &layout)
        let parameters = FloatBuffer(count: layout.totalCount)
        var random = SplitMix64(seed: 0x9C1)
        for i in 0..<parameters.count { parameters.pointer[i] = Float(Int(random.next() % 2001) - 1000) / 3001 }
        let w = bert.layers[0], P = UnsafePointer(parameters.pointer)
        let parts = [(w.queryW, w.queryB), (w.keyW, w.keyB), (w.valueW, w.valueB)]
        let projection = QKVProjection(hidden: hidden)
        let period = SgemmRowTiling.period
        let threadsBefore = BLASThreads.current
        defer { BLASThreads.set(threadsBefore) }
        for threads in [1, 2] {
            BLASThreads.set(threads)
            for rows in [1, 7, period, 100, 100 * period] {
                let input = (0..<(rows * hidden)).map { _ in Float(Int(random.next() % 2001) - 1000) / 499 }
                var fused = [Float](repeating: .nan, count: rows * 3 * hidden)
                input.withUnsafeBufferPointer { x in
                    fused.withUnsafeMutableBufferPointer { projection.forward($0.baseAddress!, x.baseAddress!, parameters: P, layer: w, rows: rows) }
                }
                var worst = 0.0
                for r in 0..<rows {
                    for (part, (weight, bias)) in parts.enumerated() {
                        for o in 0..<hidden {
                            var exact = Double(P[bias + o]), magnitude = abs(exact)
                            for i in 0..<hidden {
                                let term = Double(input[r * hidden + i]) * Double(P[weight + o * hidden + i])
                                exact += term
                                magnitude += abs(term)
                            }
                            let error = abs(Double(fused[r * 3 * hidden + part * hidden + o]) - exact) / magnitude
                            worst = max(worst, error)
                        }
                    }
                }
                // fp32 sums of 97 terms: a few ulps of the terms' magnitude at most.
                XCTAssertLessThan(worst, 4e-7, "\(rows) rows, \(threads) BLAS threads: Q/K/V off the exact product by \(worst) of the terms' magnitude")
                // Rows that start at a multiple of the period get the bits of the whole call.
                guard rows == 100 * period else { continue }
                let first = 3 * period, count = 40 * period
                var part = [Float](repeating: .nan, count: count * 3 * hidden)
                input.withUnsafeBufferPointer { x in
                    part.withUnsafeMutableBufferPointer {
                        projection.forward($0.baseAddress!, x.baseAddress! + first * hidden, parameters: P, layer: w, rows: count)
                    }
                }
                let whole = fused[(first * 3 * hidden)..<((first + count) * 3 * hidden)]
                XCTAssertTrue(zip(part, whole).allSatisfy { $0.bitPattern == $1.bitPattern },
                              "\(threads) BLAS threads: rows \(first)..<\(first + count) differ from the same rows of a \(rows)-row call")
            }
        }
    }
}
