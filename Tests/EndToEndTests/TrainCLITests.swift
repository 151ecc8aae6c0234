import Coordinator
import JobContracts
import Data
import Foundation
import Model
import TestSupport
import XCTest

/// `srdpr train` end to end on tiny-bert: the original README's command, exact resume, and
/// a falling loss for each kind of pipeline.
final class TrainCLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-train") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Must show 1: the README's "Run training" example with only the paths changed (tiny-bert,
    /// the demo data) and total_updates small runs to the end, writes the checkpoint and the
    /// TensorBoard scalars, which read back (our reader; TensorBoard's EventAccumulator when importable).
    func testReadmeExampleRunsAndWritesCheckpointsAndTensorBoard() throws {
        let ds = try TrainFixture.dataset(dir, samples: 60)
        let out = dir.appendingPathComponent("outputs/vbpl/checkpoints"), logs = dir.appendingPathComponent("outputs/vbpl/logs")
        let r = try TrainFixture.train([
            "train_mode=pos",
            "pipeline.pos.forward_batch_size=8",
            "pipeline.pos.contrastive_size=8",
            "do_lower_case=false",
            "max_length=256",
            "pretrained_model_cfg=\(TrainFixture.tinyBert)",
            "encoder_model_type=hf_bert",
            "bytedataset.pos=\(ds)",
            "log_batch_step=10",
            "learning_rate=2e-5",
            "adam_eps=1e-8",
            "max_grad_norm=2.0",
            "warmup_steps=0",
            "total_updates=20",
            "save_checkpoint_freq=100",
            "grad_cache=false",
            "loss_scale=1.0",
            "output_dir=\(out.path)",
            "log_dir=\(logs.path)",
            "seed=12345",
            "keep_checkpoint_max=5",
        ])
        // Plain log lines (not a terminal): the log_batch_step report, and where things are.
        XCTAssertTrue(r.stdout.contains("step 10/20 pos loss"), r.stdout)
        XCTAssertTrue(r.stdout.contains("step 20/20 pos loss"), r.stdout)
        XCTAssertTrue(r.stdout.contains("checkpoint: \(out.path)/dpr_biencoder.20"), r.stdout)
        XCTAssertTrue(r.stdout.contains("logs: \(logs.path)"), r.stdout)
        let checkpoint = out.appendingPathComponent("dpr_biencoder.20")
        let file = try CheckpointFile(url: checkpoint)

        // `srdpr encode` takes the checkpoint itself: its question encoder gives the same vectors
        // as the exported question_encoder directory.
        let questions = dir.appendingPathComponent("questions.jsonl")
        try "{\"question\": \"How do I install a package?\"}\r\n{\"question\": \"What is Perl?\"}\r\n"
            .write(to: questions, atomically: true, encoding: .utf8)
        let exported = dir.appendingPathComponent("hf")
        let exportRun = try Command.srdpr(["export", "--checkpoint", checkpoint.path, "--output", exported.path])
        XCTAssertEqual(exportRun.status, 0, exportRun.stderr)
        var embeddings: [String] = []
        for (name, model) in [("from-checkpoint", checkpoint.path), ("from-export", exported.appendingPathComponent("question_encoder").path)] {
            let output = dir.appendingPathComponent("\(name).jsonl")
            let encoded = try Command.srdpr(["encode", "--model", model, "--input", questions.path, "--output", output.path,
                                             "--max-length", "64"])
            XCTAssertEqual(encoded.status, 0, encoded.stderr)
            embeddings.append(try String(contentsOf: output, encoding: .utf8))
        }
        XCTAssertEqual(embeddings[0].split(separator: "\n").count, 2)
        XCTAssertEqual(embeddings[0], embeddings[1])
        XCTAssertTrue(file.contains("question_model.embeddings.word_embeddings.weight"))
        XCTAssertTrue(file.contains("ctx_model.encoder.layer.1.output.LayerNorm.bias"))
        let state = try file.json(TrainingCheckpoint.stateSection, as: TrainerState.self)
        XCTAssertEqual(state.step, 20)
        XCTAssertEqual(state.lossHistory["pos"]?.count, 20)

        // TensorBoard: learning_rate at every step, pos/loss every logging_step (10) pos updates.
        let files = try TensorBoardEventReader.eventFiles(in: logs)
        XCTAssertEqual(files.count, 1)
        let events = try TensorBoardEventReader.read(files[0])
        var scalars: [String: [(Int64, Float)]] = [:]
        for e in events { for s in e.scalars { scalars[s.tag, default: []].append((e.step, s.value)) } }
        XCTAssertEqual(scalars["learning_rate"]?.map(\.0), (1...20).map(Int64.init))
        XCTAssertEqual(scalars["learning_rate"]?.first?.1 ?? 0, 2e-5, accuracy: 1e-12)
        XCTAssertEqual(scalars["pos/loss"]?.map(\.0), [10, 20])
        let losses = try TrainFixture.metrics(logs).map { Float($0["loss"] as! Double) }
        XCTAssertEqual(losses.count, 20)
        XCTAssertEqual(scalars["pos/loss"]?[0].1 ?? 0, losses[0..<10].reduce(0, +) / 10, accuracy: 1e-5)
        XCTAssertEqual(scalars["pos/loss"]?[1].1 ?? 0, losses[10..<20].reduce(0, +) / 10, accuracy: 1e-5)

        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "python3"
        let script = """
            import sys
            try:
                from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
            except ImportError:
                print("SKIP"); sys.exit(0)
            acc = EventAccumulator(sys.argv[1]); acc.Reload()
            for tag in ("learning_rate", "pos/loss"):
                print(tag, " ".join("%d:%.9g" % (e.step, e.value) for e in acc.Scalars(tag)))
            """
        let py = try Command.run(URL(fileURLWithPath: "/usr/bin/env"), [python, "-c", script, logs.path])
        if py.stdout.hasPrefix("SKIP") || py.status != 0 && py.stderr.contains("No such file") {
            print("tensorboard is not importable with \(python); EventAccumulator check skipped")
        } else {
            XCTAssertEqual(py.status, 0, py.stderr)
            let lines = py.stdout.split(separator: "\n")
            XCTAssertEqual(lines.count, 2, py.stdout)
            // TensorBoard sees the same steps and values as our reader.
            for line in lines {
                let fields = line.split(separator: " ")
                let tag = String(fields[0])
                let theirs = fields.dropFirst().map { pair -> (Int64, Float) in
                    let kv = pair.split(separator: ":")
                    return (Int64(kv[0]) ?? -1, Float(kv[1]) ?? .nan)
                }
                let ours = scalars[tag] ?? []
                XCTAssertEqual(theirs.map(\.0), ours.map(\.0), tag)
                for (t, o) in zip(theirs, ours) { XCTAssertEqual(t.1, o.1, accuracy: 1e-6 * max(1, abs(o.1)), "\(tag) at \(o.0)") }
            }
            print("EventAccumulator check ran: \(lines.count) tags match")
        }
    }

    /// Must show 2: N updates straight == N/2 updates, a new process resuming from the N/2
    /// checkpoint with model_file=, and N/2 more: with dropout on and the pos+poshard+hard
    /// schedule, the batches after the resume and every final weight and optimizer moment are
    /// bit-identical.
    func testResumeIsExact() throws { try checkResume(extra: []) }

    /// The same with grad cache (chunked re-encoding with the same dropout masks).
    func testResumeIsExactWithGradCache() throws {
        try checkResume(extra: ["grad_cache=true", "q_chunk_size=3", "ctx_chunk_size=2"])
    }

    func checkResume(extra common: [String]) throws {
        let ds = try TrainFixture.dataset(dir, samples: 40)
        func run(_ name: String, extra: [String]) throws -> (URL, URL) {
            let out = dir.appendingPathComponent(name + "/ckpt"), logs = dir.appendingPathComponent(name + "/logs")
            try TrainFixture.train([
                "train_mode=pos+poshard+hard", "regulate_factor=2", "pretrained_model_cfg=\(TrainFixture.tinyBert)",
                "bytedataset.pos=\(ds)", "bytedataset.poshard=\(ds)", "bytedataset.hard.hardneg=\(ds)", "bytedataset.hard.randneg=\(ds)",
                "max_length=40", "pipeline.pos.forward_batch_size=4", "pipeline.pos.contrastive_size=3",
                "pipeline.poshard.forward_batch_size=2", "pipeline.poshard.contrastive_size=3",
                "pipeline.hard.forward_batch_size=2", "pipeline.hard.contrastive_size=3",
                "pipeline.pos.gradient_accumulate_steps=2",
                "dropout=0.1", "learning_rate=1e-4", "warmup_steps=2", "total_updates=8", "save_checkpoint_freq=4",
                "weight_decay=0.01", "output_dir=\(out.path)", "log_dir=\(logs.path)",
            ] + common + extra)
            return (out, logs)
        }
        let (straightOut, straightLogs) = try run("straight", extra: [])
        let half = straightOut.appendingPathComponent("dpr_biencoder.4")
        let (resumedOut, resumedLogs) = try run("resumed", extra: ["model_file=\(half.path)"])

        // The resumed run did only the last 4 updates, and saw the same batches with the same losses.
        let a = try TrainFixture.metrics(straightLogs), b = try TrainFixture.metrics(resumedLogs)
        XCTAssertEqual(a.count, 8)
        XCTAssertEqual(b.map { $0["step"] as! Int }, [5, 6, 7, 8])
        XCTAssertEqual(Set(a.map { $0["pipeline"] as! String }), ["pos", "poshard", "hard"])
        for (x, y) in zip(a.suffix(4), b) {
            XCTAssertEqual(x["batch_hash"] as? String, y["batch_hash"] as? String, "batch of step \(x["step"]!)")
            XCTAssertEqual(x["batch_sample_ids"] as? String, y["batch_sample_ids"] as? String)
            XCTAssertEqual(x["loss"] as? Double, y["loss"] as? Double, "loss of step \(x["step"]!)")
        }
        // Bit-identical weights and AdamW moments.
        let final1 = try TrainFixture.floatSections(straightOut.appendingPathComponent("dpr_biencoder.8"))
        let final2 = try TrainFixture.floatSections(resumedOut.appendingPathComponent("dpr_biencoder.8"))
        XCTAssertEqual(Set(final1.keys), Set(final2.keys))
        XCTAssertGreaterThan(final1.count, 70)
        for (name, values) in final1 {
            let other = try XCTUnwrap(final2[name])
            XCTAssertTrue(values.elementsEqual(other) { $0.bitPattern == $1.bitPattern }, "\(name) differs after resume")
        }
        // Training did move the weights (the comparison is not trivially between two copies of the start).
        let start = try TrainFixture.floatSections(half)
        XCTAssertNotEqual(start["question_model.encoder.layer.0.attention.self.query.weight"],
                          final1["question_model.encoder.layer.0.attention.self.query.weight"])
        let state1 = try CheckpointFile(url: straightOut.appendingPathComponent("dpr_biencoder.8")).json(TrainingCheckpoint.stateSection, as: TrainerState.self)
        let state2 = try CheckpointFile(url: resumedOut.appendingPathComponent("dpr_biencoder.8")).json(TrainingCheckpoint.stateSection, as: TrainerState.self)
        XCTAssertEqual(state1, state2)
    }

    /// Must show 3: on demo data a short run's mean loss over its last 20% of steps is clearly
    /// below that of its first 20%, for pos, poshard+hard and inbatch.
    func testLossFalls() throws {
        let ds = try TrainFixture.dataset(dir, samples: 200)
        for (mode, steps) in [("pos", 60), ("poshard+hard", 60), ("inbatch", 60)] {
            let name = mode.replacingOccurrences(of: "+", with: "-")
            let logs = dir.appendingPathComponent(name + "/logs")
            try TrainFixture.train([
                "train_mode=\(mode)", "pretrained_model_cfg=\(TrainFixture.tinyBert)",
                "bytedataset.pos=\(ds)", "bytedataset.poshard=\(ds)", "bytedataset.hard.hardneg=\(ds)",
                "bytedataset.hard.randneg=\(ds)", "bytedataset.inbatch=\(ds)", "max_length=48",
                "pipeline.pos.forward_batch_size=8", "pipeline.pos.contrastive_size=8", "pipeline.inbatch.forward_batch_size=8",
                "pipeline.poshard.forward_batch_size=4", "pipeline.hard.forward_batch_size=4",
                "learning_rate=1e-3", "warmup_steps=5", "total_updates=\(steps)", "save_checkpoint_freq=1000",
                "output_dir=\(dir.appendingPathComponent(name + "/ckpt").path)", "log_dir=\(logs.path)",
            ])
            let losses = try TrainFixture.metrics(logs).map { $0["loss"] as! Double }
            XCTAssertEqual(losses.count, steps)
            let n = steps / 5
            let first = losses.prefix(n).reduce(0, +) / Double(n), last = losses.suffix(n).reduce(0, +) / Double(n)
            print("\(mode): mean loss of the first \(n) steps \(first), of the last \(n) steps \(last)")
            XCTAssertLessThan(last, 0.9 * first, "\(mode): loss did not fall (first 20% \(first), last 20% \(last))")
        }
    }

    /// `--config FILE.yaml` (nested mappings) sets parameters that key=value arguments override;
    /// the CUDA/fp16 keys of the original are accepted with a warning; a broken YAML file is named.
    func testYAMLConfigWithOverridesAndCUDAKeysWarned() throws {
        let ds = try TrainFixture.dataset(dir, samples: 20)
        let yaml = dir.appendingPathComponent("train.yaml")
        try """
            train_mode: pos
            pretrained_model_cfg: \(TrainFixture.tinyBert)
            bytedataset:
              pos: \(ds)
            pipeline:
              pos:
                forward_batch_size: 4
                contrastive_size: 2
            learning_rate: 1e-3
            adam_betas: [0.8, 0.99]
            max_length: 32
            total_updates: 100
            warmup_steps: 0
            no_cuda: true
            fp16: false
            local_rank: -1
            output_dir: \(dir.appendingPathComponent("ckpt").path)
            log_dir: \(dir.appendingPathComponent("logs").path)
            """.write(to: yaml, atomically: true, encoding: .utf8)
        let r = try TrainFixture.train(["--config", yaml.path, "total_updates=2", "save_checkpoint_freq=2"])
        for key in ["no_cuda", "fp16", "local_rank"] {
            XCTAssertTrue(r.stderr.contains("warning: \(key)="), "no warning for \(key): \(r.stderr)")
        }
        let file = try CheckpointFile(url: dir.appendingPathComponent("ckpt/dpr_biencoder.2"))
        let saved = try file.json(TrainingCheckpoint.configSection, as: TrainingConfig.self)
        XCTAssertEqual(saved.totalUpdates, 2, "the key=value argument overrides the YAML value")
        XCTAssertEqual(saved.pipeline.pos.forwardBatchSize, 4)
        XCTAssertEqual(saved.pipeline.pos.contrastiveSize, 2)
        XCTAssertEqual(saved.learningRate, 1e-3)
        XCTAssertEqual(saved.adamBetas, [0.8, 0.99])
        XCTAssertEqual(try TrainFixture.metrics(dir.appendingPathComponent("logs")).count, 2)

        let broken = dir.appendingPathComponent("broken.yaml")
        try "train_mode: [pos\n".write(to: broken, atomically: true, encoding: .utf8)
        let bad = try TrainFixture.train(["--config", broken.path], status: 1)
        XCTAssertTrue(bad.stderr.contains("--config \(broken.path): not valid YAML"), bad.stderr)
        let unknown = dir.appendingPathComponent("unknown.yaml")
        try "pipeline:\n  pos:\n    forward_batchsize: 4\n".write(to: unknown, atomically: true, encoding: .utf8)
        let u = try TrainFixture.train(["--config", unknown.path], status: 1)
        XCTAssertTrue(u.stderr.contains("unknown parameter 'pipeline.pos.forward_batchsize'; did you mean 'pipeline.pos.forward_batch_size'?"), u.stderr)
    }

    /// fix_ctx_encoder, projection_dim, cosine and grad cache through the whole loop: the context
    /// encoder never moves (and has no optimizer state), the question encoder and its projection do,
    /// and the export carries the projection head.
    func testFixedContextEncoderProjectionCosine() throws {
        let ds = try TrainFixture.dataset(dir, samples: 20)
        let out = dir.appendingPathComponent("ckpt")
        try TrainFixture.train([
            "train_mode=pos", "pretrained_model_cfg=\(TrainFixture.tinyBert)", "bytedataset.pos=\(ds)", "max_length=32",
            "pipeline.pos.forward_batch_size=4", "pipeline.pos.contrastive_size=3", "fix_ctx_encoder=true", "projection_dim=16",
            "sim_func=cosine", "grad_cache=true", "weight_decay=0.1", "learning_rate=1e-3", "warmup_steps=0", "total_updates=2",
            "save_checkpoint_freq=1", "output_dir=\(out.path)", "log_dir=\(dir.appendingPathComponent("logs").path)",
        ])
        let first = try TrainFixture.floatSections(out.appendingPathComponent("dpr_biencoder.1"))
        let second = try TrainFixture.floatSections(out.appendingPathComponent("dpr_biencoder.2"))
        XCTAssertEqual(first["question_model.encode_proj.weight"]?.count, 16 * 64)
        XCTAssertNotEqual(first["question_model.encode_proj.weight"], second["question_model.encode_proj.weight"])
        XCTAssertNotEqual(first["question_model.encoder.layer.1.output.dense.weight"], second["question_model.encoder.layer.1.output.dense.weight"])
        let moved = second.filter { $0.key.hasPrefix("ctx_model.") && $0.value != first[$0.key] }.map(\.key).sorted()
        XCTAssertEqual(moved, [], "moved although fix_ctx_encoder=true")
        // No optimizer state for the frozen encoder: its slots keep zero moments.
        let file = try CheckpointFile(url: out.appendingPathComponent("dpr_biencoder.2"))
        let loaded = try TrainingCheckpoint.loadModel(out.appendingPathComponent("dpr_biencoder.2")).model
        let m = try file.floats("optimizer.exp_avg")
        XCTAssertTrue(m[loaded.context.layout.range].allSatisfy { $0 == 0 })
        XCTAssertTrue(m[loaded.question.layout.range].contains { $0 != 0 })
        let exported = dir.appendingPathComponent("export")
        let r = try Command.srdpr(["export", "--checkpoint", out.appendingPathComponent("dpr_biencoder.2").path, "--output", exported.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let q = try BiEncoder.load(directory: exported.appendingPathComponent("question_encoder"), projectionDim: 16)
        let s = q.question.layout
        XCTAssertEqual(Array(q.parameters.buffer[s.projW!..<(s.projW! + 16 * 64)]), second["question_model.encode_proj.weight"])
    }
}
