import Foundation
import XCTest
import Data
import TestSupport

/// A JSON tree decoded from fixture files, compared by value (101 == 101.0, key order ignored).
enum JSONTree: Decodable, Equatable, CustomStringConvertible {
    case number(Double)
    case bool(Bool)
    case string(String)
    case null
    case array([JSONTree])
    case object([String: JSONTree])

    init(from decoder: Decoder) throws {
        if var list = try? decoder.unkeyedContainer() {
            var items: [JSONTree] = []
            while !list.isAtEnd { items.append(try list.decode(JSONTree.self)) }
            self = .array(items)
            return
        }
        if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            var dict: [String: JSONTree] = [:]
            for key in keyed.allKeys { dict[key.stringValue] = try keyed.decode(JSONTree.self, forKey: key) }
            self = .object(dict)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null }
        else if let b = try? single.decode(Bool.self) { self = .bool(b) }
        else if let d = try? single.decode(Double.self) { self = .number(d) }
        else { self = .string(try single.decode(String.self)) }
    }

    /// Our ordered output, as a tree.
    init(_ value: OrderedJSON) {
        switch value {
        case .int(let v): self = .number(Double(v))
        case .double(let v): self = .number(v)
        case .literal(let text): self = .number(Double(text) ?? .nan)
        case .bool(let v): self = .bool(v)
        case .string(let v): self = .string(v)
        case .null: self = .null
        case .array(let items): self = .array(items.map(JSONTree.init))
        case .object(let pairs): self = .object(Dictionary(pairs.map { ($0.0, JSONTree($0.1)) }, uniquingKeysWith: { a, _ in a }))
        }
    }

    subscript(key: String) -> JSONTree? { if case .object(let d) = self { return d[key] } else { return nil } }
    var items: [JSONTree] { if case .array(let a) = self { return a } else { return [] } }
    var int: Int? { if case .number(let d) = self { return Int(d) } else { return nil } }
    var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }

    var description: String {
        switch self {
        case .number(let d): return d == d.rounded() ? String(Int(d)) : String(d)
        case .bool(let b): return String(b)
        case .string(let s): return s.debugDescription
        case .null: return "null"
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let d): return "{" + d.keys.sorted().map { "\($0): \(d[$0]!)" }.joined(separator: ", ") + "}"
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func load(_ url: URL) throws -> JSONTree {
        try JSONDecoder().decode(JSONTree.self, from: Data(contentsOf: url))
    }
}

/// Shared set-up of the pipeline parity tests: the fixture config, datasets and tokenizer.
enum PipelineFixture {
    static let config: JSONTree = try! JSONTree.load(Fixtures.url("pipelines/config.json"))
    static let tokenizer: BertTokenizer = try! BertTokenizer(vocabFile: Fixtures.url("tiny-bert/vocab.txt"), doLowerCase: true)

    static func setting(_ pipeline: String, _ key: String) -> Int {
        config["pipeline"]![pipeline]![key]!.int!
    }
    static var seed: Int { config["seed"]!.int! }
    static var maxLength: Int { config["max_length"]!.int! }

    /// Where the fixture samples come from: the original's ByteDatasets, or the JSON lines read into memory.
    enum Source { case byteDataset, jsonLines }

    static func samples(_ name: String, _ source: Source) throws -> any SampleSource {
        switch source {
        case .byteDataset: return try ByteDataset(directory: Fixtures.url("pipelines/\(name).bytedataset").path)
        case .jsonLines: return try JSONLinesFile.readSamples(path: Fixtures.url("pipelines/\(name).jsonl").path)
        }
    }

