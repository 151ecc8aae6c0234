import Foundation

/// The reference of every training parameter, printed by `srdpr train --help`: built from the
/// parser's own table (`TrainingConfig.parameters`), so a key added there is listed with its
/// default at once; only its one-line meaning comes from `meanings` below.
extension TrainingConfig {
    /// One line of meaning per dotted key. A key of the parser's table missing here is listed as
    /// "(no description yet)" and `ParameterReferenceTests` fails until one is added.
    static let meanings: [String: String] = [
        "pretrained_model_cfg": "Hugging Face BERT directory the encoders start from (config.json, vocab.txt, model.safetensors or pytorch_model.bin); required",
        "encoder_model_type": "encoder family; only hf_bert (BERT) is implemented",
        "pretrained_file": "compatibility only, ignored: start from pretrained_model_cfg, resume with model_file",
        "model_file": "checkpoint to resume from, exactly where it stopped (weights, optimizer, data order)",
        "resume": "latest: resume from the newest valid checkpoint in output_dir (a fresh run when there is none); null: do not",
        "overwrite_output_dir": "true: delete the checkpoints an earlier run left in output_dir and start over (else such a run is refused)",
        "projection_dim": "size of a linear projection after [CLS]; 0 = none",
        "seed": "seed of the data order (every pipeline's shuffle) and of dropout",
        "adam_eps": "AdamW epsilon",
        "adam_betas": "AdamW betas, (beta1, beta2)",
        "max_grad_norm": "clip the global gradient norm to this",
        "weight_decay": "AdamW weight decay (not applied to biases and LayerNorm weights)",
        "learning_rate": "peak learning rate (linear warm-up, then linear decay to 0 at total_updates)",
        "warmup_steps": "updates of linear learning-rate warm-up",
        "total_updates": "optimizer updates of the whole run (all pipelines together)",
        "dropout": "dropout probability of both encoders",
        "loss_scale": "the loss is divided by this before backward (the original's scaling)",
        "sim_func": "score of a question and a passage: dot_product or cosine",
        "pooling": "sequence vector: cls = the [CLS] token (the original), mean = mean of the unmasked tokens (sentence-transformers); default: the pretrained model's 1_Pooling/config.json, else cls",
        "sim_scale": "factor on the similarity scores before the softmax of every loss (1 = the original; 20 = sentence-transformers' ranking loss with cosine)",
        "fix_ctx_encoder": "true: train the question encoder only",
        "grad_cache": "true: gradient caching (encode in chunks; less memory, same gradients)",
        "q_chunk_size": "with grad_cache: questions encoded at a time",
        "ctx_chunk_size": "with grad_cache: passages encoded at a time",
        "do_lower_case": "lower-case and strip accents before WordPiece (uncased models)",
        "max_length": "tokens per question or passage (capped at the model's max_position_embeddings)",
        "train_mode": "pipelines joined by '+': inbatch, pos, poshard, hard (e.g. pos+poshard+hard)",
        "regulate_factor": "steps of the first pipeline per step of each other one in the schedule",
        "bytedataset.inbatch": "ByteDataset of the inbatch pipeline (srdpr create-dataset)",
        "bytedataset.pos": "ByteDataset of the pos pipeline",
        "bytedataset.poshard": "ByteDataset of the poshard pipeline",
        "bytedataset.hard.hardneg": "ByteDataset of the hard pipeline: only samples WITH hard negatives (its positive is one of them)",
        "bytedataset.hard.randneg": "ByteDataset the hard pipeline draws random negatives from (with use_randneg)",
        "pipeline.inbatch.forward_batch_size": "questions per inbatch step (each against every passage of the batch)",
        "pipeline.inbatch.use_hardneg": "add each question's hard negatives to the inbatch passages",
        "pipeline.inbatch.use_num_hardnegs": "hard negatives per question when use_hardneg",
        "pipeline.inbatch.gradient_accumulate_steps": "inbatch batches accumulated into one update",
        "pipeline.inbatch.logging_step": "inbatch updates averaged per TensorBoard inbatch/loss point",
        "pipeline.pos.forward_batch_size": "questions per pos step",
        "pipeline.pos.contrastive_size": "other samples' positives each pos question is ranked against",
        "pipeline.pos.gradient_accumulate_steps": "pos batches accumulated into one update",
        "pipeline.pos.logging_step": "pos updates averaged per TensorBoard pos/loss point",
        "pipeline.poshard.forward_batch_size": "questions per poshard step",
        "pipeline.poshard.contrastive_size": "hard negatives each poshard question's positive is ranked against",
        "pipeline.poshard.gradient_accumulate_steps": "poshard batches accumulated into one update",
        "pipeline.poshard.logging_step": "poshard updates averaged per TensorBoard poshard/loss point",
        "pipeline.hard.forward_batch_size": "questions per hard step",
        "pipeline.hard.contrastive_size": "random negatives each hard question's hard negative is ranked against",
        "pipeline.hard.use_randneg": "draw part of the hard pipeline's negatives from bytedataset.hard.randneg",
        "pipeline.hard.gradient_accumulate_steps": "hard batches accumulated into one update",
        "pipeline.hard.logging_step": "hard updates averaged per TensorBoard hard/loss point",
        "global_loss_buf_sz": "bytes of the buffer that gathers embeddings across workers (multi-worker runs)",
        "allreduce_dtype": "gradient all-reduce payloads between workers: fp32 (exact), or bf16 (half the bytes on the wire, sums kept in fp32, gradients rounded to bfloat16); no effect with one process",
        "log_batch_step": "a log line every this many updates",
        "output_dir": "directory of the checkpoints {checkpoint_file_name}.{step}; required",
        "log_dir": "directory of metrics.jsonl, TensorBoard event files and config.yaml",
        "checkpoint_file_name": "file-name prefix of the checkpoints",
        "keep_checkpoint_max": "checkpoints kept in output_dir (the oldest are deleted; MiniLM-L6: ~540 MB each)",
        "save_checkpoint_freq": "a checkpoint every this many updates (and at the end, and on Ctrl-C)",
        "eval.corpus": "dev passages evaluated during training, JSON lines {id (or BEIR _id), title, text}; with eval.qrels",
        "eval.queries": "dev queries, JSON lines {_id, text} or {id, question}; eval.qrels is then TREC qrels or a BEIR qrels TSV",
        "eval.qrels": "dev judgements: JSON lines {question, positive_ids}, or (with eval.queries) TREC / BEIR qrels, graded",
        "eval.beir": "a BEIR directory as the dev set (corpus.jsonl, queries.jsonl, qrels/<eval.split>.tsv); instead of eval.corpus",
        "eval.split": "the qrels split of eval.beir (dev when a dev set is given)",
        "eval.k": "cut-offs of the dev top-k accuracy and recall (MRR and nDCG also at 10; 1,5,20,100 when a dev set is given)",
        "eval_every": "evaluate the dev set every this many updates and at the end (0 or null with a dev set: only at the end); "
            + "rows with \"eval\" in metrics.jsonl, eval/<metric> in TensorBoard",
        "keep_best": "keep the checkpoint with the best value of this dev metric as {checkpoint_file_name}.best (e.g. mrr@10)",
    ]

