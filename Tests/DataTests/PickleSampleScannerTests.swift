import Foundation
import XCTest
import Data
import TestSupport

/// The read fast path (`SampleView.scanned`, the layout scanner) against the general decoder
/// (`SampleView.decodeGenerally`): it takes every sample CPython and our writer produce, and
/// whatever it accepts, the general decoder accepts with an equal view.
final class PickleSampleScannerTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// The pickle of every sample of the ByteDataset in `path`.
    private func pickles(_ path: String) throws -> [[UInt8]] {
        let dataset = try ByteDataset(directory: path)
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path).appendingPathComponent("data.pkl")))
        return try (0..<dataset.count).map { i in
            let end = i + 1 < dataset.count ? try dataset.offset(at: i + 1) : data.count
            return Array(data[try dataset.offset(at: i)..<end])
        }
    }

    /// Decodes `bytes` both ways; fails when the scanner accepts what the general decoder
    /// refuses or sees differently. Returns whether the scanner took it.
    @discardableResult
    private func assertAgree(_ bytes: [UInt8], _ context: String, file: StaticString = #filePath, line: UInt = #line) -> Bool {
        bytes.withUnsafeBufferPointer { b in
            let general = Result { () throws(SamplePickleError) in try SampleView.decodeGenerally(pickle: b) }
            let automatic = Result { () throws(SamplePickleError) in try SampleView.decode(pickle: b) }
            switch (general, automatic) {
            case (.success(let g), .success(let a)): XCTAssertEqual(a, g, "\(context): the read path differs", file: file, line: line)
            case (.failure(let g), .failure(let a)): XCTAssertEqual(a, g, "\(context): the errors differ", file: file, line: line)
            default: XCTFail("\(context): general \(general) but read path \(automatic)", file: file, line: line)
            }
            guard let scanned = SampleView.scanned(pickle: b) else { return false }
            guard case .success(let g) = general else {
                XCTFail("\(context): the scanner accepts what the general decoder refuses: \(general)", file: file, line: line)
                return true
            }
            XCTAssertEqual(scanned, g, "\(context): the scanner's view differs", file: file, line: line)
            XCTAssertEqual(scanned.sample, g.sample, context, file: file, line: line)
            return true
        }
    }

    func testScannerTakesEveryFixtureSampleAndAgrees() throws {
        for path in Fixtures.sampleDatasets {
            let url = Fixtures.url(path)
            let dataset = try ByteDataset(directory: url.path)
            for (i, pickle) in try pickles(url.path).enumerated() {
                XCTAssertTrue(assertAgree(pickle, "\(path) sample \(i)"), "\(path) sample \(i): the scanner handed it over")
                XCTAssertEqual(pickle.withUnsafeBufferPointer { SampleView.scanned(pickle: $0)?.sample }, try dataset.sample(at: i))
            }
        }
    }

    /// CPython's own output for the shapes the fixtures lack: protocols 2–5, strings over 64 KiB
    /// (frames in the middle of a sample, BINUNICODE outside frames), token-id lists over 1000
    /// items (several APPENDS batches), a title object used twice (BINGET of a value), ids of
    /// every int opcode, non-ASCII text.
    func testScannerTakesCPythonPicklesOfEveryShape() throws {
        let script = """
        import pickle, sys, os
        out = sys.argv[1]
        shared = "shared title"
        samples = [
            {"sample_id": 0, "questions": ["who?"], "positive_contexts": [{"title": "t", "text": "a"}], "hardneg_contexts": []},
            {"sample_id": 300, "questions": ["q1", "q2 é 中 😀"], "positive_contexts": [{"title": shared, "text": "x" * 70000}, {"title": shared, "text": "b"}],
             "hardneg_contexts": [{"title": "", "text": "y" * 300}]},
            {"sample_id": -5, "questions": [list(range(1200)), []], "positive_contexts": [{"title": [101, 102], "text": [7] * 1001}],
             "hardneg_contexts": [{"title": "mixed", "text": [2**31, -2**40, 65535, 65536, 256]}]},
            {"sample_id": 2**40, "questions": [], "positive_contexts": [], "hardneg_contexts": [{"title": "t", "text": "z" * 66000} for _ in range(2)]},
            {"sample_id": 70000, "questions": ["only"], "positive_contexts": [], "hardneg_contexts": []},
        ]
        for proto in (2, 3, 4, 5):
            d = os.path.join(out, "p%d" % proto)
            os.makedirs(d)
            offsets = []
            with open(os.path.join(d, "data.pkl"), "wb") as f:
                for s in samples:
                    offsets.append(f.tell())
                    pickle.dump(s, f, protocol=proto)
            with open(os.path.join(d, "idxs.pkl"), "wb") as f:
                f.write(len(offsets).to_bytes(4, "big"))
                for o in offsets: f.write(o.to_bytes(6, "big"))
        """
        _ = try DataTestHelpers.runPython(script, [dir.path])
        for proto in 2...5 {
            let path = dir.appendingPathComponent("p\(proto)").path
            let dataset = try ByteDataset(directory: path)
            for (i, pickle) in try pickles(path).enumerated() {
                XCTAssertTrue(assertAgree(pickle, "protocol \(proto) sample \(i)"), "protocol \(proto) sample \(i): handed over")
                XCTAssertEqual(pickle.withUnsafeBufferPointer { SampleView.scanned(pickle: $0)?.sample }, try dataset.sample(at: i))
            }
            // And through the dataset's batched read, in a scrambled order with repeats.
            let order = [3, 0, 4, 1, 2, 2, 0]
            var views: [SampleView] = []
            try dataset.readViews(at: order, into: &views, startingAt: 0)
            for (k, i) in order.enumerated() { XCTAssertEqual(views[k].sample, try dataset.sample(at: i), "protocol \(proto) item \(k)") }
        }
    }

    func testScannerTakesWhatOurWriterWrites() throws {
        let samples = [
            Sample(sampleID: 1, questions: [.tokenIDs(Array(0..<2500)), .text("q")],
                   positiveContexts: [Passage(title: .text("t"), text: .text(String(repeating: "é", count: 40_000)))],
                   hardnegContexts: [Passage(title: .tokenIDs([]), text: .tokenIDs([-1, 1 << 33]))]),
            Sample(sampleID: Int(Int32.min), questions: [], positiveContexts: [], hardnegContexts: []),
            // More fields, memo entries and tokens than the scanner's first buffers hold.
            Sample(sampleID: 3, questions: (0..<40).map { .text("q\($0)") },
                   positiveContexts: (0..<300).map { Passage(title: "t\($0)", text: "text \($0)") },
                   hardnegContexts: (0..<300).map { Passage(title: .tokenIDs([$0]), text: .tokenIDs(Array(0..<$0))) }),
        ]
        let out = dir.appendingPathComponent("written")
        let writer = try ByteDatasetWriter(directory: out.path)
        for s in samples { try writer.append(s) }
        try writer.finish()
        for (i, pickle) in try pickles(out.path).enumerated() {
            XCTAssertTrue(assertAgree(pickle, "written sample \(i)"), "written sample \(i): handed over")
            XCTAssertEqual(pickle.withUnsafeBufferPointer { SampleView.scanned(pickle: $0)?.sample }, samples[i])
        }
    }

    /// Layouts CPython does not write: the scanner takes the ones its grammar covers and hands
    /// the others over; either way the result is the general decoder's.
    func testHandMadeLayoutsGiveTheGeneralDecodersResult() throws {
        var cases: [(name: String, bytes: [UInt8], scanned: Bool)] = []
        func add(_ name: String, scanned: Bool, _ build: (inout HandPickle) -> Void) {
            var h = HandPickle()
            build(&h)
            cases.append((name, h.bytes, scanned))
        }
        add("standard", scanned: true) { $0.sample() }
        add("protocol 2 with BINPUT", scanned: true) { h in h = HandPickle(proto: 2, binput: true); h.sample() }
        add("LONG_BINPUT", scanned: true) { h in h = HandPickle(proto: 2, binput: true, long: true); h.sample() }
        add("BINUNICODE8 and LONG_BINGET", scanned: true) { h in
            h.dict(); h.op(0x28)
            h.key("sample_id"); h.op(0x4B, 1)
            h.key("questions"); h.list(); let q = h.str(Array("who?".utf8), op: 0x8D); h.op(0x61)
            h.key("positive_contexts"); h.list()
            h.dict(); h.op(0x28); h.key("title"); h.op(0x6A); h.le(q, 4); h.key("text"); h.str("t"); h.op(0x75); h.op(0x61)
            h.key("hardneg_contexts"); h.list(); h.op(0x75, 0x2E)
        }
        add("FRAME and PROTO between any two opcodes", scanned: true) { h in
            h.sample(around: { h in h.op(0x95); h.le(0, 8); h.op(0x80, 4) })
        }
        add("memo after the int id", scanned: true) { h in h.sample(id: [0x4A, 0xFB, 0xFF, 0xFF, 0xFF], memoizedID: true) }
        add("LONG1 ids", scanned: true) { h in h.sample(id: [0x8A, 8, 1, 2, 3, 4, 5, 6, 7, 0x80]) }
        add("LONG1 of 0 bytes", scanned: true) { h in h.sample(id: [0x8A, 0]) }
        add("APPEND then a MARK batch then an empty batch", scanned: true) { h in
            h.sample(questions: { h in h.str("a"); h.op(0x61, 0x28); h.str("b"); h.str("c"); h.op(0x65, 0x28, 0x65) })
        }
        add("a question that is a BINGET of a key", scanned: true) { h in
            h.sample(questions: { h in h.op(0x68, 1, 0x61) })  // memo 1 is "sample_id"
        }
        add("token ids: one int, a batch, memo after an int", scanned: true) { h in
            h.sample(questions: { h in
                h.list(); h.op(0x4D, 0x10, 0x27, 0x61, 0x28, 0x4B, 3); h.memoize(); h.op(0x4A, 1, 0, 0, 0x80, 0x65, 0x61)
            })
        }
        add("keys in another order", scanned: false) { h in
            h.dict(); h.op(0x28)
            h.key("questions"); h.list()
            h.key("sample_id"); h.op(0x4B, 9)
            h.key("hardneg_contexts"); h.list()
            h.key("positive_contexts"); h.list()
            h.op(0x75, 0x2E)
        }
        add("an extra key", scanned: false) { h in h.sample(extra: { h in h.key("extra"); h.op(0x4E) }) }
        add("a repeated key (the last wins)", scanned: false) { h in
            h.sample(extra: { h in h.key("questions"); h.list(); h.str("later"); h.op(0x61) })
        }
        add("SETITEM for each key", scanned: false) { h in
            h.dict()
            h.key("sample_id"); h.op(0x4B, 2, 0x73)
            h.key("questions"); h.list(); h.op(0x73)
            h.key("positive_contexts"); h.list(); h.op(0x73)
            h.key("hardneg_contexts"); h.list(); h.op(0x73, 0x2E)
        }
        add("text before title", scanned: false) { h in
            h.sample(passages: { h in h.dict(); h.op(0x28); h.key("text"); h.str("body"); h.key("title"); h.str("T"); h.op(0x75, 0x61) })
        }
        add("a non-sequential BINPUT", scanned: false) { h in
            h = HandPickle(proto: 2, binput: true)
            h.sample(questions: { h in h.op(0x58); h.le(1, 4); h.op(0x71, 200, 0x61) })
        }
        add("BINGET of a list", scanned: false) { h in h.sample(passages: { h in h.op(0x68, 3, 0x61) }) }  // memo 3: questions
        add("a str sample_id", scanned: false) { h in h.sample(id: [0x8C, 1, 0x31]) }
        add("a float among the token ids", scanned: false) { h in
            h.sample(questions: { h in h.list(); h.op(0x47, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x61, 0x61) })
        }
        add("PROTO 6", scanned: false) { h in h.sample(around: { h in h.op(0x80, 6) }) }
        add("a FRAME longer than the rest", scanned: false) { h in h.sample(around: { h in h.op(0x95); h.le(1 << 20, 8) }) }
        add("GLOBAL in a passage", scanned: false) { h in
            h.sample(passages: { h in h.op(0x63); h.raw(Array("os\nsystem\n".utf8)); h.op(0x61) })
        }
        add("no STOP", scanned: false) { h in h.sample(); h.dropLast() }

        var scannedCount = 0
        for c in cases {
            let took = assertAgree(c.bytes, c.name)
            if took { scannedCount += 1 }
            if c.scanned { XCTAssertTrue(took, "\(c.name): the scanner should take this layout") }
        }
        XCTAssertGreaterThan(scannedCount, 10)

        // A dataset mixing the valid ones: the batched read gives the general decoder's views.
        let valid = cases.filter { c in c.bytes.withUnsafeBufferPointer { (try? SampleView.decodeGenerally(pickle: $0)) != nil } }
        XCTAssertGreaterThan(valid.count, 15)
        var data: [UInt8] = [], offsets: [Int] = []
        for c in valid { offsets.append(data.count); data += c.bytes }
        let url = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: valid.count, offsets: offsets), data: data,
                                                  in: dir.appendingPathComponent("mixed"))
        let dataset = try ByteDataset(directory: url.path)
        let order = (0..<(3 * valid.count)).map { ($0 * 5 + 1) % valid.count }
        var views: [SampleView] = []
        try dataset.readViews(at: order, into: &views, startingAt: 0)
        for (k, i) in order.enumerated() {
            let expected = valid[i].bytes.withUnsafeBufferPointer { try? SampleView.decodeGenerally(pickle: $0) }
            XCTAssertEqual(views[k], expected, "mixed dataset item \(k): \(valid[i].name)")
        }
    }

    /// The scanner's UTF-8 check (word-at-a-time ASCII test, overlapping tails) refuses exactly
    /// what the general decoder's byte-by-byte check refuses, at every length up to 300 (the
    /// 128- and 64-byte loops and every tail) and every position.
    func testUTF8CheckAgreesAtEveryLengthAndPosition() throws {
        let patterns: [[UInt8]] = [
            [0x80], [0xFF], [0xC3], [0xC3, 0xA9], [0xE4, 0xB8, 0xAD], [0xE4, 0xB8], [0xF0, 0x9F, 0x98, 0x80],
            [0xED, 0xA0, 0x80], [0xC0, 0xAF], [0xF4, 0x90, 0x80, 0x80], [0xE0, 0x80, 0x80],
        ]
        var refused = 0, accepted = 0
        for length in 1...300 {
            for (p, pattern) in patterns.enumerated() {
                for position in 0..<length {
                    // The pattern over a run of ASCII, cut off where the text ends.
                    var text = [UInt8](repeating: 0x61, count: length)
                    for (k, b) in pattern.enumerated() where position + k < length { text[position + k] = b }
                    var h = HandPickle()
                    h.sample(questions: { h in h.str(text); h.op(0x61) })
                    let context = "length \(length) pattern \(pattern) at \(position)"
                    let valid = String(validating: text, as: UTF8.self) != nil
                    // A whole lone surrogate is not UTF-8, but Python reads it ("surrogatepass"):
                    // the scanner hands it over, the general decoder reads it (as U+FFFD).
                    let surrogate = pattern == [0xED, 0xA0, 0x80] && position + 3 <= length
                    let took: Bool
                    if (length + position + p) % 17 == 0 {
                        took = assertAgree(h.bytes, context)  // the whole comparison on a sample of cases
                    } else {
                        took = h.bytes.withUnsafeBufferPointer { SampleView.scanned(pickle: $0) != nil }
                        let general = h.bytes.withUnsafeBufferPointer { (try? SampleView.decodeGenerally(pickle: $0)) != nil }
                        XCTAssertEqual(general, valid || surrogate, context)
                    }
                    XCTAssertEqual(took, valid, context)
                    if took { accepted += 1 } else { refused += 1 }
                }
            }
        }
        XCTAssertGreaterThan(accepted, 100_000)
        XCTAssertGreaterThan(refused, 100_000)
    }

    /// Corrupted pickles: the scanner never crashes, and never accepts what the general decoder
    /// refuses or reads differently.
    func testCorruptedPicklesNeverDisagree() throws {
        var taken = 0
        for (round, bytes) in try DataTestHelpers.mutatedSamplePickles(rounds: 20_000, seed: 11).enumerated() {
            if assertAgree(bytes, "round \(round)") { taken += 1 }
        }
        XCTAssertGreaterThan(taken, 100)
    }
}

