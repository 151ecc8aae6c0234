import Foundation
import Model
import TestSupport
import XCTest

/// Bad model input gives a typed error whose message names the file, tensor or limit.
final class BadInputTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-badinput") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func copyTinyBert() throws {
        for name in ["config.json", "vocab.txt", "model.safetensors"] {
            try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/\(name)"), to: dir.appendingPathComponent(name))
        }
    }

    func expectError(_ fragments: [String], _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("expected an error mentioning \(fragments)", file: file, line: line)
        } catch {
            let message = "\(error)"
            XCTAssertTrue(error is ModelError, "not a ModelError: \(message)", file: file, line: line)
            for f in fragments { XCTAssertTrue(message.contains(f), "\"\(message)\" should mention \(f)", file: file, line: line) }
        }
    }

    func testDirectoryWithoutConfig() throws {
        try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        expectError(["config.json", "missing"]) { _ = try BertEncoder.load(directory: self.dir) }
    }

    func testConfigOfAnotherArchitecture() throws {
        try copyTinyBert()
        let url = dir.appendingPathComponent("config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        json["model_type"] = "roberta"
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        expectError(["roberta", "config.json", "not supported"]) { _ = try BertEncoder.load(directory: self.dir) }
    }

    func testTruncatedSafetensors() throws {
        try copyTinyBert()
        let url = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: url)
        try data.prefix(data.count / 2).write(to: url)
        expectError(["model.safetensors", "truncated"]) { _ = try BertEncoder.load(directory: self.dir) }
        // Cut inside the header too.
        try data.prefix(100).write(to: url)
        expectError(["model.safetensors", "byte"]) { _ = try BertEncoder.load(directory: self.dir) }
    }

    func testTruncatedPytorchBin() throws {
        try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/config.json"), to: dir.appendingPathComponent("config.json"))
        let data = try Data(contentsOf: Fixtures.url("tiny-bert/pytorch_model.bin"))
        try data.prefix(data.count - 5000).write(to: dir.appendingPathComponent("pytorch_model.bin"))
        expectError(["pytorch_model.bin"]) { _ = try BertEncoder.load(directory: self.dir) }
    }

    func testTensorWithWrongShape() throws {
        try copyTinyBert()
        // Rewrite the weights with one tensor transposed-shaped.
        let source = try SafeTensorsFile(url: Fixtures.url("tiny-bert/model.safetensors"))
        var tensors: [(String, [Int], [Float])] = []
        for name in source.names {
            let t = (shape: source.tensors[name]!.shape, floats: try source.floats(name))
            tensors.append((name, name == "encoder.layer.1.intermediate.dense.weight" ? [64, 256] : t.shape, t.floats))
        }
        let buffers = tensors.map { $0.2 }
        try buffers.withUnsafeBufferPointers { pointers in
            try WeightSource.writeSafetensors(zip(tensors, pointers).map { (name: $0.0.0, shape: $0.0.1, data: $0.1) },
                                      to: dir.appendingPathComponent("model.safetensors"))
        }
        expectError(["encoder.layer.1.intermediate.dense.weight", "[64, 256]", "[256, 64]"]) {
            _ = try BertEncoder.load(directory: self.dir)
        }
    }

    func testMissingTensorIsNamed() throws {
        try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/config.json"), to: dir.appendingPathComponent("config.json"))
        let source = try SafeTensorsFile(url: Fixtures.url("tiny-bert/model.safetensors"))
        let kept = source.names.filter { $0 != "embeddings.LayerNorm.bias" }
        let data = try kept.map { (shape: source.tensors[$0]!.shape, floats: try source.floats($0)) }
        let floats = data.map(\.floats)
        try floats.withUnsafeBufferPointers { pointers in
            try WeightSource.writeSafetensors((0..<kept.count).map { (name: kept[$0], shape: data[$0].shape, data: pointers[$0]) },
                                      to: dir.appendingPathComponent("model.safetensors"))
        }
        expectError(["embeddings.LayerNorm.bias", "missing"]) { _ = try BertEncoder.load(directory: self.dir) }
    }

    /// Not bad input: `bert.`-prefixed names (BertForPreTraining-style files) load, and `pooler.*`,
    /// `embeddings.position_ids` and other extra tensors are ignored.
    func testPrefixedNamesAndExtraTensorsAreAccepted() throws {
        try FileManager.default.copyItem(at: Fixtures.url("tiny-bert/config.json"), to: dir.appendingPathComponent("config.json"))
        let source = try SafeTensorsFile(url: Fixtures.url("tiny-bert/model.safetensors"))
        var names = source.names.map { "bert." + $0 }
        var data = try source.names.map { try source.floats($0) }
        var shapes = source.names.map { source.tensors[$0]!.shape }
        names += ["bert.pooler.dense.weight", "bert.pooler.dense.bias", "bert.embeddings.position_ids", "cls.predictions.bias"]
        data += [[Float](repeating: 1, count: 64 * 64), [Float](repeating: 1, count: 64), (0..<128).map(Float.init), [Float](repeating: 0, count: 30522)]
        shapes += [[64, 64], [64], [1, 128], [30522]]
        try data.withUnsafeBufferPointers { pointers in
            try WeightSource.writeSafetensors((0..<names.count).map { (name: names[$0], shape: shapes[$0], data: pointers[$0]) },
                                      to: dir.appendingPathComponent("model.safetensors"))
        }
        let a = try BertEncoder.load(directory: dir)
        let b = try BertEncoder.load(directory: Fixtures.url("tiny-bert"))
        XCTAssertEqual(a.parameters.toArray(), b.parameters.toArray())
    }

    func testSequenceLongerThanMaxPositions() throws {
        let encoder = try BertEncoder.load(directory: Fixtures.url("tiny-bert"))
        let batch = try TokenBatch(sequences: [[Int32](repeating: 1000, count: 129)])
        expectError(["129", "max_position_embeddings 128"]) { _ = try encoder.forward(batch) }
    }

    func testTokenIdOutsideVocabulary() throws {
        let encoder = try BertEncoder.load(directory: Fixtures.url("tiny-bert"))
        let batch = try TokenBatch(sequences: [[101, 40000, 102]])
        expectError(["40000", "vocab"]) { _ = try encoder.forward(batch) }
    }

    func testPickleThatWouldRunCodeIsRefused() throws {
        // A zip with a data.pkl that calls os.system: GLOBAL must be refused, never executed.
        let pickle: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\nX".utf8) + [2, 0, 0, 0] + Array("id".utf8) + [0x85] + Array("R.".utf8)
        let url = dir.appendingPathComponent("pytorch_model.bin")
        try StoredZip.write([("archive/data.pkl", pickle)], to: url)
        expectError(["os", "system"]) { _ = try TorchCheckpoint(url: url) }
    }
}

