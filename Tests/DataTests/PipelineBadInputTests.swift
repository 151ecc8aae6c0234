import Foundation
import XCTest
import Data
import TestSupport

/// Must show 6: bad samples and settings give a clear error or a documented, tested behaviour.
final class PipelineBadInputTests: XCTestCase {
    let tokenizer = PipelineFixture.tokenizer

    func sample(_ id: Int, questions: [String] = ["what is it?"], positives: Int = 1, hardnegs: Int = 0) -> Sample {
        Sample(sampleID: id, questions: questions.map { .text($0) },
               positiveContexts: (0..<positives).map { Passage(title: "title \(id)", text: "positive \($0) of \(id)") },
               hardnegContexts: (0..<hardnegs).map { Passage(title: "", text: "hard negative \($0) of \(id)") })
    }

    /// Runs `batches` batches; returns the error if any.
    func firstError(_ pipeline: any BatchPipeline, batches: Int = 4) -> Error? {
        do { for _ in 0..<batches { _ = try pipeline.nextBatch() } } catch { return error }
        return nil
    }

    func testEmptyQuestionsIsAnErrorNamingTheSample() throws {
        let data = [sample(1), sample(2, questions: []), sample(3)]
        for pipeline: any BatchPipeline in [
            try PosPipeline(dataset: data, tokenizer: tokenizer, forwardBatchSize: 3, contrastiveSize: 0, maxLength: 32, shuffleSeed: 1),
            try InbatchPipeline(dataset: data, tokenizer: tokenizer, forwardBatchSize: 3, useHardneg: false, useNumHardnegs: 0, maxLength: 32, shuffleSeed: 1),
            try PoshardPipeline(dataset: data, tokenizer: tokenizer, forwardBatchSize: 3, contrastiveSize: 1, maxLength: 32, shuffleSeed: 1),
        ] {
            let error = try XCTUnwrap(firstError(pipeline), "\(pipeline.kind)")
            XCTAssertEqual(error as? PipelineError, .noQuestions(pipeline: pipeline.kind.rawValue, sampleID: 2))
            XCTAssertTrue("\(error)".contains("sample 2") && "\(error)".contains("questions"), "\(error)")
        }
    }

    func testEmptyPositiveContextsIsAnErrorNamingTheSample() throws {
        let data = [sample(1), sample(2, positives: 0), sample(3)]
        let pos = try PosPipeline(dataset: data, tokenizer: tokenizer, forwardBatchSize: 3, contrastiveSize: 0, maxLength: 32, shuffleSeed: 1)
        XCTAssertEqual(firstError(pos) as? PipelineError, .noPositiveContexts(pipeline: "pos", sampleID: 2))
        let inbatch = try InbatchPipeline(dataset: data, tokenizer: tokenizer, forwardBatchSize: 3, useHardneg: true, useNumHardnegs: 1, maxLength: 32, shuffleSeed: 1)
        XCTAssertEqual(firstError(inbatch) as? PipelineError, .noPositiveContexts(pipeline: "inbatch", sampleID: 2))
        // As a negative (positives + hard negatives), a sample with neither cannot be used either.
        let negOnly = [sample(1), sample(2), sample(3, positives: 0)]
        let window = try PosPipeline(dataset: negOnly, tokenizer: tokenizer, forwardBatchSize: 1, contrastiveSize: 2, maxLength: 32, shuffleSeed: 1)
        let error = firstError(window, batches: 6)
        XCTAssertNotNil(error)
        XCTAssertTrue("\(error!)".contains("sample 3"), "\(error!)")
    }

    /// Documented behaviour: a poshard sample without hard negatives gets all-zero hard-negative rows
    /// with hardneg_mask 0; if no sample of the batch has any, the contrastive size is 0.
    func testPoshardSampleWithoutHardNegativesIsPadded() throws {
        let data = [sample(1, hardnegs: 2), sample(2, hardnegs: 0)]
        let pipeline = try PoshardPipeline(dataset: data, tokenizer: tokenizer, forwardBatchSize: 2, contrastiveSize: 3, maxLength: 32, shuffleSeed: 5)
        let batch = try pipeline.nextBatch()
        let row = batch.sampleIDs.firstIndex(of: 2)!
        XCTAssertEqual(batch.hardnegsPerSample, 2)
        XCTAssertEqual(Array(batch.hardnegMask![(row * 3)..<(row * 3 + 3)]), [1, 0, 0])
        let h = try XCTUnwrap(batch.hardnegContexts)
        XCTAssertEqual(h.rows, 4)
        XCTAssertTrue(h.idsRow(row * 2).allSatisfy { $0 == 0 } && h.maskRow(row * 2 + 1).allSatisfy { $0 == 0 })

        let none = try PoshardPipeline(dataset: [sample(1), sample(2)], tokenizer: tokenizer, forwardBatchSize: 2, contrastiveSize: 3, maxLength: 32, shuffleSeed: 5)
        let empty = try none.nextBatch()
        XCTAssertEqual(empty.hardnegsPerSample, 0)
        XCTAssertEqual(empty.hardnegMask, [1, 1])
        XCTAssertEqual(empty.hardnegContexts?.rows, 0)
    }

