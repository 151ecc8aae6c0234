import Foundation
import XCTest
import Data
import TestSupport

/// The Hydra-style configuration of SPEC §8.
final class ConfigTests: XCTestCase {
    func testDefaultsOfSpec() throws {
        let (c, warnings) = try TrainingConfig.parse([])
        XCTAssertEqual(warnings, [])
        XCTAssertEqual(c.seed, 12345)
        XCTAssertEqual(c.adamEps, 1e-8)
        XCTAssertEqual(c.adamBetas, [0.9, 0.999])
        XCTAssertEqual(c.maxGradNorm, 1.0)
        XCTAssertEqual(c.logBatchStep, 100)
        XCTAssertEqual(c.weightDecay, 0.0)
        XCTAssertEqual(c.learningRate, 1e-5)
        XCTAssertEqual(c.warmupSteps, 1000)
        XCTAssertEqual(c.dropout, 0.1)
        XCTAssertFalse(c.gradCache)
        XCTAssertEqual(c.qChunkSize, 2)
        XCTAssertEqual(c.ctxChunkSize, 2)
        XCTAssertTrue(c.doLowerCase)
        XCTAssertEqual(c.globalLossBufferSize, 150000)
        XCTAssertEqual(c.logDir, "logs")
        XCTAssertEqual(c.checkpointFileName, "dpr_biencoder")
        XCTAssertEqual(c.lossScale, 8.0)
        XCTAssertEqual(c.simFunc, .dotProduct)
        XCTAssertEqual(c.keepCheckpointMax, 5)
        XCTAssertEqual(c.regulateFactor, 1)
        XCTAssertEqual(c.trainMode, "poshard+hard")
        XCTAssertEqual(c.maxLength, 256)
        XCTAssertEqual(c.totalUpdates, 10000)
        XCTAssertEqual(c.saveCheckpointFreq, 1000)
        XCTAssertEqual(c.projectionDim, 0)
        XCTAssertEqual(c.encoderModelType, "hf_bert")
        XCTAssertEqual(c.pipeline.inbatch.forwardBatchSize, 16)
        XCTAssertTrue(c.pipeline.inbatch.useHardneg)
        XCTAssertEqual(c.pipeline.inbatch.useNumHardnegs, 1)
        XCTAssertEqual([c.pipeline.pos.forwardBatchSize, c.pipeline.pos.contrastiveSize], [16, 16])
        XCTAssertEqual([c.pipeline.poshard.forwardBatchSize, c.pipeline.poshard.contrastiveSize], [2, 2])
        XCTAssertEqual([c.pipeline.hard.forwardBatchSize, c.pipeline.hard.contrastiveSize], [2, 2])
        XCTAssertTrue(c.pipeline.hard.useRandneg)
        for kind in PipelineKind.allCases {
            XCTAssertEqual(c.pipeline.common(kind).gradientAccumulateSteps, 1)
            XCTAssertEqual(c.pipeline.common(kind).loggingStep, 10)
        }
    }

    func testDottedKeysAndTypes() throws {
        let (c, _) = try TrainingConfig.parse([
            "train_mode=pos+poshard+hard", "regulate_factor=3", "pipeline.pos.forward_batch_size=8",
            "pipeline.pos.contrastive_size=8", "bytedataset.hard.hardneg=/data/h", "do_lower_case=false",
            "learning_rate=2e-5", "adam_betas=(0.8,0.99)", "sim_func=cosine", "grad_cache=True",
            "pipeline.hard.use_randneg=false", "pipeline.pos.logging_steps=7", "+seed=7", "model_file=null",
            "output_dir='out dir'", "total_updates=1e3",
        ])
        XCTAssertEqual(c.trainMode, "pos+poshard+hard")
        XCTAssertEqual(c.regulateFactor, 3)
        XCTAssertEqual(c.pipeline.pos.forwardBatchSize, 8)
        XCTAssertEqual(c.bytedataset.hard.hardneg, "/data/h")
        XCTAssertFalse(c.doLowerCase)
        XCTAssertEqual(c.learningRate, 2e-5)
        XCTAssertEqual(c.adamBetas, [0.8, 0.99])
        XCTAssertEqual(c.simFunc, .cosine)
        XCTAssertTrue(c.gradCache)
        XCTAssertFalse(c.pipeline.hard.useRandneg)
        XCTAssertEqual(c.pipeline.pos.loggingStep, 7)
        XCTAssertEqual(c.seed, 7)
        XCTAssertNil(c.modelFile)
        XCTAssertEqual(c.outputDir, "out dir")
        XCTAssertEqual(c.totalUpdates, 1000)
    }