    /// Parameters of the table that are accepted but change nothing, and why (each warns when set).
    static let ignoredParameters: [String: String] = [
        "pretrained_file": "the encoders start from pretrained_model_cfg; resume a checkpoint with model_file",
    ]

    /// The reference text: every parameter with its default and meaning, then the keys accepted
    /// only for compatibility. Lines stay under 80 columns (help output is wrapped there, and a
    /// wrapped line would lose its indentation).
    public static func parameterReference() -> String {
        let defaults = TrainingConfig()
        var lines = ["PARAMETERS (KEY=VALUE; each with its default, then its meaning):"]
        for p in parameters {
            lines.append("  \(p.key) = \(displayDefault(p.show(defaults)))")
            lines += wrap(meanings[p.key] ?? "(no description yet)", width: 72).map { "      " + $0 }
        }
        lines.append("")
        lines += wrap("Also accepted: " + aliases.keys.sorted().map { "\($0) (= \(aliases[$0]!))" }.joined(separator: ", ") + ".", width: 78)
        lines += wrap("Accepted for compatibility with the original and ignored with a warning: "
            + compatibilityKeys.sorted().joined(separator: ", ") + "; CUDA/fp16 settings, meaningless on CPU: "
            + cudaKeys.sorted().joined(separator: ", ") + ".", width: 78)
        lines += wrap("The original's dev_file (validation on DPR-format samples) is refused: use eval.* and eval_every; "
            + "its eval_per_epoch has no effect without dev_file, as in the original (a warning says so).", width: 78)
        return lines.joined(separator: "\n")
    }

    /// `text` in lines of at most `width` characters, broken at spaces (a longer word stands alone).
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if !current.isEmpty, current.count + 1 + word.count > width {
                lines.append(current)
                current = ""
            }
            current += (current.isEmpty ? "" : " ") + word
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    /// A default as the reference shows it (an empty string is written "").
    static func displayDefault(_ text: String) -> String { text.isEmpty ? "\"\"" : text }

    /// The warning for a parameter of the table that is set but changes nothing.
    static func ignoredWarning(_ key: String, _ value: String) -> String? {
        guard let why = ignoredParameters[key] else { return nil }
        let s = unquote(value)
        if ["", "null", "None", "~"].contains(s) { return nil }
        return "\(key)=\(value) is kept only for compatibility with the original and is ignored: \(why)"
    }

    /// The configuration as YAML that `--config` reads back (dotted keys, one a line), so that a
    /// run can be repeated. Strings are quoted; unset paths are null.
    public func yaml(header: [String] = []) -> String {
        var out = header.map { "# " + $0 }
        for (key, value) in keyValues() {
            let parameter = Self.parameterIndex[key]!
            let text: String
            switch parameter.expected {
            case "an integer", "a number", "true or false": text = value
            case "a path, or null": text = value == "null" ? "null" : JSONText.string(value)
            default: text = JSONText.string(value)
            }
            out.append("\(key): \(text)")
        }
        return out.joined(separator: "\n") + "\n"
    }
}