/// Pickle opcodes written by hand, for layouts CPython never writes. `sample()` writes the
/// layout CPython writes (protocol 4 with MEMOIZE, or BINPUT), with hooks to vary one part.
private struct HandPickle {
    private(set) var bytes: [UInt8]
    private var memo = 0
    private let binput: Bool
    private let long: Bool

    init(proto: UInt8 = 4, binput: Bool = false, long: Bool = false) {
        bytes = [0x80, proto]
        self.binput = binput
        self.long = long
    }

    mutating func op(_ b: UInt8...) { bytes += b }
    mutating func raw(_ b: [UInt8]) { bytes += b }
    mutating func le(_ value: Int, _ n: Int) { for i in 0..<n { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) } }
    mutating func dropLast() { bytes.removeLast() }

    /// MEMOIZE (or BINPUT / LONG_BINPUT with the next index); returns the index.
    @discardableResult
    mutating func memoize() -> Int {
        if !binput { bytes.append(0x94) } else if long { op(0x72); le(memo, 4) } else { op(0x71, UInt8(memo)) }
        memo += 1
        return memo - 1
    }

    /// A memoized str: SHORT_BINUNICODE under 256 bytes (protocol 4), else BINUNICODE, or `op`.
    @discardableResult
    mutating func str(_ s: [UInt8], op code: UInt8? = nil) -> Int {
        let code = code ?? (s.count < 256 && !binput ? 0x8C : 0x58)
        bytes.append(code)
        le(s.count, code == 0x8C ? 1 : code == 0x58 ? 4 : 8)
        bytes += s
        return memoize()
    }

    @discardableResult
    mutating func str(_ s: String) -> Int { str(Array(s.utf8)) }
    /// A key; "title" and "text" are remembered so that later passages can BINGET them as CPython does.
    mutating func key(_ name: String) {
        let index = str(name)
        if name == "title" && titleIndex == nil { titleIndex = index }
        if name == "text" && textIndex == nil { textIndex = index }
    }

    private var titleIndex: Int?
    private var textIndex: Int?

    /// A key by BINGET when it was written before.
    mutating func reusedKey(_ name: String) {
        if let index = name == "title" ? titleIndex : textIndex, index < 256 { op(0x68, UInt8(index)) } else { key(name) }
    }
    mutating func list() { op(0x5D); memoize() }
    mutating func dict() { op(0x7D); memoize() }

    /// `{"sample_id": id, "questions": [...], "positive_contexts": [...], "hardneg_contexts": []}`;
    /// `around` is written before every key, `extra` before SETITEMS.
    mutating func sample(id: [UInt8] = [0x4B, 7], memoizedID: Bool = false,
                         questions: ((inout HandPickle) -> Void)? = nil,
                         passages: ((inout HandPickle) -> Void)? = nil,
                         extra: ((inout HandPickle) -> Void)? = nil,
                         around: ((inout HandPickle) -> Void)? = nil) {
        dict()
        op(0x28)
        around?(&self)
        key("sample_id"); raw(id)
        if memoizedID { memoize() }
        around?(&self)
        key("questions"); list()
        if let questions { questions(&self) } else { op(0x28); str("who?"); str("why?"); op(0x65) }
        around?(&self)
        key("positive_contexts"); list()
        if let passages { passages(&self) } else {
            dict(); op(0x28); key("title"); str("T"); key("text"); str("body"); op(0x75, 0x61)
        }
        around?(&self)
        key("hardneg_contexts"); list()
        op(0x28)
        for _ in 0..<2 { dict(); op(0x28); reusedKey("title"); str("h"); reusedKey("text"); str("neg"); op(0x75) }
        op(0x65)
        extra?(&self)
        op(0x75, 0x2E)
    }
}
