import Foundation

extension BertEncoder {
    /// Saves this encoder as a Hugging Face BERT directory: `model.safetensors` (HF names without
    /// `bert.`, plus `encode_proj.*` when there is a head), `config.json`, and `vocab.txt` /
    /// `tokenizer_config.json` copied from `tokenizerFrom` when given.
    public func save(to directory: URL, tokenizerFrom: URL?) throws {
        let fm = FileManager.default
        do { try fm.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw ModelError.ioError(file: directory.path, reason: "cannot create directory: \(error.localizedDescription)")
        }
        let tensors = layout.slots.map { slot in
            (name: slot.name, shape: slot.shape, data: UnsafeBufferPointer(start: parameters.pointer + slot.offset, count: slot.count))
        }
        try WeightSource.writeSafetensors(tensors, to: directory.appendingPathComponent("model.safetensors"))
        var json = config.jsonObject()
        if layout.projectionDim > 0 { json["projection_dim"] = layout.projectionDim }
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        do { try data.write(to: directory.appendingPathComponent("config.json")) } catch {
            throw ModelError.ioError(file: directory.appendingPathComponent("config.json").path, reason: error.localizedDescription)
        }
        guard let source = tokenizerFrom else { return }
        for name in ["vocab.txt", "tokenizer_config.json", "special_tokens_map.json"] {
            let from = source.appendingPathComponent(name), to = directory.appendingPathComponent(name)
            guard fm.fileExists(atPath: from.path), from.standardizedFileURL != to.standardizedFileURL else { continue }
            try? fm.removeItem(at: to)
            do { try fm.copyItem(at: from, to: to) } catch {
                throw ModelError.ioError(file: to.path, reason: "cannot copy \(name): \(error.localizedDescription)")
            }
        }
    }
}
