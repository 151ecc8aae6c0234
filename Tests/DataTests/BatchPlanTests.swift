import Data
import TestSupport
import XCTest

/// Plans and their shards (what the coordinator sends a rank) against the whole batches of the
/// fixture pipelines, and plans that do not fit the dataset (a worker with another dataset).
final class BatchPlanTests: XCTestCase {
    /// The real (unpadded) token ids of every row of a matrix.
    func sequences(_ m: TokenMatrix?) -> [[Int32]] {
        guard let m else { return [] }
        return (0..<m.rows).map { r in zip(m.idsRow(r), m.maskRow(r)).filter { $0.1 != 0 }.map(\.0) }
    }

    func contexts(_ b: Batch) -> [[[Int32]]] {
        [sequences(b.positiveContexts), sequences(b.negativeContexts), sequences(b.hardnegContexts), sequences(b.contexts)]
    }

    /// For every pipeline and world sizes 1-4: each rank's materialized shard holds exactly its
    /// contiguous rows of the whole batch (same tokens; padding to its own longest row), with the
    /// global masks and row counts; and the shards of all ranks together are the whole batch.
    func testShardsMaterializeToTheRowsOfTheWholeBatch() throws {
        for kind in PipelineKind.allCases {
            let planner = try PipelineFixture.make(kind)
            let reader = try PipelineFixture.make(kind)
            let materializer = BatchMaterializer(tokenizer: PipelineFixture.tokenizer, maxLength: PipelineFixture.maxLength)
            for _ in 0..<4 {
                let plan = try planner.nextPlan()
                let whole = try reader.nextBatch()
                XCTAssertEqual(try materializer.batch(plan, sources: planner.sources, sourceNames: planner.sourceNames), whole, "\(kind)")
                for world in 1...4 {
                    var questions: [[Int32]] = [], parts: [[[Int32]]] = [[], [], [], []]
                    for rank in 0..<world {
                        let shard = plan.shard(rank: rank, worldSize: world)
                        XCTAssertEqual(shard.globalRows, plan.rowCounts)
                        let b = try materializer.batch(shard, sources: planner.sources, sourceNames: planner.sourceNames)
                        XCTAssertEqual(b.globalRows, plan.rowCounts)
                        XCTAssertEqual(b.duplicateMask, whole.duplicateMask)
                        XCTAssertEqual(b.hardnegMask, whole.hardnegMask)
                        XCTAssertEqual(b.inbatchMask, whole.inbatchMask)
                        XCTAssertEqual(b.questions.rows, ShardSplit.range(count: whole.questions.rows, rank: rank, worldSize: world).count)
                        questions += sequences(b.questions)
                        for (i, rows) in contexts(b).enumerated() { parts[i] += rows }
                    }
                    XCTAssertEqual(questions, sequences(whole.questions), "\(kind) world \(world)")
                    XCTAssertEqual(parts, contexts(whole), "\(kind) world \(world)")
                }
            }
        }
    }

    /// A plan that names samples or fields the local dataset does not have fails with a message
    /// naming the dataset and the sample, never a crash.
    func testPlansThatDoNotFitTheDatasetAreRefused() throws {
        let planner = try PipelineFixture.make(.pos)
        let materializer = BatchMaterializer(tokenizer: PipelineFixture.tokenizer, maxLength: PipelineFixture.maxLength)
        let plan = try planner.nextPlan()
        var outside = plan
        outside.questions[0].sample = 1_000_000
        var noSuchField = plan
        noSuchField.contextParts[0][0].item = 99
        var noSuchSource = plan
        noSuchSource.questions[0].source = 3
        var missingPart = plan
        missingPart.contextParts.removeLast()
        for (bad, expected) in [(outside, "sample 1000000 is outside bytedataset.pos"), (noSuchField, "number 99"),
                                (noSuchSource, "dataset 3"), (missingPart, "context parts, expected 2")] {
            XCTAssertThrowsError(try materializer.batch(bad, sources: planner.sources, sourceNames: planner.sourceNames)) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
