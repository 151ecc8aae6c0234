import XCTest
import Model
import TestSupport

final class CheckpointTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-ckpt") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    struct Meta: Codable, Equatable {
        var step: Int
        var history: [String: [Double]]
        var loss: Double
    }

    let weights: [Float] = (0..<1000).map { Float($0) * 0.001 - 0.3 }
    let meta = Meta(step: 42, history: ["pos": [1.5, 1.25], "hard": []], loss: .nan)

    func makeWriter(moments: [Float]) throws -> CheckpointWriter {
        var writer = CheckpointWriter()
        try writer.addFloats("question_model", weights, shape: [10, 100])
        try moments.withUnsafeBufferPointer { try writer.addFloats("optimizer.exp_avg", unsafeBuffer: $0) }
        try writer.addJSON("meta", meta)
        try writer.addBytes("rng", [0, 1, 2, 255])
        try writer.addFloats("empty", [])
        return writer
    }

    func writeSample(_ name: String = "ckpt") throws -> URL {
        let url = dir.appendingPathComponent(name)
        let moments: [Float] = [1, -2, .infinity, 4]
        try makeWriter(moments: moments).write(to: url)
        return url
    }

    func testRoundTripOfEverySectionKind() throws {
        let url = try writeSample()
        let file = try CheckpointFile(url: url)
        XCTAssertEqual(file.names, ["question_model", "optimizer.exp_avg", "meta", "rng", "empty"])
        XCTAssertEqual(try file.floats("question_model"), weights)
        XCTAssertEqual(try file.shape("question_model"), [10, 100])
        XCTAssertEqual(try file.floats("optimizer.exp_avg"), [1, -2, .infinity, 4])
        let decoded = try file.json("meta", as: Meta.self)
        XCTAssertEqual(decoded.history, meta.history)
        XCTAssertTrue(decoded.loss.isNaN)
        XCTAssertEqual(try file.bytes("rng"), [0, 1, 2, 255])
        XCTAssertEqual(try file.floats("empty"), [])
        var target = [Float](repeating: 0, count: 1000)
        try target.withUnsafeMutableBufferPointer { try file.copyFloats("question_model", into: $0) }
        XCTAssertEqual(target, weights)

        XCTAssertThrowsError(try file.floats("ctx_model")) {
            XCTAssertEqual($0 as? CheckpointError, .missingSection(path: url.path, name: "ctx_model"))
        }
        XCTAssertThrowsError(try file.floats("meta")) {
            XCTAssertEqual($0 as? CheckpointError, .wrongKind(path: url.path, name: "meta", found: "json", wanted: "f32"))
        }
        var small = [Float](repeating: 0, count: 3)
        XCTAssertThrowsError(try small.withUnsafeMutableBufferPointer { try file.copyFloats("question_model", into: $0) }) {
            XCTAssertEqual($0 as? CheckpointError, .sizeMismatch(path: url.path, name: "question_model", count: 1000, expected: 3))
        }
        XCTAssertThrowsError(try file.json("meta", as: [Int].self)) { error in
            guard case .badJSON(url.path, "meta", _)? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
        var duplicate = CheckpointWriter()
        try duplicate.addBytes("a", [])
        XCTAssertThrowsError(try duplicate.addBytes("a", []))
        // No temporary file is left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["ckpt"])
    }

    func testTruncatedFilesAreReportedAsTruncated() throws {
        let url = try writeSample()
        let bytes = try Data(contentsOf: url)
        for keep in [0, 5, 8, 100, bytes.count / 2, bytes.count - 30, bytes.count - 1] {
            let cut = dir.appendingPathComponent("cut-\(keep)")
            try bytes.prefix(keep).write(to: cut)
            XCTAssertThrowsError(try CheckpointFile(url: cut), "cut at \(keep)") { error in
                guard case .truncated(let path, _)? = error as? CheckpointError else { return XCTFail("cut at \(keep): \(error)") }
                XCTAssertEqual(path, cut.path)
                XCTAssertTrue("\(error)".contains("truncated"))
            }
        }
        // A file cut and then padded back to the old size: the size is right but the data is not.
        var padded = bytes.prefix(bytes.count / 2)
        padded.append(contentsOf: [UInt8](repeating: 0, count: bytes.count - bytes.count / 2))
        padded.replaceSubrange((padded.count - 8)..<padded.count, with: Array("SRDPREND".utf8))
        let paddedURL = dir.appendingPathComponent("padded")
        try padded.write(to: paddedURL)
        XCTAssertThrowsError(try CheckpointFile(url: paddedURL))
    }

    func testChecksumFailuresNameTheSection() throws {
        let url = try writeSample()
        let bytes = try Data(contentsOf: url)
        let info = try XCTUnwrap(try CheckpointFile(url: url).sections["question_model"])
        var flipped = bytes
        flipped[info.offset + 1234 % info.length] ^= 0x10
        let bad = dir.appendingPathComponent("bad")
        try flipped.write(to: bad)
        XCTAssertThrowsError(try CheckpointFile(url: bad)) { error in
            XCTAssertEqual(error as? CheckpointError, .corrupt(path: bad.path, reason: "checksum mismatch in section 'question_model'"))
        }
        // Without verification the file opens (for inspection tools), and the bytes are as stored.
        XCTAssertNoThrow(try CheckpointFile(url: bad, verifyChecksums: false))

        // A flip inside the index.
        var index = bytes
        index[bytes.count - 30] ^= 0x01
        try index.write(to: bad)
        XCTAssertThrowsError(try CheckpointFile(url: bad)) { error in
            guard case .corrupt(_, let reason)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("index"), reason)
        }
        // Not a checkpoint at all.
        try Data("PK\u{3}\u{4} a zip file, not ours............................".utf8).write(to: bad)
        XCTAssertThrowsError(try CheckpointFile(url: bad)) {
            XCTAssertEqual($0 as? CheckpointError, .notACheckpoint(path: bad.path))
        }
        XCTAssertThrowsError(try CheckpointFile(url: dir.appendingPathComponent("missing"))) { error in
            guard case .unreadable? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
    }

    func testUnwritableDirectoryIsAClearErrorAndKeepsTheOldFile() throws {
        let notADirectory = dir.appendingPathComponent("plain-file")
        try Data("x".utf8).write(to: notADirectory)
        let writer = try makeWriter(moments: [1])
        XCTAssertThrowsError(try writer.write(to: notADirectory.appendingPathComponent("ckpt.1"))) { error in
            guard case .notWritten(let path, _, nil)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, notADirectory.appendingPathComponent("ckpt.1").path)
        }
        let store = CheckpointDirectory(directory: notADirectory, prefix: "dpr_biencoder")
        XCTAssertThrowsError(try store.save(writer, step: 1, keep: 2)) { error in
            guard case .unwritable? = error as? CheckpointError else { return XCTFail("\(error)") }
        }
        if getuid() != 0 {
            // Permission bits only bind non-root users.
            let readOnly = dir.appendingPathComponent("read-only")
            try FileManager.default.createDirectory(at: readOnly, withIntermediateDirectories: false)
            chmod(readOnly.path, 0o555)
            defer { chmod(readOnly.path, 0o755) }
            XCTAssertThrowsError(try writer.write(to: readOnly.appendingPathComponent("ckpt.1")))
        }
        // Replacing an existing checkpoint is atomic: the new contents replace the old completely.
        let url = try writeSample("replace")
        var other = CheckpointWriter()
        try other.addFloats("x", [7])
        try other.write(to: url)
        XCTAssertEqual(try CheckpointFile(url: url).names, ["x"])
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: dir.path).contains { $0.contains(".tmp-") })
    }

    func testRotationKeepsTheNewestSteps() throws {
        let store = CheckpointDirectory(directory: dir.appendingPathComponent("out"), prefix: "dpr_biencoder")
        var writer = CheckpointWriter()
        try writer.addFloats("w", [1, 2])
        for step in [100, 200, 300, 1000, 1100] {
            let url = try store.save(writer, step: step, keep: 3)
            XCTAssertEqual(url.lastPathComponent, "dpr_biencoder.\(step)")
            // Files that are not checkpoints of this run are never touched.
            if step == 200 {
                for other in ["dpr_biencoder.best", "dpr_biencoder.7.tmp", "other.5", "dpr_biencoder."] {
                    try Data().write(to: store.directory.appendingPathComponent(other))
                }
            }
        }
        // Numeric order, not string order: 1000 and 1100 are newer than 300.
        XCTAssertEqual(try store.list().map(\.step), [300, 1000, 1100])
        XCTAssertEqual(try store.latest()?.step, 1100)
        let remaining = Set(try FileManager.default.contentsOfDirectory(atPath: store.directory.path))
        XCTAssertEqual(remaining, ["dpr_biencoder.300", "dpr_biencoder.1000", "dpr_biencoder.1100",
                                   "dpr_biencoder.best", "dpr_biencoder.7.tmp", "other.5", "dpr_biencoder."])
        XCTAssertEqual(try store.rotate(keep: 0), [])
        XCTAssertEqual(try store.rotate(keep: 1).map(\.lastPathComponent), ["dpr_biencoder.300", "dpr_biencoder.1000"])
        XCTAssertEqual(try CheckpointFile(url: store.url(step: 1100)).floats("w"), [1, 2])
    }

    /// A write killed before its rename leaves `.{prefix}.{step}.tmp-{pid}-{n}`; the next save
    /// removes it when that process is gone, and leaves a live process's file alone.
    func testTemporaryFilesOfDeadWritersAreRemoved() throws {
        let store = CheckpointDirectory(directory: dir, prefix: "dpr_biencoder")
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        let abandoned = ".dpr_biencoder.6.tmp-\(dead.processIdentifier)-12345"
        let live = ".dpr_biencoder.9.tmp-1-777"  // pid 1 is always alive
        for name in [abandoned, live] { try Data([1, 2, 3]).write(to: dir.appendingPathComponent(name)) }
        var writer = CheckpointWriter()
        try writer.addFloats("w", [1])
        try store.save(writer, step: 12, keep: 3)
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
        XCTAssertFalse(names.contains(abandoned))
        XCTAssertTrue(names.contains(live))
        XCTAssertTrue(names.contains("dpr_biencoder.12"))
    }

    func testAdamWStateRoundTripsThroughACheckpoint() throws {
        var layout = ParameterLayout()
        layout.append("encoder.dense.weight", shape: [4, 3])
        layout.append("encoder.dense.bias", shape: [3])
        let groups = ParameterGroup.standardGroups(layout: layout, weightDecay: 0.01)
        let a = AdamW(parameterCount: layout.totalCount, groups: groups)
        var params = (0..<layout.totalCount).map { Float($0) / 10 }
        for step in 0..<3 {
            let grads = (0..<layout.totalCount).map { Float(($0 * 7 + step * 3) % 5) - 2 }
            params.withUnsafeMutableBufferPointer { p in grads.withUnsafeBufferPointer { a.update(parameters: p, gradients: $0, learningRate: 1e-3) } }
        }
        var writer = CheckpointWriter()
        try a.save(to: &writer)
        let url = dir.appendingPathComponent("opt")
        try writer.write(to: url)
        let file = try CheckpointFile(url: url)
        let b = AdamW(parameterCount: layout.totalCount, groups: groups)
        try b.restore(from: file)
        XCTAssertEqual(b.step, 3)
        XCTAssertEqual(b.m, a.m)
        XCTAssertEqual(b.v, a.v)
        let wrongSize = AdamW(parameterCount: 5, groups: [])
        XCTAssertThrowsError(try wrongSize.restore(from: file)) {
            XCTAssertEqual($0 as? CheckpointError, .sizeMismatch(path: url.path, name: "optimizer.exp_avg", count: 15, expected: 5))
        }
    }

    /// A write that fails half-way (here: the file-size limit, as a full disk would) reports the
    /// file, leaves no temporary file and keeps the previous checkpoint intact.
    func testFailedWriteKeepsThePreviousCheckpoint() throws {
        let url = try writeSample("dpr_biencoder.5")
        let before = try Data(contentsOf: url)
        var big = CheckpointWriter()
        try big.addFloats("w", [Float](repeating: 1, count: 100_000))

        var saved = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved), 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        var limited = saved
        limited.rlim_cur = 64 * 1024
        XCTAssertEqual(setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limited), 0)
        let result = Result { try big.write(to: url) }
        _ = setrlimit(Int32(RLIMIT_FSIZE.rawValue), &saved)
        signal(SIGXFSZ, previousHandler)

        XCTAssertThrowsError(try result.get()) { error in
            guard case .notWritten(let path, _, let previous)? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, url.path)
            XCTAssertEqual(previous, url.path, "the file being replaced is the intact previous one")
        }
        XCTAssertEqual(try Data(contentsOf: url), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["dpr_biencoder.5"])
        XCTAssertNoThrow(try CheckpointFile(url: url))
    }
}