    static func make(_ kind: PipelineKind, _ source: Source = .byteDataset) throws -> any BatchPipeline {
        switch kind {
        case .pos:
            return try PosPipeline(dataset: samples("all", source), tokenizer: tokenizer,
                                   forwardBatchSize: setting("pos", "forward_batch_size"),
                                   contrastiveSize: setting("pos", "contrastive_size"),
                                   maxLength: maxLength, shuffleSeed: seed + PipelineSeeds.pos)
        case .poshard:
            return try PoshardPipeline(dataset: samples("with_hardneg", source), tokenizer: tokenizer,
                                       forwardBatchSize: setting("poshard", "forward_batch_size"),
                                       contrastiveSize: setting("poshard", "contrastive_size"),
                                       maxLength: maxLength, shuffleSeed: seed + PipelineSeeds.poshard)
        case .hard:
            let pipeline = try HardPipeline(hardnegDataset: samples("with_hardneg", source), randnegDataset: samples("without_hardneg", source),
                                            tokenizer: tokenizer,
                                            forwardBatchSize: setting("hard", "forward_batch_size"),
                                            contrastiveSize: setting("hard", "contrastive_size"),
                                            maxLength: maxLength, shuffleSeed: seed + PipelineSeeds.hard)
            XCTAssertEqual(pipeline.sampleFromHardneg, setting("hard", "sample_from_hardneg"))
            return pipeline
        case .inbatch:
            return try InbatchPipeline(dataset: samples("all", source), tokenizer: tokenizer,
                                       forwardBatchSize: setting("inbatch", "forward_batch_size"),
                                       useHardneg: config["pipeline"]!["inbatch"]!["use_hardneg"]!.bool!,
                                       useNumHardnegs: setting("inbatch", "use_num_hardnegs"),
                                       maxLength: maxLength, shuffleSeed: seed + PipelineSeeds.inbatch)
        }
    }

    static func expected(_ kind: PipelineKind) throws -> (batches: [JSONTree], states: [JSONTree]) {
        let file = try JSONTree.load(Fixtures.url("pipelines/\(kind.rawValue).batches.json"))
        return (file["batches"]!.items, file["states"]!.items)
    }

    /// Compares one batch key by key, with a message naming the first differing key.
    static func assertSame(_ batch: Batch, _ expected: JSONTree, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let ours = JSONTree(.object(batch.originalKeys()))
        guard case .object(let mine) = ours, case .object(let theirs) = expected else { return XCTFail("\(label): not objects") }
        XCTAssertEqual(Set(mine.keys), Set(theirs.keys), "\(label): keys", file: file, line: line)
        for key in theirs.keys.sorted() where mine[key] != theirs[key] {
            XCTFail("\(label): \(key) differs\n ours \(mine[key]?.description ?? "-")\n want \(theirs[key]!)", file: file, line: line)
        }
    }
}

/// Must show 3 and 4: the 8 recorded batches of each original pipeline, the index-generator
/// states after each, and resume from a saved state.
final class PipelineFixtureTests: XCTestCase {
    func checkAllBatches(_ kind: PipelineKind, _ source: PipelineFixture.Source = .byteDataset) throws {
        let pipeline = try PipelineFixture.make(kind, source)
        let (batches, states) = try PipelineFixture.expected(kind)
        XCTAssertEqual(batches.count, 8)
        for (i, expected) in batches.enumerated() {
            let batch = try pipeline.nextBatch()
            PipelineFixture.assertSame(batch, expected, "\(kind) batch \(i + 1)")
            XCTAssertEqual(JSONTree(pipeline.state.originalJSON()), states[i], "\(kind) state after batch \(i + 1)")
        }
    }

    func testPosBatches() throws { try checkAllBatches(.pos) }
    func testPoshardBatches() throws { try checkAllBatches(.poshard) }
    func testHardBatchesWithRandneg() throws { try checkAllBatches(.hard) }
    func testInbatchBatches() throws { try checkAllBatches(.inbatch) }

    /// The same batches from the JSON-lines datasets held in memory (any `SampleSource` works).
    func testAllPipelinesFromInMemorySamples() throws {
        for kind in PipelineKind.allCases { try checkAllBatches(kind, .jsonLines) }
    }

    /// Save after batch 3 (through JSON, as a checkpoint would), restore into a fresh pipeline: batches 4-8 match.
    func testResumeAfterThirdBatch() throws {
        for kind in PipelineKind.allCases {
            let original = try PipelineFixture.make(kind)
            for _ in 0..<3 { _ = try original.nextBatch() }
            let saved = try JSONEncoder().encode(original.state)
            let resumed = try PipelineFixture.make(kind)
            try resumed.restore(JSONDecoder().decode(PipelineState.self, from: saved))
            let (batches, _) = try PipelineFixture.expected(kind)
            for i in 3..<8 {
                let a = try original.nextBatch(), b = try resumed.nextBatch()
                XCTAssertEqual(a, b, "\(kind) batch \(i + 1) after resume")
                PipelineFixture.assertSame(b, batches[i], "\(kind) resumed batch \(i + 1)")
            }
        }
    }
}
