import Foundation
import Model

/// A Hugging Face `config.json`; a configuration that loads must also pass its own checks and
/// describe a model whose head size is a whole number.
enum BertConfigTarget {
    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let config = try? BertConfig.decode(Data(buffer: bytes), file: "config.json") else { return }
        if (try? config.validate()) == nil { violated("BertConfig.decode accepted a configuration validate() refuses") }
        _ = config.headDim
        _ = config.jsonObject()
    }
}
