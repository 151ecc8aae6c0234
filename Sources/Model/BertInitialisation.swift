import Data
import Foundation

/// BERT's initialisation (transformers' `_init_weights`) of a model's parameters: weights from
/// normal(0, std), biases 0, LayerNorm weight 1 and bias 0, reproducible from the seed on every
/// platform (Box-Muller over ``SplitMix64``).
public enum BertInitialisation {
    /// Initialises every slot (by its name) in the buffer at `parameters`, in order.
    public static func initialise(_ slots: [TensorSlot], parameters: UnsafeMutablePointer<Float>, std: Double, seed: UInt64) {
        var normal = NormalSamples(seed: seed)
        for slot in slots {
            let values = parameters + slot.offset
            if slot.name.hasSuffix("LayerNorm.weight") {
                values.update(repeating: 1, count: slot.count)
            } else if slot.name.hasSuffix("bias") {
                values.update(repeating: 0, count: slot.count)
            } else {
                for i in 0..<slot.count { values[i] = Float(normal.next() * std) }
            }
        }
    }

    /// Standard normal samples, two per pair of uniforms (Box-Muller).
    struct NormalSamples {
        var uniform: SplitMix64
        var spare: Double?

        init(seed: UInt64) { uniform = SplitMix64(seed: seed) }

        mutating func next() -> Double {
            if let s = spare { spare = nil; return s }
            let r = (-2 * Foundation.log(uniform.nextUnitInterval())).squareRoot(), theta = 2 * Double.pi * uniform.nextUnitInterval()
            spare = r * sin(theta)
            return r * cos(theta)
        }
    }
}

extension BertInitialisation {
    /// `initializer_range` of a config.json (transformers' default 0.02 when absent).
    public static func standardDeviation(configFile url: URL) throws -> Double {
        guard let data = try? Foundation.Data(contentsOf: url),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let range = json["initializer_range"] as? Double else { return 0.02 }
        guard range > 0, range.isFinite else {
            throw ModelError.invalidConfig(file: url.path, reason: "initializer_range must be positive, got \(range)")
        }
        return range
    }
}

extension BertEncoder {
    /// A BERT of `config` with BERT's random initialisation (``BertInitialisation``) and a zero
    /// [PAD] row of the word embeddings (nn.Embedding(padding_idx=pad_token_id)).
    public static func randomlyInitialised(config: BertConfig, std: Double = 0.02, seed: UInt64) -> BertEncoder {
        let encoder = BertEncoder(config: config)
        let p = encoder.parameters.pointer
        BertInitialisation.initialise(encoder.layout.slots, parameters: p, std: std, seed: seed)
        if config.padTokenId >= 0, config.padTokenId < config.vocabSize {
            (p + encoder.layout.wordEmb + config.padTokenId * config.hiddenSize).update(repeating: 0, count: config.hiddenSize)
        }
        return encoder
    }
}
