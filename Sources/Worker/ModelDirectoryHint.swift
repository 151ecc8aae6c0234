/// What to say when `pretrained_model_cfg` is not a directory: a path (absolute, or starting with
/// `.` or `~`) is simply missing; a bare `org/name` is probably a Hugging Face Hub name, which
/// srdpr does not download.
enum ModelDirectoryHint {
    static func missing(_ value: String, exists: Bool) -> String {
        if exists {
            return "is a file, not a model directory (config.json, vocab.txt and model.safetensors or pytorch_model.bin)"
        }
        let looksLikePath = value.hasPrefix("/") || value.hasPrefix(".") || value.hasPrefix("~")
            || value.split(separator: "/").count > 2 || value.hasSuffix("/")
        if looksLikePath {
            return "no such directory; give the directory of a Hugging Face BERT model (config.json, vocab.txt, weights)"
        }
        return "no such local directory; srdpr does not download models: if this is a Hugging Face Hub name, fetch it first "
            + "(e.g. `huggingface-cli download \(value) --local-dir DIR`) and pass DIR"
    }
}
