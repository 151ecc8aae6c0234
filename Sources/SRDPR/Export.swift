import ArgumentParser
import Foundation
import JobContracts

/// `srdpr export --checkpoint C --output DIR`: the two encoders of a checkpoint as Hugging Face directories.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's encoders as Hugging Face BERT directories.",
        discussion: """
            Writes DIR/question_encoder and DIR/ctx_encoder, each with model.safetensors, config.json, \
            vocab.txt and tokenizer_config.json, loadable with transformers' BertModel.from_pretrained \
            (a projection head, if any, is saved as encode_proj.*).
            """)

    @Option(help: "Checkpoint file written by `srdpr train` (output_dir/{checkpoint_file_name}.{step}).")
    var checkpoint: String

    @Option(help: "Output directory.")
    var output: String

    func run() throws {
        for directory in try TrainingCheckpoint.exportEncoders(URL(fileURLWithPath: checkpoint), to: URL(fileURLWithPath: output)) {
            print(directory.path)
        }
    }
}
