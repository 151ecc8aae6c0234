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

    /// The batch's per-row tensors in plan order: questions, then the pipeline's context parts.
    func tensors(_ b: Batch) -> [[[Int32]]] {
        let parts: [TokenMatrix?]
        switch b.pipeline {
        case .pos, .hard: parts = [b.positiveContexts, b.negativeContexts]
        case .poshard: parts = [b.positiveContexts, b.hardnegContexts]
        case .inbatch: parts = [b.contexts]
        }
        return [sequences(b.questions)] + parts.map(sequences)
    }

    /// For every pipeline and world sizes 1-4: each rank's materialized shard holds exactly the rows
    /// the assignment gives it (same tokens; padded to its own longest row), in batch order, with
    /// the global masks, row counts and owners; all shards together are the whole batch. The
    /// contiguous split of SPEC §6 works the same way.
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
                    for owners in [plan.balancedOwners(worldSize: world), plan.contiguousOwners(worldSize: world)] {
                        XCTAssertEqual(owners.map(\.count), plan.rowCounts)
                        XCTAssertTrue(owners.joined().allSatisfy { (0..<world).contains($0) })
                        // tensor -> row -> tokens, filled from the shards.
                        var rebuilt = plan.rowCounts.map { [[Int32]](repeating: [-1], count: $0) }
                        for rank in 0..<world {
                            let shard = plan.shard(rank: rank, owners: owners)
                            let b = try materializer.batch(shard, sources: planner.sources, sourceNames: planner.sourceNames)
                            XCTAssertEqual(b.globalRows, plan.rowCounts)
                            XCTAssertEqual(b.rowOwners, owners)
                            XCTAssertEqual(b.duplicateMask, whole.duplicateMask)
                            XCTAssertEqual(b.hardnegMask, whole.hardnegMask)
                            XCTAssertEqual(b.inbatchMask, whole.inbatchMask)
                            for (t, rows) in tensors(b).enumerated() {
                                let mine = owners[t].indices.filter { owners[t][$0] == rank }
                                XCTAssertEqual(rows.count, mine.count, "\(kind) world \(world) tensor \(t)")
                                for (row, tokens) in zip(mine, rows) { rebuilt[t][row] = tokens }
                            }
                        }
                        XCTAssertEqual(rebuilt, tensors(whole), "\(kind) world \(world)")
                    }
                }
            }
        }
    }

    /// The balanced assignment puts the longest rows together on a rank with fewer of them, and
    /// never costs more than the contiguous split (cost = rows x RowCost of the longest length).
    func testBalancedAssignmentEvensOutTheWork() throws {
        func ref(_ cost: Int) -> TextRef { TextRef(source: 0, sample: 0, part: .positive, item: 0, cost: cost) }
        let lengths = [250, 30, 40, 35, 256, 20, 30, 45, 60, 25, 33, 41, 29, 31, 38, 27]
        var plan = BatchPlan(pipeline: .inbatch, questions: (0..<4).map { _ in ref(10) }, contextParts: [lengths.map(ref)], sampleIDs: [])
        plan.hardnegsPerSample = 0
        func worst(_ owners: [[Int]], world: Int) -> Int {
            (0..<world).map { r in
                let mine = lengths.indices.filter { owners[1][$0] == r }
                return RowCost().of(rows: mine.count, paddedTo: mine.map { lengths[$0] }.max() ?? 0, tokens: mine.map { lengths[$0] }.reduce(0, +))
            }.max()!
        }
        let balanced = plan.balancedOwners(worldSize: 2), contiguous = plan.contiguousOwners(worldSize: 2)
        XCTAssertEqual(balanced[1][0], balanced[1][4], "the two long passages go together")
        XCTAssertLessThan(balanced[1].filter { $0 == balanced[1][0] }.count, 8, "with fewer rows than the other rank")
        XCTAssertLessThan(worst(balanced, world: 2), worst(contiguous, world: 2))
        for world in 1...5 { XCTAssertLessThanOrEqual(worst(plan.balancedOwners(worldSize: world), world: world), worst(plan.contiguousOwners(worldSize: world), world: world)) }
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
    /// The coordinator measures each row's exact token count before dealing rows out: `measured`
    /// sets every cost to the length its row has in the materialized batch, and nothing else.
    func testMeasuredCostsAreTheRowsTokenCounts() throws {
        for kind in [PipelineKind.pos, .poshard, .inbatch] {
            let planner = try PipelineFixture.make(kind)
            let materializer = BatchMaterializer(tokenizer: PipelineFixture.tokenizer, maxLength: PipelineFixture.maxLength)
            let plan = try planner.nextPlan()
            let measured = try materializer.measured(plan, sources: planner.sources, sourceNames: planner.sourceNames)
            var stripped = measured
            stripped.questions = zip(measured.questions, plan.questions).map { var r = $0; r.cost = $1.cost; return r }
            stripped.contextParts = zip(measured.contextParts, plan.contextParts).map { zip($0, $1).map { var r = $0; r.cost = $1.cost; return r } }
            XCTAssertEqual(stripped, plan, "\(kind): only the costs change")
            let batch = try materializer.batch(plan, sources: planner.sources, sourceNames: planner.sourceNames)
            func lengths(_ m: TokenMatrix?) -> [Int] {
                guard let m else { return [] }
                return (0..<m.rows).map { r in m.mask[(r * m.columns)..<((r + 1) * m.columns)].reduce(0) { $0 + Int($1) } }
            }
            XCTAssertEqual(measured.questions.map(\.cost), lengths(batch.questions), "\(kind) questions")
            let contexts: [TokenMatrix?]
            switch kind {
            case .pos, .hard: contexts = [batch.positiveContexts, batch.negativeContexts]
            case .poshard: contexts = [batch.positiveContexts, batch.hardnegContexts]
            case .inbatch: contexts = [batch.contexts]
            }
            XCTAssertEqual(measured.contextParts.map { $0.map(\.cost) }, contexts.map(lengths), "\(kind) contexts")
        }
    }
}
