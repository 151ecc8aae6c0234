import Data
@testable import Model
import XCTest

/// The query, key and value projections as one product over [W_q; W_k; W_v] (QKVProjection),
/// held to the exact product computed in double and to three separate Linear products bit for bit
/// (each output is one chain over its own weight row, whatever the other columns), and what the
/// encoder's parity rests on: a token row gets the same bits wherever it lies in the call, on 1
/// and 2 threads.
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
        let projection = QKVProjection(hidden: hidden), weights = PackedLinearWeights()
        let threadsBefore = BLASThreads.current
        defer { BLASThreads.set(threadsBefore) }
        for threads in [1, 2] {
            BLASThreads.set(threads)
            for rows in [1, 7, 12, 100, 1200] {
                let input = (0..<(rows * hidden)).map { _ in Float(Int(random.next() % 2001) - 1000) / 499 }
                var fused = [Float](repeating: .nan, count: rows * 3 * hidden)
                input.withUnsafeBufferPointer { x in
                    fused.withUnsafeMutableBufferPointer { projection.forward($0.baseAddress!, x.baseAddress!, parameters: P, layer: w, rows: rows, weights: weights) }
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
                // Three separate Linear products give the same bits.
                for (part, (weight, bias)) in parts.enumerated() {
                    var alone = [Float](repeating: .nan, count: rows * hidden)
                    input.withUnsafeBufferPointer { x in
                        alone.withUnsafeMutableBufferPointer {
                            Linear.forward($0.baseAddress!, x.baseAddress!, P + weight, P + bias, rows: rows, inDim: hidden, outDim: hidden)
                        }
                    }
                    let differing = (0..<(rows * hidden)).filter {
                        alone[$0].bitPattern != fused[($0 / hidden) * 3 * hidden + part * hidden + $0 % hidden].bitPattern
                    }.count
                    XCTAssertEqual(differing, 0, "\(rows) rows, \(threads) threads: part \(part) differs from its own Linear product")
                }
                // fp32 sums of 97 terms: a few ulps of the terms' magnitude at most.
                XCTAssertLessThan(worst, 4e-7, "\(rows) rows, \(threads) BLAS threads: Q/K/V off the exact product by \(worst) of the terms' magnitude")
                // Rows anywhere in a call get the bits of the whole call.
                guard rows == 1200 else { continue }
                let first = 37, count = 481
                var part = [Float](repeating: .nan, count: count * 3 * hidden)
                input.withUnsafeBufferPointer { x in
                    part.withUnsafeMutableBufferPointer {
                        projection.forward($0.baseAddress!, x.baseAddress! + first * hidden, parameters: P, layer: w, rows: count, weights: weights)
                    }
                }
                let whole = fused[(first * 3 * hidden)..<((first + count) * 3 * hidden)]
                XCTAssertTrue(zip(part, whole).allSatisfy { $0.bitPattern == $1.bitPattern },
                              "\(threads) BLAS threads: rows \(first)..<\(first + count) differ from the same rows of a \(rows)-row call")
            }
        }
    }
}
