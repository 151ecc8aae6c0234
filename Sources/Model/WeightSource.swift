import Foundation

/// A weight file of a Hugging Face directory: `model.safetensors` or `pytorch_model.bin`.
public enum WeightSource {
    case safetensors(SafeTensorsFile)
    case torch(TorchCheckpoint)

    public static func open(_ url: URL) throws -> WeightSource {
        if url.pathExtension == "safetensors" {
            guard FileManager.default.fileExists(atPath: url.path) else { throw ModelError.missingFile(url.path) }
            do { return .safetensors(try SafeTensorsFile(url: url)) } catch {
                throw ModelError.malformedWeights(file: url.path, offset: 0, reason: "\(error)")
            }
        }
        return .torch(try TorchCheckpoint(url: url))
    }

    /// Finds the weights of a directory, preferring `model.safetensors`.
    public static func open(directory: URL) throws -> WeightSource {
        for name in ["model.safetensors", "pytorch_model.bin"] {
            let url = directory.appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: url.path) { return try open(url) }
        }
        throw ModelError.missingFile("\(directory.path)/model.safetensors (or pytorch_model.bin): no weights in the model directory")
    }

    public var path: String {
        switch self {
        case .safetensors(let f): return f.path
        case .torch(let f): return f.path
        }
    }

    public var names: [String] {
        switch self {
        case .safetensors(let f): return f.names
        case .torch(let f): return f.names
        }
    }

    /// The shape of tensor `name` as the file declares it (nothing read), nil when absent.
    public func shape(of name: String) -> [Int]? {
        switch self {
        case .safetensors(let f): return f.tensors[name]?.shape
        case .torch(let f): return f.tensors[name]?.shape
        }
    }

    public func tensor(_ name: String) throws -> LoadedTensor {
        switch self {
        case .safetensors(let f):
            guard let info = f.tensors[name] else { throw ModelError.missingTensor(file: f.path, name: name) }
            do { return LoadedTensor(shape: info.shape, floats: try f.floats(name)) } catch {
                throw ModelError.unsupportedDType(file: f.path, name: name, dtype: info.dtype.rawValue)
            }
        case .torch(let f): return try f.tensor(name)
        }
    }

    /// Copies every tensor of `layout` into `params`. File names may carry a prefix (`bert.`,
    /// or `filePrefix` such as `question_model.`); `pooler.*`, `embeddings.position_ids` and other
    /// non-parameters are ignored. Missing or mis-shaped tensors are reported by name.
    public func load(into params: UnsafeMutablePointer<Float>, layout: BertLayout, filePrefix: String = "",
                     optional: Set<String> = []) throws {
        try forEachTensor(of: layout, filePrefix: filePrefix, optional: optional) { slot, floats in
            floats.withUnsafeBufferPointer { (params + slot.offset).update(from: $0.baseAddress!, count: slot.count) }
        }
    }

    /// Reads the tensors of `layout` one at a time, in layout order, as `load` would copy them
    /// (an optional tensor the file lacks is skipped): what hashes weights without holding them all.
    public func forEachTensor(of layout: BertLayout, filePrefix: String = "", optional: Set<String> = [],
                              _ body: (TensorSlot, [Float]) throws -> Void) throws {
        let available = Set(names)
        for slot in layout.slots {
            // With a prefix (a bi-encoder checkpoint) only prefixed names count: never fall back
            // to another encoder's or a bare model's tensors.
            let candidates = filePrefix.isEmpty ? ["bert." + slot.name, slot.name]
                : [filePrefix + slot.name, filePrefix + "bert." + slot.name]
            guard let name = candidates.first(where: { available.contains($0) }) else {
                if optional.contains(slot.name) { continue }
                throw ModelError.missingTensor(file: path, name: filePrefix + slot.name)
            }
            let t = try tensor(name)
            guard t.shape == slot.shape else {
                throw ModelError.shapeMismatch(file: path, name: name, expected: slot.shape, found: t.shape)
            }
            try body(slot, t.floats)
        }
    }

    /// Writes Float32 tensors as a safetensors file (`{"format": "pt"}` metadata, as transformers writes).
    public static func writeSafetensors(_ tensors: [(name: String, shape: [Int], data: UnsafeBufferPointer<Float>)], to url: URL) throws {
        var writer = SafeTensorsWriter()
        writer.metadata = ["format": "pt"]
        for t in tensors { writer.add(t.name, shape: t.shape, floats: t.data) }
        do { try writer.write(to: url) } catch {
            throw ModelError.ioError(file: url.path, reason: "\(error)")
        }
    }
}
