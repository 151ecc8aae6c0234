import XCTest
import Data
import DistributedIndex
import Retrieval
import TestSupport

/// `srdpr index` as a stream (issue 20, Build 3): the files of a streamed build are the bytes the
/// load-everything build wrote (computed here the old way: the whole corpus loaded, encoded chunk
/// by chunk); a stopped build resumes to the same bytes; a bad line or a repeated id stops the
/// build before anything is written; a sharded build (`--workers`/`--bind`, shards built in-process here)
/// merges to the same bytes, resumes its shards, and leaves nothing complete-looking when a shard fails.
final class StreamingIndexTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-stream-index") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// `n` passages, blank lines among them, integer and BEIR ids, titles absent or null.
    func writeCorpus(_ n: Int) throws -> String {
        var lines: [String] = []
        for i in 0..<n {
            if i % 17 == 5 { lines.append("  ") }
            switch i % 4 {
            case 0: lines.append(#"{"id": "p\#(i)", "title": "t\#(i % 7)", "text": "passage number \#(i) \#(String(repeating: "x", count: i % 13))"}"#)
            case 1: lines.append(#"{"_id": \#(i), "text": "beir style \#(i) é"}"#)
            case 2: lines.append(#"{"id": "p\#(i)", "title": null, "text": "no title \#(String(repeating: "y ", count: i % 9))"}"#)
            default: lines.append(#"{"id": \#(i * 1000), "title": "Ünïcode \#(i)", "text": "line\#(i)"}"#)
            }
        }
        let file = path("corpus.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func bytes(_ index: String, _ file: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: index + "/" + file)) }

    func assertSameFiles(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for name in ["embeddings.f32", "ids.jsonl", "meta.json"] {
            XCTAssertEqual(try bytes(a, name), try bytes(b, name), "\(name) of \(a) and \(b)", file: file, line: line)
        }
    }

    /// An uninterrupted build in `reference`, and one in `stopped` whose encoder fails after
    /// `chunksBeforeStop` chunks of 8.
    func referenceAndStoppedBuild(_ corpusPath: String, reference: String, stopped: String, chunksBeforeStop: Int) throws {
        try PassageIndex.build(corpusPath: corpusPath, encoder: CountingEncoder(), directory: reference, chunkRows: 8)
        let failing = CountingEncoder()
        failing.failAfterCalls = chunksBeforeStop
        XCTAssertThrowsError(try PassageIndex.build(corpusPath: corpusPath, encoder: failing, directory: stopped, chunkRows: 8))
    }

    func testStreamedIndexHasTheBytesOfTheLoadedCorpusBuild() throws {
        let corpusPath = try writeCorpus(101)
        let index = path("streamed")
        try PassageIndex.build(corpusPath: corpusPath, encoder: CountingEncoder(), directory: index, chunkRows: 8)
        // The old build: everything loaded, chunk by chunk through the encoder, ids one JSON string a line.
        let corpus = try Corpus.load(path: corpusPath)
        let encoder = CountingEncoder()
        var vectors: [Float] = [], ids = ""
        for start in stride(from: 0, to: corpus.ids.count, by: 8) {
            let end = min(start + 8, corpus.ids.count)
            vectors += try encoder.encodePassages(Array(corpus.passages[start..<end]))
            ids += corpus.ids[start..<end].map { JSONText.string($0) + "\n" }.joined()
        }
        XCTAssertEqual(try bytes(index, "embeddings.f32"), vectors.withUnsafeBytes { Data($0) })
        XCTAssertEqual(try bytes(index, "ids.jsonl"), Data(ids.utf8))
        let meta = String(decoding: try bytes(index, "meta.json"), as: UTF8.self)
        XCTAssertTrue(meta.contains("\"totalRows\" : 101") && meta.contains("\"complete\" : true"), meta)
        XCTAssertFalse(meta.contains("firstRow"), "a whole index's meta.json is the format it always was: \(meta)")
        XCTAssertEqual(try PassageIndex(directory: index).ids, corpus.ids)
    }

    func testStoppedBuildResumesToTheSameBytes() throws {
        let corpusPath = try writeCorpus(77)
        let reference = path("reference"), resumed = path("resumed")
        try referenceAndStoppedBuild(corpusPath, reference: reference, stopped: resumed, chunksBeforeStop: 4)
        XCTAssertThrowsError(try PassageIndex(directory: resumed)) { error in
            XCTAssertTrue("\(error)".contains("stopped at row 32 of 77"), "\(error)")
        }
        // A build killed after writing rows but before meta.json counted them: the extra bytes are cut off.
        for name in ["embeddings.f32", "ids.jsonl"] {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: resumed + "/" + name))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("garbage\nmore garbage\n".utf8))
            try handle.close()
        }
        let second = CountingEncoder()
        try PassageIndex.build(corpusPath: corpusPath, encoder: second, directory: resumed, chunkRows: 8)
        XCTAssertEqual(second.calls, 6, "only the 45 missing rows are encoded (6 chunks)")
        try assertSameFiles(reference, resumed)
    }

    func testBadLineOrRepeatedIDStopsTheBuildBeforeAnyFile() throws {
        var lines = (0..<40).map { #"{"id": "p\#($0)", "text": "text \#($0)"}"# }
        lines[33] = #"{"id": "p33", "text": 5}"#
        let corpusPath = path("bad.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(toFile: corpusPath, atomically: true, encoding: .utf8)
        let index = path("idx")
        XCTAssertThrowsError(try PassageIndex.build(corpusPath: corpusPath, encoder: CountingEncoder(), directory: index, chunkRows: 8)) { error in
            XCTAssertEqual("\(error)", "\(corpusPath):34: field \"text\" is missing or not a string")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: index), "nothing written for a corpus that does not read")
        lines[33] = #"{"id": "p3", "text": "again"}"#
        try (lines.joined(separator: "\n") + "\n").write(toFile: corpusPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PassageIndex.build(corpusPath: corpusPath, encoder: CountingEncoder(), directory: index, chunkRows: 8)) { error in
            XCTAssertEqual("\(error)", "\(corpusPath):34: duplicate passage id \"p3\" (first seen on line 4); ids must be unique")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: index))
        // "7" and 7 are the same id, as Corpus.load has it.
        try ([#"{"id": 7, "text": "a"}"#, #"{"id": "7", "text": "b"}"#].joined(separator: "\n")).write(toFile: corpusPath, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try CorpusStream.scan(path: corpusPath)) { error in
            XCTAssertTrue("\(error)".contains(":2: duplicate passage id \"7\" (first seen on line 1)"), "\(error)")
        }
    }

    func testShardsAreCutOnChunkBoundaries() {
        let shards = ShardedIndexBuild.plan(rows: 16..<101, shardRows: 32, directory: "/x")
        XCTAssertEqual(shards.map(\.rows), [16..<48, 48..<80, 80..<101], "85 rows from row 16 in shards of 32, the last of 21")
        XCTAssertEqual(shards.map(\.directory), ["/x/shards/rows-16-48", "/x/shards/rows-48-80", "/x/shards/rows-80-101"])
        XCTAssertEqual(ShardedIndexBuild.plan(rows: 0..<10, shardRows: 8, directory: "/x").map(\.rows), [0..<8, 8..<10])
        XCTAssertEqual(ShardedIndexBuild.plan(rows: 5..<5, shardRows: 16, directory: "/x"), [])
        // The default: 8 chunks a shard, smaller on a small corpus (about 64 shards), never 0.
        XCTAssertEqual(ShardedIndexBuild.defaultShardRows(rows: 5_770, chunkRows: 512), 91, "64 shards, the last of 37")
        XCTAssertEqual(ShardedIndexBuild.defaultShardRows(rows: 64 * 1024, chunkRows: 512), 1024)
        XCTAssertEqual(ShardedIndexBuild.defaultShardRows(rows: 21_000_000, chunkRows: 512), 4096)
        XCTAssertEqual(ShardedIndexBuild.defaultShardRows(rows: 0, chunkRows: 512), 1)
    }

    /// The shards go out largest first (the estimate: bytes of title and text), so the last ones
    /// handed out are the smallest; a lost worker's shard comes back first.
    func testShardsGoOutLargestFirst() throws {
        let corpusPath = path("lengths.jsonl")
        let lengths = [5, 5, 40, 40, 1, 1, 20, 20]
        try lengths.enumerated().map { #"{"id": "p\#($0.offset)", "title": "t", "text": "\#(String(repeating: "x", count: $0.element))"}"# }
            .joined(separator: "\n").write(toFile: corpusPath, atomically: true, encoding: .utf8)
        let shards = ShardedIndexBuild.plan(rows: 0..<8, shardRows: 2, directory: "/x")
        let work = try ShardedIndexBuild.estimatedWork(corpusPath: corpusPath, shards: shards)
        XCTAssertEqual(work, [12, 82, 4, 42])
        var queue = ShardQueue(work: work)
        XCTAssertEqual(queue.pending, [1, 3, 0, 2])
        XCTAssertEqual(queue.take(rank: 0), 1)
        XCTAssertEqual(queue.take(rank: 1), 3)
        XCTAssertEqual(queue.release(rank: 0), 1)
        XCTAssertEqual(queue.pending, [1, 0, 2], "the lost worker's shard goes first")
        XCTAssertEqual(ShardQueue(work: [3, 3, 1, 3]).pending, [0, 1, 3, 2], "equal work in plan order")
        // From a later row (a resumed build): the estimate covers the shards' rows only.
        XCTAssertEqual(try ShardedIndexBuild.estimatedWork(corpusPath: corpusPath, shards: Array(shards.suffix(2))), [4, 42])
    }

    func testShardedBuildMergesToTheOneProcessBytesAndResumesItsShards() throws {
        let corpusPath = try writeCorpus(101)
        let reference = path("one"), sharded = path("sharded")
        try PassageIndex.build(corpusPath: corpusPath, encoder: CountingEncoder(), directory: reference, chunkRows: 8)
        let signature = PassageIndex.Signature(CountingEncoder())
        // A first run whose second shard fails midway: nothing looks complete.
        struct ShardFailed: Error {}
        func cut(_ rows: Range<Int>) -> [ShardedIndexBuild.Shard] {
            ShardedIndexBuild.plan(rows: rows, shardRows: 40, directory: sharded)
        }
        XCTAssertThrowsError(try ShardedIndexBuild.build(corpusPath: corpusPath, signature: signature, directory: sharded,
                                                         shards: cut) { shards in
            for (rank, shard) in shards.enumerated() {
                let encoder = CountingEncoder()
                if rank == 1 { encoder.failAfterCalls = 2 }
                try PassageIndex.build(corpusPath: corpusPath, rows: shard.rows, encoder: encoder, directory: shard.directory, chunkRows: 8)
            }
        })
        XCTAssertThrowsError(try PassageIndex(directory: sharded)) { error in
            XCTAssertTrue("\(error)".contains("stopped at row 0 of 101"), "\(error)")
        }
        // The rerun resumes every shard where it stopped (the failed one after its 2 chunks).
        var calls: [Int] = []
        try ShardedIndexBuild.build(corpusPath: corpusPath, signature: signature, directory: sharded, shards: cut) { shards in
            XCTAssertEqual(shards.map(\.rows), [0..<40, 40..<80, 80..<101])
            for shard in shards {
                let encoder = CountingEncoder()
                try PassageIndex.build(corpusPath: corpusPath, rows: shard.rows, encoder: encoder, directory: shard.directory, chunkRows: 8)
                calls.append(encoder.calls)
            }
        }
        XCTAssertEqual(calls, [0, 3, 3], "shard 1 was complete, shard 3 not started; shard 2 had 2 of its 5 chunks")
        try assertSameFiles(reference, sharded)
        XCTAssertFalse(FileManager.default.fileExists(atPath: PassageIndex.shardsPath(sharded)), "shards removed once merged")
        // Complete: a rerun does nothing.
        try ShardedIndexBuild.build(corpusPath: corpusPath, signature: signature, directory: sharded, shards: cut) { _ in
            XCTFail("a complete index starts no shard")
        }
    }

    func testShardedBuildContinuesAnInterruptedOneProcessBuild() throws {
        let corpusPath = try writeCorpus(60)
        let reference = path("one"), mixed = path("mixed")
        try referenceAndStoppedBuild(corpusPath, reference: reference, stopped: mixed, chunksBeforeStop: 3)
        try ShardedIndexBuild.build(corpusPath: corpusPath, signature: PassageIndex.Signature(CountingEncoder()), directory: mixed, shards: { rows in
            ShardedIndexBuild.plan(rows: rows, shardRows: 24, directory: mixed)
        }) { shards in
            XCTAssertEqual(shards.map(\.rows), [24..<48, 48..<60], "only the rows the stopped build had not encoded")
            for shard in shards {
                try PassageIndex.build(corpusPath: corpusPath, rows: shard.rows, encoder: CountingEncoder(), directory: shard.directory, chunkRows: 8)
            }
        }
        try assertSameFiles(reference, mixed)
    }
}