/// Writes a minimal stored (uncompressed) zip, for the tests.
enum StoredZip {
    static func write(_ files: [(String, [UInt8])], to url: URL) throws {
        var out = [UInt8](), central = [UInt8]()
        func le(_ v: Int, _ n: Int) -> [UInt8] { (0..<n).map { UInt8((v >> (8 * $0)) & 0xff) } }
        for (name, data) in files {
            let offset = out.count, n = Array(name.utf8)
            out += le(0x0403_4b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4)
                + le(data.count, 4) + le(data.count, 4) + le(n.count, 2) + le(0, 2) + n + data
            central += le(0x0201_4b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(0, 4)
                + le(data.count, 4) + le(data.count, 4) + le(n.count, 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 2)
                + le(0, 4) + le(offset, 4) + n
        }
        let cdOffset = out.count
        out += central
        out += le(0x0605_4b50, 4) + le(0, 2) + le(0, 2) + le(files.count, 2) + le(files.count, 2)
            + le(central.count, 4) + le(cdOffset, 4) + le(0, 2)
        try Data(out).write(to: url)
    }
}

extension Array where Element == [Float] {
    /// Copies the arrays into owned buffers that stay valid while `body` runs.
    func withUnsafeBufferPointers<R>(_ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
        let buffers = map { array -> FloatBuffer in
            let b = FloatBuffer(count: array.count)
            for (i, v) in array.enumerated() { b.pointer[i] = v }
            return b
        }
        return try withExtendedLifetime(buffers) {
            try body(buffers.map { UnsafeBufferPointer(start: $0.pointer, count: $0.count) })
        }
    }
}
