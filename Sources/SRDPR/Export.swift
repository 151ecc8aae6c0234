import ArgumentParser
import Foundation
import Model

/// `srdpr export --checkpoint C --output DIR`: the two encoders of a checkpoint as Hugging Face
/// and sentence-transformers directories, with the run's settings.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a checkpoint's encoders as transformers / sentence-transformers directories.",
        discussion: """
            Writes DIR/question_encoder and DIR/ctx_encoder. Each loads with transformers' \
            BertModel.from_pretrained (model.safetensors, config.json, vocab.txt, tokenizer_config.json; a \
            projection head is also saved as encode_proj.*) and with SentenceTransformer(dir) (modules.json, \
            sentence_bert_config.json, 1_Pooling, a Dense module for the projection head, Normalize when \
            sim_func=cosine): SentenceTransformer(dir).encode(texts) gives srdpr's embeddings. For a passage \
            with a title, encode "title [SEP] text"; strip questions and drop one trailing '?' as srdpr does. \
            DIR/srdpr_settings.json keeps sim_func, sim_scale, max_length, pooling and do_lower_case: give DIR \
            as --model to encode, index, search and evaluate.
            """)

    @Option(help: "Checkpoint file written by `srdpr train` (output_dir/{checkpoint_file_name}.{step}).")
    var checkpoint: String

    @Option(help: "Output directory.")
    var output: String

    func run() throws {
        let loaded = try CheckpointModel(url: URL(fileURLWithPath: checkpoint), trainable: false)
        for dir in try ExportDirectory.write(loaded, to: URL(fileURLWithPath: output)) { print(dir.path) }
    }
}
