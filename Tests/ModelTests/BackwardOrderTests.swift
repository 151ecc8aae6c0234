import Foundation
import Model
import TestSupport
import XCTest

/// A trainer all-reduces each part of `backwardOrder` as soon as backward reports it finished
/// (overlapping communication with the rest of backward); that is only right if the parts cover
/// every parameter once and each part's gradients are final when it is reported.
final class BackwardOrderTests: XCTestCase {
    func testPartsCoverEachEncoderOnceTopLayerFirst() throws {
        let config = try BertConfig.load(Fixtures.url("tiny-bert/config.json"))
        for projection in [0, 24] {
            let model = BiEncoder(config: config, projectionDim: projection)
            for side in [BiEncoder.Side.question, .context] {
                let layout = model.encoder(side).layout
                let parts = layout.backwardOrder
                XCTAssertEqual(parts.count, config.numLayers + 1)
                XCTAssertEqual(parts.map(\.count).reduce(0, +), layout.range.count, "projection \(projection)")
                let sorted = parts.sorted { $0.lowerBound < $1.lowerBound }
                XCTAssertEqual(sorted.first?.lowerBound, layout.range.lowerBound)
                XCTAssertEqual(sorted.last?.upperBound, layout.range.upperBound)
                for (a, b) in zip(sorted, sorted.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
                // The last part is the embeddings, the first holds the top layer (and the projection head).
                XCTAssertTrue(parts.last!.contains(layout.wordEmb) && parts.last!.contains(layout.embLnB))
                XCTAssertTrue(parts[0].contains(layout.layers[config.numLayers - 1].ln2B))
                if let head = layout.projB { XCTAssertTrue(parts[0].contains(head)) }
                XCTAssertEqual(layout.wordEmbeddingRange.count, config.vocabSize * config.hiddenSize)
            }
        }
    }

    /// Each part's gradients, copied when backward reports the part, equal the gradients at the
    /// end of backward; parts are reported in order, once. With grad cache only the last chunk's
    /// backward reports (earlier chunks still add into every part).
    func testEachPartIsFinalWhenReported() throws {
        let model = try BiEncoder.load(directory: Fixtures.url("tiny-bert"), projectionDim: 16)
        model.setDropout(0.1)
        var sequences: [[Int32]] = []
        for r in 0..<5 {
            let body: [Int32] = (0..<(4 + r)).map { Int32(2000 + r * 37 + $0) }
            sequences.append([101] + body + [102])
        }
        let batch = try TokenBatch(sequences: sequences)
        let dim = model.context.outputDim
        let dEmbeddings: [Float] = (0..<(batch.rows * dim)).map { i -> Float in Float((i * 7919) % 101) / 101 - 0.5 }
        for chunk in [nil, 2] as [Int?] {
            model.zeroGradients()
            _ = try model.encode(.context, batch, step: 3, train: true, chunkSize: chunk)
            var reported: [Int] = []
            var snapshots: [[Float]] = []
            let parts = model.context.layout.backwardOrder
            try model.backward(.context, batch, dEmbeddings: dEmbeddings, step: 3, train: true, chunkSize: chunk) { part in
                reported.append(part)
                snapshots.append(Array(UnsafeBufferPointer(start: model.gradients.pointer + parts[part].lowerBound, count: parts[part].count)))
            }
            XCTAssertEqual(reported, Array(parts.indices), "chunk \(String(describing: chunk))")
            let final = model.gradients.toArray()
            for (part, snapshot) in zip(reported, snapshots) {
                XCTAssertEqual(snapshot, Array(final[parts[part]]), "part \(part) changed after it was reported (chunk \(String(describing: chunk)))")
                XCTAssertTrue(snapshot.contains { $0 != 0 }, "part \(part) has no gradient at all")
            }
        }
    }
}
