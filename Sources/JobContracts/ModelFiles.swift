import Foundation
import Model

/// The pretrained model's files a training checkpoint carries, so that `srdpr export` and `encode`
/// need nothing but the checkpoint.
public struct ModelFiles: Sendable {
    /// config.json as the run used it (sorted keys).
    public var config: [UInt8]
    public var vocab: [UInt8]
    public var tokenizerConfig: [UInt8]?

    /// Reads vocab.txt and tokenizer_config.json (if any) of `directory`; `bertConfig` is the
    /// configuration already parsed from its config.json.
    public init(directory: URL, bertConfig: BertConfig) throws {
        config = Array(try JSONSerialization.data(withJSONObject: bertConfig.jsonObject(), options: [.sortedKeys]))
        vocab = Array(try Foundation.Data(contentsOf: directory.appendingPathComponent("vocab.txt")))
        tokenizerConfig = (try? Foundation.Data(contentsOf: directory.appendingPathComponent("tokenizer_config.json"))).map(Array.init)
    }
}