    func testTypeErrorsNameTheParameter() {
        let bad: [(String, String)] = [
            ("pipeline.pos.forward_batch_size=eight", "pipeline.pos.forward_batch_size"),
            ("max_length=1.5", "max_length"), ("do_lower_case=maybe", "do_lower_case"),
            ("learning_rate=fast", "learning_rate"), ("sim_func=l2", "sim_func"), ("adam_betas=0.9", "adam_betas"),
            ("train_mode=pos+neg", "train_mode"), ("max_length=1", "max_length"),
            ("pipeline.hard.forward_batch_size=0", "pipeline.hard.forward_batch_size"), ("dropout=2", "dropout"),
        ]
        for (argument, key) in bad {
            XCTAssertThrowsError(try TrainingConfig.parse([argument]), argument) { error in
                XCTAssertTrue("\(error)".contains(key), "\(argument): \(error)")
            }
        }
        XCTAssertThrowsError(try TrainingConfig.parse(["seed"])) { error in
            XCTAssertEqual(error as? ConfigError, .malformedArgument("seed"))
        }
    }

    /// Found while writing the fuzz harness's hydra target (Tests/Fuzz; replaying this input gave
    /// "AddressSanitizer: out of memory"): validate() built the schedule, regulate_factor steps per
    /// cycle, before any bound, so regulate_factor=10^12 asked for a 1 TB array instead of failing.
    func testHugeRegulateFactorIsAnErrorNotAnAllocation() {
        XCTAssertThrowsError(try TrainingConfig.parse(["train_mode=pos", "regulate_factor=1000000000000"])) {
            XCTAssertEqual("\($0)", "regulate_factor: is 1000000000000, must be at most 1000000")
        }
        XCTAssertNoThrow(try TrainingConfig.parse(["train_mode=inbatch+pos", "regulate_factor=1000000"]))
    }

    func testUnknownKeysSuggestClosestName() {
        let cases = [("learning_rat=1", "learning_rate"), ("pipeline.pos.forward_batchsize=2", "pipeline.pos.forward_batch_size"),
                     ("bytedataset.hard.randnegs=x", "bytedataset.hard.randneg"), ("regulate_factr=2", "regulate_factor")]
        for (argument, suggestion) in cases {
            XCTAssertThrowsError(try TrainingConfig.parse([argument])) { error in
                guard case ConfigError.unknownKey(_, let s) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(s, suggestion)
                XCTAssertTrue("\(error)".contains("did you mean '\(suggestion)'"))
            }
        }
        XCTAssertThrowsError(try TrainingConfig.parse(["completely_unrelated_thing=1"])) { error in
            guard case ConfigError.unknownKey(_, let s) = error else { return XCTFail("\(error)") }
            XCTAssertNil(s)
        }
    }

    func testCompatibilityAndCUDAKeysWarn() throws {
        let (c, warnings) = try TrainingConfig.parse(["train_file=a.json", "batch_size=4", "fp16=true", "local_rank=-1", "no_cuda=true"])
        XCTAssertEqual(c, TrainingConfig())
        XCTAssertEqual(warnings.count, 5)
        XCTAssertTrue(warnings[0].contains("train_file") && warnings[0].contains("ignored"))
        XCTAssertTrue(warnings[2].contains("CUDA"))
    }

    func testJSONRoundTripUsesOriginalNames() throws {
        let (c, _) = try TrainingConfig.parse(["pipeline.poshard.contrastive_size=5", "bytedataset.pos=/p", "sim_func=cosine"])
        let data = try JSONEncoder().encode(c)
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfig.self, from: data), c)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let poshard = (object["pipeline"] as? [String: Any])?["poshard"] as? [String: Any]
        XCTAssertEqual(poshard?["contrastive_size"] as? Int, 5)
        XCTAssertEqual(object["sim_func"] as? String, "cosine")
        XCTAssertEqual((object["bytedataset"] as? [String: Any])?["pos"] as? String, "/p")
        // Every key prints and parses back to the same config.
        let again = try TrainingConfig.parse(c.keyValues().map { "\($0.key)=\($0.value)" }).config
        XCTAssertEqual(again, c)
    }

    func testDatasetPathsRequiredForTrainMode() throws {
        let (c, _) = try TrainingConfig.parse(["train_mode=pos+hard", "bytedataset.pos=/p", "bytedataset.hard.hardneg=/h"])
        XCTAssertThrowsError(try c.requireDatasetPaths()) { error in
            XCTAssertTrue("\(error)".contains("bytedataset.hard.randneg"), "\(error)")
        }
        var noRandneg = c
        try noRandneg.set("pipeline.hard.use_randneg", "false")
        XCTAssertNoThrow(try noRandneg.requireDatasetPaths())
    }
}