    /// The hard pipeline draws its "positive" from the sample's own hard negatives: none is an error.
    func testHardSampleWithoutHardNegativesIsAnError() throws {
        let data = [sample(1, hardnegs: 1), sample(2, hardnegs: 0)]
        let pipeline = try HardPipeline(hardnegDataset: data, randnegDataset: nil, tokenizer: tokenizer,
                                        forwardBatchSize: 2, contrastiveSize: 0, maxLength: 32, shuffleSeed: 1)
        let error = try XCTUnwrap(firstError(pipeline))
        XCTAssertEqual(error as? PipelineError, .noHardNegatives(pipeline: "hard", sampleID: 2))
        XCTAssertTrue("\(error)".contains("bytedataset.hard.hardneg"))
    }

    /// Documented behaviour, as the original: a forward batch larger than the dataset wraps into the
    /// next epoch, so samples repeat; the masks keep a repeat from being its own negative.
    func testForwardBatchLargerThanDatasetWrapsAndMasksRepeats() throws {
        let data = [sample(1, hardnegs: 1), sample(2, hardnegs: 1), sample(3, hardnegs: 1)]
        let inbatch = try InbatchPipeline(dataset: data, tokenizer: tokenizer, forwardBatchSize: 5, useHardneg: true,
                                          useNumHardnegs: 1, maxLength: 32, shuffleSeed: 9)
        let batch = try inbatch.nextBatch()
        let ids = batch.sampleIDs
        XCTAssertEqual(ids.count, 5)
        XCTAssertEqual(Set(ids), [1, 2, 3])
        XCTAssertEqual(inbatch.state, PipelineState(epoch: 1, iteration: 2))
        let mask = try XCTUnwrap(batch.inbatchMask)
        let columns = 10
        for i in 0..<5 {
            for j in 0..<5 {
                XCTAssertEqual(mask[i * columns + j], i == j || ids[i] != ids[j], "row \(i) column \(j)")
            }
        }

        let pos = try PosPipeline(dataset: data, tokenizer: tokenizer, forwardBatchSize: 4, contrastiveSize: 2, maxLength: 32, shuffleSeed: 9)
        let p = try pos.nextBatch()
        let fwd = Array(p.sampleIDs[..<4]), neg = Array(p.sampleIDs[4...])
        for i in 0..<4 {
            XCTAssertEqual(p.duplicateMask![i * 3], 1)
            for j in 0..<2 { XCTAssertEqual(p.duplicateMask![i * 3 + 1 + j], fwd[i] == neg[j] ? 0 : 1) }
        }
        XCTAssertTrue(p.duplicateMask!.contains(0), "with 6 items from 3 samples some negative repeats a forward item")

        let poshard = try PoshardPipeline(dataset: data, tokenizer: tokenizer, forwardBatchSize: 7, contrastiveSize: 1, maxLength: 32, shuffleSeed: 9)
        XCTAssertEqual(try poshard.nextBatch().sampleIDs.count, 7)
    }

    func testEmptyDatasetAndBadSizesAreErrors() {
        XCTAssertThrowsError(try PosPipeline(dataset: [Sample](), tokenizer: tokenizer, forwardBatchSize: 1, contrastiveSize: 1, maxLength: 32, shuffleSeed: 1)) { e in
            XCTAssertTrue("\(e)".contains("no samples"), "\(e)")
        }
        XCTAssertThrowsError(try PosPipeline(dataset: [sample(1)], tokenizer: tokenizer, forwardBatchSize: 0, contrastiveSize: 1, maxLength: 32, shuffleSeed: 1)) { e in
            XCTAssertTrue("\(e)".contains("pipeline.pos.forward_batch_size"), "\(e)")
        }
        XCTAssertThrowsError(try HardPipeline(hardnegDataset: [sample(1, hardnegs: 1)], randnegDataset: [Sample](), tokenizer: tokenizer,
                                              forwardBatchSize: 1, contrastiveSize: 2, maxLength: 32, shuffleSeed: 1)) { e in
            XCTAssertTrue("\(e)".contains("no samples"), "\(e)")
        }
    }

