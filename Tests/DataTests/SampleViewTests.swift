import Foundation
import XCTest
import Data
import TestSupport

/// The zero-copy read path: views equal the decoded `Sample`s, and bad input fails the same way.
final class SampleViewTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func assertSameFields(_ view: SampleView, _ sample: Sample, _ context: String) {
        XCTAssertEqual(view.sampleID, sample.sampleID, context)
        XCTAssertEqual(view.questionCount, sample.questions.count, context)
        XCTAssertEqual(view.positiveCount, sample.positiveContexts.count, context)
        XCTAssertEqual(view.hardnegCount, sample.hardnegContexts.count, context)
        for (k, q) in sample.questions.enumerated() where k < view.questionCount {
            XCTAssertEqual(view.question(k).textField, q, "\(context) questions[\(k)]")
        }
        for (k, p) in sample.positiveContexts.enumerated() where k < view.positiveCount {
            XCTAssertEqual(view.positive(k).title.textField, p.title, "\(context) positive \(k) title")
            XCTAssertEqual(view.positive(k).text.textField, p.text, "\(context) positive \(k) text")
        }
        for (k, p) in sample.hardnegContexts.enumerated() where k < view.hardnegCount {
            XCTAssertEqual(view.hardneg(k).title.textField, p.title, "\(context) hardneg \(k) title")
            XCTAssertEqual(view.hardneg(k).text.textField, p.text, "\(context) hardneg \(k) text")
        }
        XCTAssertEqual(view.sample, sample, context)
    }

    func testViewFieldsEqualSampleFieldsForEveryFixtureDataset() throws {
        for path in Fixtures.sampleDatasets {
            let dataset = try ByteDataset(directory: Fixtures.url(path).path)
            XCTAssertGreaterThan(dataset.count, 0, path)
            var reused = SampleView()
            for i in 0..<dataset.count {
                let sample = try dataset.sample(at: i)
                assertSameFields(try dataset.view(at: i), sample, "\(path) sample \(i)")
                try dataset.readView(at: i, into: &reused)  // the reused buffers hold nothing stale
                assertSameFields(reused, sample, "\(path) sample \(i), reused view")
                if case .utf8(let bytes)? = (reused.questionCount > 0 ? reused.question(0) : nil) {
                    // Zero-copy: the bytes are inside the dataset's data.pkl mapping, not a copy.
                    XCTAssertNotNil(bytes.baseAddress, path)
                }
            }
            // Batched reads (what the pipelines do), in a scrambled order with repeats.
            let order = (0..<(2 * dataset.count)).map { ($0 * 7 + 3) % dataset.count }
            var views: [SampleView] = []
            try dataset.readViews(at: order, into: &views, startingAt: 0)
            for (k, i) in order.enumerated() { assertSameFields(views[k], try dataset.sample(at: i), "\(path) batch item \(k)") }
        }
    }

    func testPretokenizedDatasetGivesTokenIDs() throws {
        let samples = [
            Sample(sampleID: 7, questions: [.tokenIDs([101, 2054, 102]), .tokenIDs([])],
                   positiveContexts: [Passage(title: .tokenIDs([5, 300, 70000]), text: .tokenIDs([1, -2, 1 << 40]))],
                   hardnegContexts: [Passage(title: .text("mixed"), text: .tokenIDs([9]))]),
            Sample(sampleID: 8, questions: [.text("who?")], positiveContexts: [], hardnegContexts: []),
        ]
        let out = dir.appendingPathComponent("pretok")
        let writer = try ByteDatasetWriter(directory: out.path)
        for s in samples { try writer.append(s) }
        try writer.finish()
        let dataset = try ByteDataset(directory: out.path)
        for (i, s) in samples.enumerated() { assertSameFields(try dataset.view(at: i), s, "pretokenized \(i)") }
        guard case .tokenIDs(let ids) = try dataset.view(at: 0).positive(0).text else { return XCTFail("not token ids") }
        XCTAssertEqual(Array(ids), [1, -2, 1 << 40])
    }

    // MARK: bad input: the view path refuses what the Sample path refuses, with the same errors

    private func single(_ bytes: [UInt8], _ name: String) throws -> ByteDataset {
        let ds = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: 1, offsets: [0]), data: bytes,
                                                 in: dir.appendingPathComponent(name))
        return try ByteDataset(directory: ds.path)
    }

    private func assertViewError(_ dataset: ByteDataset, _ index: Int, _ fragments: [String],
                                 file: StaticString = #filePath, line: UInt = #line) {
        var sampleError: ByteDatasetError?
        XCTAssertThrowsError(try dataset.sample(at: index)) { sampleError = $0 as? ByteDatasetError }
        var view = SampleView()
        XCTAssertThrowsError(try dataset.readView(at: index, into: &view), file: file, line: line) { error in
            guard let error = error as? ByteDatasetError else { return XCTFail("untyped error \(error)", file: file, line: line) }
            if let sampleError { XCTAssertEqual(error, sampleError, "the view and Sample paths disagree", file: file, line: line) }
            for f in fragments {
                XCTAssertTrue("\(error)".contains(f), "'\(f)' not in: \(error)", file: file, line: line)
            }
        }
        var views: [SampleView] = []
        XCTAssertThrowsError(try dataset.readViews(at: [index], into: &views, startingAt: 0), file: file, line: line)
    }

    func testRefusedOpcodesOnTheViewPath() throws {
        var evil: [UInt8] = [0x80, 0x02] + Array("cos\nsystem\n".utf8) + [0x71, 0x00]
        let command = Array("touch /nonexistent/pwned".utf8)
        evil += [0x58] + (0..<4).map { UInt8(truncatingIfNeeded: command.count >> (8 * $0)) } + command
        evil += [0x85, 0x52, 0x2E]
        assertViewError(try single(evil, "evil"), 0, ["data.pkl", "sample 0", "refused pickle opcode GLOBAL at byte offset 2"])
        let reduce: [UInt8] = [0x80, 0x04, 0x29, 0x29, 0x52, 0x2E]
        assertViewError(try single(reduce, "reduce"), 0, ["refused pickle opcode REDUCE at byte offset 4"])
    }

    func testTruncatedPicklesOnTheViewPath() throws {
        let pickle = try DataTestHelpers.firstFixturePickle()
        for cut in [1, 2, 12, 40, pickle.count / 2, pickle.count - 1] {
            assertViewError(try single(Array(pickle[0..<cut]), "trunc\(cut)"), 0, ["data.pkl", "sample 0", "truncated pickle"])
        }
    }

    func testOffsetsPastTheEndAndIndexOutOfRangeOnTheViewPath() throws {
        let pickle = try DataTestHelpers.firstFixturePickle()
        let ds = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: 2, offsets: [0, pickle.count + 10]),
                                                 data: pickle, in: dir.appendingPathComponent("offset"))
        let dataset = try ByteDataset(directory: ds.path)
        XCTAssertNoThrow(try dataset.view(at: 0))
        assertViewError(dataset, 1, ["idxs.pkl", "offset \(pickle.count + 10) of sample 1", "past the end of data.pkl"])
        assertViewError(dataset, 2, ["sample index 2 is out of range"])
        assertViewError(dataset, -1, ["out of range"])
    }

    func testAValidPickleThatIsNotASampleOnTheViewPath() throws {
        assertViewError(try single([0x80, 0x04, 0x5D, 0x94, 0x2E], "list"), 0, ["sample 0 is not a sample", "not a dict"])
    }

    func testInvalidUTF8IsRefusedNamingTheFieldAndOffset() throws {
        // {"sample_id": 1, "questions": ["ab\xff"], "positive_contexts": [], "hardneg_contexts": []}, protocol 2.
        func str(_ s: [UInt8]) -> [UInt8] { [0x58] + (0..<4).map { UInt8(truncatingIfNeeded: s.count >> (8 * $0)) } + s }
        var p: [UInt8] = [0x80, 0x02, 0x7D, 0x28]
        p += str(Array("sample_id".utf8)) + [0x4B, 0x01]
        p += str(Array("questions".utf8)) + [0x5D, 0x28]
        let badAt = p.count + 5 + 2  // X, 4-byte length, "ab"
        p += str([0x61, 0x62, 0xFF]) + [0x65]
        p += str(Array("positive_contexts".utf8)) + [0x5D]
        p += str(Array("hardneg_contexts".utf8)) + [0x5D]
        p += [0x75, 0x2E]
        let dataset = try single(p, "utf8")
        var view = SampleView()
        XCTAssertThrowsError(try dataset.readView(at: 0, into: &view)) { error in
            XCTAssertEqual(error as? ByteDatasetError,
                           .invalidUTF8(file: dataset.directory + "/data.pkl", index: 0, field: "questions[0]", offset: badAt))
            XCTAssertTrue("\(error)".contains("`questions[0]` is not valid UTF-8 at byte offset \(badAt)"), "\(error)")
        }
        // Python refuses it too (UnicodeDecodeError), so the view is right not to repair it.
        let path = dataset.directory + "/data.pkl"
        let out = try DataTestHelpers.runPython(
            "import pickle, sys\ntry:\n    pickle.loads(open(sys.argv[1], 'rb').read()); print('loaded')\nexcept UnicodeDecodeError:\n    print('refused')",
            [path])
        XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines), "refused")
    }

    /// Corrupted pickles never crash the view decoder; whenever it succeeds, the Sample path agrees.
    func testMutatedPicklesFailCleanlyOnTheViewPath() throws {
        var decoded = 0, refused = 0
        for (round, bytes) in try DataTestHelpers.mutatedSamplePickles(rounds: 20_000, seed: 7).enumerated() {
            let viewed: Sample? = bytes.withUnsafeBufferPointer { b in (try? SampleView.decode(pickle: b))?.sample }
            if let viewed {
                decoded += 1
                let sample = bytes.withUnsafeBufferPointer { try? Sample.decode(pickle: $0) }
                XCTAssertEqual(viewed, sample, "round \(round)")
            } else {
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 5000)
        XCTAssertGreaterThan(decoded, 100)
    }
}
