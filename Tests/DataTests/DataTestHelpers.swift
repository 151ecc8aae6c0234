import Foundation
import XCTest
import TestSupport

/// Helpers shared by the data tests: Python, temporary files, hand-made datasets.
enum DataTestHelpers {
    /// SRDPR_PYTHON (the test venv in CI) or `python3`.
    static var python: URL {
        if let path = ProcessInfo.processInfo.environment["SRDPR_PYTHON"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return URL(fileURLWithPath: "/usr/bin/env")
    }

    /// Runs a Python script with arguments; fails the test with its stderr if it exits non-zero.
    static func runPython(_ script: String, _ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let usesEnv = ProcessInfo.processInfo.environment["SRDPR_PYTHON"].map { $0.isEmpty } ?? true
        let args = (usesEnv ? ["python3"] : []) + ["-c", script] + arguments
        let result = try Command.run(python, args)
        XCTAssertEqual(result.status, 0, "python failed: \(result.stderr)", file: file, line: line)
        return result.stdout
    }

    static func write(_ text: String, to url: URL) throws {
        try Data(text.utf8).write(to: url)
    }

    /// A ByteDataset directory with the given raw files.
    static func makeDataset(idxs: [UInt8], data: [UInt8], in dir: URL) throws -> URL {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try Data(idxs).write(to: dir.appendingPathComponent("idxs.pkl"))
        try Data(data).write(to: dir.appendingPathComponent("data.pkl"))
        return dir
    }

    /// idxs.pkl bytes: count (4 bytes big-endian), then 6-byte big-endian offsets.
    static func idxs(count: Int, offsets: [Int]) -> [UInt8] {
        var out = (0..<4).map { UInt8(truncatingIfNeeded: count >> (8 * (3 - $0))) }
        for o in offsets { out += (0..<6).map { UInt8(truncatingIfNeeded: o >> (8 * (5 - $0))) } }
        return out
    }

    /// The first line of the fixture JSON-lines, pickled by the original (offset 0 of its data.pkl).
    static func firstFixturePickle() throws -> [UInt8] {
        let data = try Data(contentsOf: Fixtures.url("pipelines/all.bytedataset/data.pkl"))
        let idxs = try Data(contentsOf: Fixtures.url("pipelines/all.bytedataset/idxs.pkl"))
        var second = 0
        for i in 0..<6 { second = second << 8 | Int(idxs[10 + i]) }
        return Array(data[0..<second])
    }

    /// `rounds` corrupted copies of two sample pickles (protocol 4 with MEMOIZE/FRAME, protocol 2
    /// with BINPUT): 1-4 random byte overwrites, truncations or insertions each, from a fixed seed.
    static func mutatedSamplePickles(rounds: Int, seed: UInt64) throws -> [[UInt8]] {
        let p2 = try Data(contentsOf: Fixtures.url("pickle_protocols/protocol2.bytedataset/data.pkl"))
        let originals = [try firstFixturePickle(), Array(p2.prefix(700))]
        var state = seed
        func random(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        return (0..<rounds).map { round in
            var bytes = originals[round % 2]
            for _ in 0..<(1 + random(4)) {
                switch random(3) {
                case 0: bytes[random(bytes.count)] = UInt8(random(256))          // overwrite a byte
                case 1: bytes.removeSubrange(random(bytes.count)..<bytes.count)  // truncate
                default: bytes.insert(UInt8(random(256)), at: random(bytes.count))
                }
                if bytes.isEmpty { bytes = [0x80] }
            }
            return bytes
        }
    }
}
