import Foundation
import XCTest
import Data
import TestSupport

/// Must show 5: the regulate_factor schedule.
final class PipelineScheduleTests: XCTestCase {
    func testPosPoshardHardWithFactor3() throws {
        let s = try PipelineSchedule(trainMode: "pos+poshard+hard", regulateFactor: 3)
        XCTAssertEqual(s.cycle, [.pos, .pos, .pos, .poshard, .hard])
        XCTAssertEqual((0..<10).map { s.pipeline(atStep: $0) },
                       [.pos, .pos, .pos, .poshard, .hard, .pos, .pos, .pos, .poshard, .hard])
    }

    func testInbatchPosWithFactor4SplitsHalfAndHalf() throws {
        let s = try PipelineSchedule(trainMode: "inbatch+pos", regulateFactor: 4)
        XCTAssertEqual(s.cycle, [.inbatch, .inbatch, .pos, .pos])
        // Odd factor: inbatch r // 2, pos r - r // 2; the order of names in train_mode does not matter.
        XCTAssertEqual(try PipelineSchedule(trainMode: "pos+inbatch+hard", regulateFactor: 5).cycle,
                       [.inbatch, .inbatch, .pos, .pos, .pos, .hard])
    }

    func testDefaultAndSingle() throws {
        XCTAssertEqual(try PipelineSchedule(trainMode: "poshard+hard", regulateFactor: 1).cycle, [.poshard, .hard])
        XCTAssertEqual(try PipelineSchedule(trainMode: "hard+poshard", regulateFactor: 7).cycle, [.poshard, .hard])
        XCTAssertEqual(try PipelineSchedule(trainMode: "pos", regulateFactor: 2).cycle, [.pos, .pos])
    }

    func testBadTrainModes() {
        XCTAssertThrowsError(try PipelineSchedule(trainMode: "pos+negs", regulateFactor: 1)) { e in
            XCTAssertTrue("\(e)".contains("'negs'"), "\(e)")
        }
        XCTAssertThrowsError(try PipelineSchedule(trainMode: "pos+pos", regulateFactor: 1))
        XCTAssertThrowsError(try PipelineSchedule(trainMode: "", regulateFactor: 1))
        XCTAssertThrowsError(try PipelineSchedule(trainMode: "pos", regulateFactor: 0))
        // inbatch would get 1 // 2 = 0 steps: refused rather than silently never trained.
        XCTAssertThrowsError(try PipelineSchedule(trainMode: "inbatch+pos", regulateFactor: 1)) { e in
            XCTAssertTrue("\(e)".contains("regulate_factor"), "\(e)")
        }
    }

    /// The plan `train` runs: steps follow the schedule and each draws gradient_accumulate_steps batches.
    func testTrainingBatchesFollowScheduleAndAccumulation() throws {
        let base = Fixtures.url("pipelines").path
        let (config, _) = try TrainingConfig.parse([
            "train_mode=pos+poshard+hard", "regulate_factor=2", "max_length=24",
            "bytedataset.pos=\(base)/all.bytedataset", "bytedataset.poshard=\(base)/with_hardneg.bytedataset",
            "bytedataset.hard.hardneg=\(base)/with_hardneg.bytedataset", "bytedataset.hard.randneg=\(base)/without_hardneg.bytedataset",
            "pipeline.pos.forward_batch_size=2", "pipeline.pos.contrastive_size=2", "pipeline.poshard.gradient_accumulate_steps=3",
        ])
        let plan = try TrainingBatches(config: config, tokenizer: PipelineFixture.tokenizer)
        let kinds = try (0..<8).map { step -> (PipelineKind, Int) in
            let (kind, batches) = try plan.batches(forStep: step)
            XCTAssertTrue(batches.allSatisfy { $0.pipeline == kind })
            return (kind, batches.count)
        }
        XCTAssertEqual(kinds.map(\.0), [.pos, .pos, .poshard, .hard, .pos, .pos, .poshard, .hard])
        XCTAssertEqual(kinds.map(\.1), [1, 1, 3, 1, 1, 1, 3, 1])
        XCTAssertEqual(plan.states[.poshard], PipelineState(epoch: 0, iteration: 12))
    }
}
