import ArgumentParser
import Foundation
import Model

/// `srdpr init-model --config DIR --output DIR [--seed S]`: a randomly initialised BERT as a
/// Hugging Face directory, for training from scratch (the demo ships only a config and a vocabulary).
struct InitModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-model",
        abstract: "Write a randomly initialised BERT (Hugging Face directory) from a config.json.",
        discussion: """
            BERT's initialisation: weights from normal(0, initializer_range), biases 0, LayerNorm weight 1 \
            and bias 0, the [PAD] row of the word embeddings 0. Writes model.safetensors and config.json, \
            and copies vocab.txt / tokenizer_config.json from the config directory.
            """)

    @Option(help: "Directory with config.json (and vocab.txt, tokenizer_config.json).")
    var config: String

    @Option(help: "Output directory.")
    var output: String

    @Option(help: "Random seed.")
    var seed: UInt64 = 12345

    func run() throws {
        let dir = URL(fileURLWithPath: config)
        let configURL = dir.appendingPathComponent("config.json")
        let bert = try BertConfig.load(configURL)
        var std = 0.02
        if let data = try? Data(contentsOf: configURL),
           let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
           let range = json["initializer_range"] as? Double {
            guard range > 0, range.isFinite else { throw CLIError("\(configURL.path): initializer_range must be positive, got \(range)") }
            std = range
        }
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("vocab.txt").path) else {
            throw CLIError("\(dir.path) has no vocab.txt; the model directory needs the tokenizer's vocabulary")
        }
        let encoder = BertEncoder(config: bert)
        var rng = NormalGenerator(seed: seed)
        let p = encoder.parameters.pointer
        for slot in encoder.layout.slots {
            let values = p + slot.offset
            if slot.name.hasSuffix("LayerNorm.weight") {
                values.update(repeating: 1, count: slot.count)
            } else if slot.name.hasSuffix("bias") {
                values.update(repeating: 0, count: slot.count)
            } else {
                for i in 0..<slot.count { values[i] = Float(rng.next() * std) }
            }
        }
        // nn.Embedding(padding_idx=pad_token_id) starts with a zero [PAD] row.
        if bert.padTokenId >= 0, bert.padTokenId < bert.vocabSize {
            (p + encoder.layout.wordEmb + bert.padTokenId * bert.hiddenSize).update(repeating: 0, count: bert.hiddenSize)
        }
        let out = URL(fileURLWithPath: output)
        try encoder.save(to: out, tokenizerFrom: dir)
        print("wrote \(out.path) (\(encoder.layout.slots.reduce(0) { $0 + $1.count }) parameters, seed \(seed))")
    }
}

/// Standard normal samples (Box-Muller over SplitMix64): reproducible from the seed on every platform.
struct NormalGenerator {
    var state: UInt64
    var spare: Double?

    init(seed: UInt64) { state = seed }

    mutating func uniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (Double(z >> 11) + 0.5) / 9_007_199_254_740_992
    }

    mutating func next() -> Double {
        if let s = spare { spare = nil; return s }
        let r = (-2 * Foundation.log(uniform())).squareRoot(), theta = 2 * Double.pi * uniform()
        spare = r * sin(theta)
        return r * cos(theta)
    }
}
