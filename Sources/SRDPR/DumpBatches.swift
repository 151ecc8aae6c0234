import ArgumentParser
import Data
import Foundation

/// `srdpr dump-batches KEY=VALUE... [--batches N]`: the batches `train` would consume, as JSON lines.
struct DumpBatches: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump-batches",
        abstract: "Print the training batches of a configuration as JSON lines, without training.",
        discussion: """
            Takes the same key=value parameters as `train` (train_mode, regulate_factor, seed, max_length, \
            bytedataset.*, pipeline.*). One line per batch, in schedule order: {"step": s (0-based update), \
            "pipeline": p, ...} followed by the keys and values of the original's batch dict \
            (question/input_ids, question/attn_mask, ..., ids, duplicate_mask / hardneg_mask / mask). \
            With gradient_accumulate_steps > 1 a step prints that many batches.
            """)

    @Argument(help: "Hydra-style parameters, e.g. train_mode=pos pipeline.pos.forward_batch_size=4 bytedataset.pos=DIR")
    var parameters: [String] = []

    @Option(help: "Number of batches to print.")
    var batches: Int = 8

    @Option(help: "vocab.txt to tokenize with (default: <pretrained_model_cfg>/vocab.txt).")
    var vocab: String?

    func run() throws {
        guard batches >= 0 else { throw ValidationError("--batches must not be negative") }
        let (config, warnings) = try TrainingConfig.parse(parameters)
        for warning in warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        guard let vocabPath = vocab ?? config.pretrainedModelCfg.map({ URL(fileURLWithPath: $0).appendingPathComponent("vocab.txt").path }) else {
            throw CLIError("no vocabulary: pass --vocab PATH or pretrained_model_cfg=DIR (a directory with vocab.txt)")
        }
        let tokenizer = try BertTokenizer(vocabFile: URL(fileURLWithPath: vocabPath), doLowerCase: config.doLowerCase)
        let plan = try TrainingBatches(config: config, tokenizer: tokenizer)
        var printed = 0, step = 0
        while printed < batches {
            let (kind, list) = try plan.batches(forStep: step)
            for batch in list where printed < batches {
                let line = OrderedJSON.object([("step", .int(step)), ("pipeline", .string(kind.rawValue))] + batch.originalKeys())
                print(line.serialized())
                printed += 1
            }
            step += 1
        }
    }
}