    func testRestoringAnImpossibleStateIsAnError() throws {
        let pos = try PosPipeline(dataset: [sample(1), sample(2)], tokenizer: tokenizer, forwardBatchSize: 1, contrastiveSize: 1, maxLength: 32, shuffleSeed: 1)
        XCTAssertThrowsError(try pos.restore(PipelineState(epoch: 0, iteration: 5, shiftBack: 1)))
        XCTAssertThrowsError(try pos.restore(PipelineState(epoch: 0, iteration: 1, shiftBack: 4)))
        XCTAssertNoThrow(try pos.restore(PipelineState(epoch: 3, iteration: 0, shiftBack: 1)))
    }

    /// Truncation and dynamic padding: long texts are cut to max_length with [SEP] last; short rows padded with [PAD].
    func testTruncationAndPadding() throws {
        let long = Sample(sampleID: 1, questions: [.text(String(repeating: "word ", count: 50) + "?")],
                          positiveContexts: [Passage(title: "t", text: String(repeating: "passage ", count: 80))], hardnegContexts: [])
        let short = Sample(sampleID: 2, questions: [.text("hi?")], positiveContexts: [Passage(title: "", text: "x")], hardnegContexts: [])
        let pipeline = try PosPipeline(dataset: [long, short], tokenizer: tokenizer, forwardBatchSize: 2, contrastiveSize: 0, maxLength: 16, shuffleSeed: 3)
        let b = try pipeline.nextBatch()
        XCTAssertEqual(b.questions.columns, 16)
        XCTAssertEqual(b.positiveContexts?.columns, 16)
        let longRow = b.sampleIDs.firstIndex(of: 1)!, shortRow = 1 - longRow
        XCTAssertEqual(b.questions.idsRow(longRow).last, tokenizer.sepID)
        XCTAssertEqual(Array(b.questions.idsRow(shortRow).prefix(3)), [tokenizer.clsID, tokenizer.tokenIDs("hi")[0], tokenizer.sepID])
        XCTAssertEqual(b.questions.idsRow(shortRow).dropFirst(3).allSatisfy { $0 == tokenizer.padID }, true)
        XCTAssertEqual(Array(b.questions.maskRow(shortRow)), [1, 1, 1] + Array(repeating: 0, count: 13))
    }
}

/// Pre-tokenized samples and checkpoint encoding of states.
final class PipelineStateAndPretokenizedTests: XCTestCase {
    func testPretokenizedFieldsPassThrough() throws {
        let tok = PipelineFixture.tokenizer
        let s = Sample(sampleID: 7, questions: [.tokenIDs([2000, 2001])],
                       positiveContexts: [Passage(title: .tokenIDs([3000]), text: .tokenIDs([3001, 3002]))], hardnegContexts: [])
        let b = try PosPipeline(dataset: [s], tokenizer: tok, forwardBatchSize: 1, contrastiveSize: 0, maxLength: 32, shuffleSeed: 1).nextBatch()
        XCTAssertEqual(b.questions.ids, [tok.clsID, 2000, 2001, tok.sepID])
        XCTAssertEqual(b.positiveContexts?.ids, [tok.clsID, 3000, tok.sepID, 3001, 3002, tok.sepID])
    }

    func testStatesEncodeAsObjectKeyedByPipeline() throws {
        let states: [PipelineKind: PipelineState] = [.pos: PipelineState(epoch: 1, iteration: 2, shiftBack: 3),
                                                     .hard: PipelineState(epoch: 0, iteration: 5, shiftBack: 2, randneg: IndexGeneratorState(epoch: 1, iteration: 1))]
        let data = try JSONEncoder().encode(states)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["pos", "hard"])
        XCTAssertEqual(try JSONDecoder().decode([PipelineKind: PipelineState].self, from: data), states)
    }
}

extension PipelineStateAndPretokenizedTests {
    func testRandnegStateIntoPipelineWithoutRandnegIsAnError() throws {
        let data = [Sample(sampleID: 1, questions: [.text("q?")], positiveContexts: [Passage(title: "", text: "p")],
                           hardnegContexts: [Passage(title: "", text: "h")])]
        let hard = try HardPipeline(hardnegDataset: data, randnegDataset: nil, tokenizer: PipelineFixture.tokenizer,
                                    forwardBatchSize: 1, contrastiveSize: 1, maxLength: 16, shuffleSeed: 1)
        XCTAssertThrowsError(try hard.restore(PipelineState(epoch: 0, iteration: 1, shiftBack: 1, randneg: IndexGeneratorState())))
        XCTAssertNoThrow(try hard.restore(PipelineState(epoch: 0, iteration: 1, shiftBack: 1)))
    }

    func testTokenMatrixRowChunk() {
        let m = TokenMatrix(padding: [[1, 2], [3], [4, 5]], padID: 0)
        let chunk = m.rows(1..<3)
        XCTAssertEqual(chunk.rows, 2)
        XCTAssertEqual(chunk.ids, [3, 0, 4, 5])
        XCTAssertEqual(chunk.mask, [1, 0, 1, 1])
    }
}
