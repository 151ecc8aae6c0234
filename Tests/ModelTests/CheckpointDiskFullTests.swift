import XCTest
import Model
import TestSupport

/// A checkpoint write that runs out of disk space (issue 8, part 3): the error names the new file
/// and the intact previous checkpoint, nothing is rotated away, no temporary file is left, and
/// every earlier checkpoint still opens with valid checksums. Once space is freed, saving works.
final class CheckpointDiskFullTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-diskfull") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A checkpoint of about 48 KB whose contents depend on `step`.
    func writer(step: Int) throws -> CheckpointWriter {
        var writer = CheckpointWriter()
        try writer.addFloats("question_model", (0..<12_000).map { Float($0 + step) }, shape: [120, 100])
        try writer.addJSON("state", ["step": step])
        return writer
    }

    /// Saves steps 1 and 2, then step 3 into a full disk (`fill` makes it full), and checks the outcome.
    func checkFullDisk(in outputDir: URL, fill: (inout CheckpointWriter) -> Void,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let store = CheckpointDirectory(directory: outputDir, prefix: "dpr_biencoder")
        for step in [1, 2] { try store.save(writer(step: step), step: step, keep: 2) }
        let before = try [1, 2].map { try Data(contentsOf: store.url(step: $0)) }

        var third = try writer(step: 3)
        fill(&third)
        XCTAssertThrowsError(try store.save(third, step: 3, keep: 2), file: file, line: line) { error in
            guard case .notWritten(let path, let reason, let previous)? = error as? CheckpointError else {
                return XCTFail("expected notWritten, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(path, store.url(step: 3).path, file: file, line: line)
            XCTAssertEqual(previous, store.url(step: 2).path, file: file, line: line)
            XCTAssertTrue(reason.contains("No space left on device"), reason, file: file, line: line)
            let message = "\(error)"
            XCTAssertTrue(message.contains("cannot write checkpoint \(store.url(step: 3).path)"), message, file: file, line: line)
            XCTAssertTrue(message.contains("the previous checkpoint \(store.url(step: 2).path) is intact"), message,
                          file: file, line: line)
        }
        // Nothing rotated away, nothing half-written left behind, every old file still verifies.
        XCTAssertEqual(try store.list().map(\.step), [1, 2], file: file, line: line)
        let names = try FileManager.default.contentsOfDirectory(atPath: outputDir.path)
        XCTAssertFalse(names.contains { $0.contains(".tmp-") }, "\(names)", file: file, line: line)
        for (i, step) in [1, 2].enumerated() {
            XCTAssertEqual(try Data(contentsOf: store.url(step: step)), before[i], file: file, line: line)
            let checkpoint = try CheckpointFile(url: store.url(step: step))
            XCTAssertEqual(try checkpoint.floats("question_model").first, Float(step), file: file, line: line)
        }
        // With room again (the oldest removed by hand), the same save succeeds and rotates.
        try FileManager.default.removeItem(at: store.url(step: 1))
        try store.save(writer(step: 3), step: 3, keep: 2)
        XCTAssertEqual(try store.list().map(\.step), [2, 3], file: file, line: line)
        XCTAssertNoThrow(try CheckpointFile(url: store.url(step: 3)), file: file, line: line)
    }

    /// No privileges needed: the writer's fault injection stops the write part-way with ENOSPC.
    func testSimulatedFullDiskKeepsThePreviousCheckpoints() throws {
        try checkFullDisk(in: dir.appendingPathComponent("out")) { $0.simulatedFreeBytes = 20_000 }
    }

    /// The real thing: output_dir on a 128 KB tmpfs that holds two checkpoints but not a third.
    /// Needs root (or CAP_SYS_ADMIN) to mount; skipped with the reason otherwise.
    func testFullTmpfsKeepsThePreviousCheckpoints() throws {
        let mountPoint = dir.appendingPathComponent("tmpfs")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        guard mount("tmpfs", mountPoint.path, "tmpfs", 0, "size=128k") == 0 else {
            throw XCTSkip("cannot mount a tmpfs at \(mountPoint.path) (\(String(cString: strerror(errno)))); "
                + "needs root; testSimulatedFullDiskKeepsThePreviousCheckpoints covers the same behaviour")
        }
        defer { umount2(mountPoint.path, Int32(MNT_DETACH)) }
        try checkFullDisk(in: mountPoint.appendingPathComponent("out")) { _ in }
    }
}
