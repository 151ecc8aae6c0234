import Foundation
import XCTest
import Data
import TestSupport

/// The view path (`SampleView.decode`, what the pipelines read) and the `Sample` path
/// (`Sample.decode`, `ByteDataset.sample(at:)`) against each other and against CPython: where
/// `pickle.loads` and the original's field access give a sample, both give it; where they fail,
/// both refuse. The fuzz target `pickle` checks the first half on random bytes; these are its
/// findings and a structured generator of the shapes behind them.
final class PickleDecoderAgreementTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Both decoders on `bytes`; they must give the same sample or the same error.
    private func decodeBoth(_ bytes: [UInt8], _ context: String,
                            file: StaticString = #filePath, line: UInt = #line) -> Result<Sample, SamplePickleError> {
        bytes.withUnsafeBufferPointer { b in
            let sample = Result { () throws(SamplePickleError) in try Sample.decode(pickle: b) }
            let view = Result { () throws(SamplePickleError) in try SampleView.decode(pickle: b).sample }
            XCTAssertEqual(view, sample, "\(context): the view and Sample paths disagree", file: file, line: line)
            return sample
        }
    }

    /// Whether CPython's `pickle.loads` reads each pickle.
    private func pythonLoads(_ pickles: [[UInt8]]) throws -> [Bool] {
        var paths: [String] = []
        for (i, p) in pickles.enumerated() {
            let url = dir.appendingPathComponent("case\(i).pkl")
            try Data(p).write(to: url)
            paths.append(url.path)
        }
        let script = """
        import pickle, sys
        for path in sys.argv[1:]:
            try:
                pickle.loads(open(path, 'rb').read()); print('loads')
            except Exception:
                print('refuses')
        """
        let out = try DataTestHelpers.runPython(script, paths)
        return out.split(separator: "\n").map { $0 == "loads" }
    }

    private func str(_ bytes: [UInt8]) -> [UInt8] { [0x8C, UInt8(bytes.count)] + bytes }
    private func str(_ s: String) -> [UInt8] { str(Array(s.utf8)) }

    /// A protocol-4 sample dict: one SETITEMS with `before`, sample_id 1, `questions`, two empty
    /// passage lists, `after`.
    private func sample(before: [UInt8] = [], questions: [UInt8] = [0x5D], after: [UInt8] = []) -> [UInt8] {
        [0x80, 0x04, 0x7D, 0x28] + before + str("sample_id") + [0x4B, 0x01] + str("questions") + questions
            + str("positive_contexts") + [0x5D] + str("hardneg_contexts") + [0x5D] + after + [0x75, 0x2E]
    }

    private let one = Sample(sampleID: 1, questions: [], positiveContexts: [], hardnegContexts: [])

    /// The fuzz finding ("the view decoded but Sample.decode threw"): `sample_id` first None, then 1.
    /// The view pass took the last value; the Sample pass gave up at the None and left the pickle
    /// to the generic reader, which refused something else in it. Before the fix each of these
    /// decoded as a view and threw in `Sample.decode`.
    func testFuzzFindingARepeatedKeyAndWhatOnlyTheGenericReaderRefused() throws {
        let noneFirst = str("sample_id") + [0x4E]
        let unhashable = sample(before: noneFirst, after: [0x5D, 0x4B, 0x00])  // `[]: 0`
        let deep = sample(before: noneFirst, after: str("x") + [UInt8](repeating: 0x5D, count: 250)
                          + [UInt8](repeating: 0x61, count: 249))  // lists 250 deep
        let cycle = sample(before: noneFirst, after: str("x") + [0x5D, 0x71, 0x05, 0x68, 0x05, 0x61])  // x = [x]
        XCTAssertEqual(try pythonLoads([unhashable, deep, cycle]), [false, true, true])
        guard case .failure(let error) = decodeBoth(unhashable, "unhashable key") else { return XCTFail("unhashable key read") }
        XCTAssertTrue("\(error)".contains("unhashable key"), "\(error)")
        XCTAssertEqual(decodeBoth(deep, "deep"), .success(one))
        XCTAssertEqual(decodeBoth(cycle, "cycle"), .success(one))
        // A repeated key whose earlier value has the wrong type: the last one counts, as in Python.
        XCTAssertEqual(decodeBoth(sample(before: str("questions") + [0x4B, 0x02]), "questions 2 then []"), .success(one))
    }

    /// Opcodes that reach under a MARK: CPython refuses them ("unexpected MARK found") except
    /// STOP, which returns the top value whatever lies below, and an empty APPENDS, which touches
    /// nothing. Before the fix both decoders read the first two and refused the last two.
    func testTheMarkFencesTheStackAsInCPython() throws {
        let question = str("q")
        let appendsUnderMark = sample(questions: [0x5D, 0x28, 0x28] + question + [0x65, 0x65])
        let memoAboveMark = [0x80, 0x04, 0x7D, 0x28, 0x94] + Array(sample().dropFirst(4))
        let stopUnderMark = [0x80, 0x04, 0x28] + Array(sample().dropFirst(2))
        let emptyAppendsOnAnInt = sample(after: str("x") + [0x4B, 0x05, 0x28, 0x65])
        XCTAssertEqual(try pythonLoads([appendsUnderMark, memoAboveMark, stopUnderMark, emptyAppendsOnAnInt]),
                       [false, false, true, true])
        if case .success = decodeBoth(appendsUnderMark, "APPENDS under a MARK") { XCTFail("APPENDS under a MARK read") }
        if case .success = decodeBoth(memoAboveMark, "MEMOIZE on a MARK") { XCTFail("MEMOIZE on a MARK read") }
        XCTAssertEqual(decodeBoth(stopUnderMark, "STOP under a MARK"), .success(one))
        XCTAssertEqual(decodeBoth(emptyAppendsOnAnInt, "empty APPENDS on an int"), .success(one))
    }

    /// A str CPython cannot decode is an error wherever it is, also under a key a sample ignores;
    /// in a field, both paths name the field. Before the fix both read the first two (the view
    /// does not look at other keys, the Sample path replaced the bytes) and only the view refused
    /// the third.
    func testInvalidUTF8IsRefusedWhereverItIs() throws {
        let ignoredValue = sample(after: str("x") + str([0xFF]))
        let ignoredKey = sample(after: str([0x6B, 0xFE]) + [0x4B, 0x01])
        let field = sample(questions: [0x5D] + str([0x61, 0xC0, 0x80]) + [0x61])
        XCTAssertEqual(try pythonLoads([ignoredValue, ignoredKey, field]), [false, false, false])
        for (name, p) in [("ignored value", ignoredValue), ("ignored key", ignoredKey)] {
            guard case .failure(let error) = decodeBoth(p, name) else { XCTFail("\(name) read"); continue }
            XCTAssertTrue("\(error)".contains("is not valid UTF-8 at byte offset"), "\(error)")
        }
        let offset = field.firstIndex(of: 0xC0)!  // the overlong form's first byte
        XCTAssertEqual(decodeBoth(field, "field"), .failure(.invalidUTF8(field: "questions[0]", offset: offset)))
    }

    /// Lone surrogates: CPython's pickler writes a str holding one as its 3-byte form
    /// ("surrogatepass"), and so does `create-dataset` for a JSON "\ud800"; Python reads it back.
    /// Both paths read it, each surrogate as one U+FFFD (a Swift String cannot hold one; the BERT
    /// tokenizer drops both alike). Before the fix the view refused it and the Sample path made
    /// three U+FFFD of it.
    func testLoneSurrogatesReadAsOneReplacementCharacterEach() throws {
        let lone: [UInt8] = [0x61, 0xED, 0xA0, 0x80, 0x62]          // "a\ud800b"
        let pair: [UInt8] = [0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80]   // "\ud83d\ude00", two lone surrogates
        let p = sample(before: str([0xED, 0xBF, 0xBF]) + [0x4B, 0x02],  // a key "\udfff" too
                       questions: [0x5D, 0x28] + str(lone) + str(pair) + str("ok") + [0x65])
        XCTAssertEqual(try pythonLoads([p]), [true])
        let expected = Sample(sampleID: 1, questions: [.text("a\u{FFFD}b"), .text("\u{FFFD}\u{FFFD}"), .text("ok")],
                              positiveContexts: [], hardnegContexts: [])
        XCTAssertEqual(decodeBoth(p, "surrogates"), .success(expected))
        // From a dataset file: sample(at:), the view and the batched read.
        let ds = try DataTestHelpers.makeDataset(idxs: DataTestHelpers.idxs(count: 1, offsets: [0]), data: p,
                                                 in: dir.appendingPathComponent("surrogates"))
        let dataset = try ByteDataset(directory: ds.path)
        XCTAssertEqual(try dataset.sample(at: 0), expected)
        XCTAssertEqual(try dataset.view(at: 0).sample, expected)
        var views: [SampleView] = []
        try dataset.readViews(at: [0, 0], into: &views, startingAt: 0)
        XCTAssertEqual(views.map(\.sample), [expected, expected])
        // The JSON line create-dataset converts reads as the same sample as its pickle. (In JSON, as
        // in Python's json, an escaped pair is one character; a low one before a high one is not a pair.)
        let json = try JSONParser.parse(#"{"sample_id": 1, "questions": ["a\ud800b", "\udfff\ud800", "ok"], "#
                                        + #""positive_contexts": [], "hardneg_contexts": []}"#)
        XCTAssertEqual(try SampleJSON.sample(from: json), expected)
        XCTAssertEqual(decodeBoth(PickleWriter.dumps(json: json), "create-dataset's pickle"), .success(expected))
    }

    /// Generated samples in many shapes (repeated keys, extra keys, unhashable keys, deep and
    /// self-containing values, memo opcodes, MARK misuse, SETITEM one by one, token lists, lone
    /// surrogates, invalid UTF-8 in fields and keys), each checked against CPython, through both
    /// decoders and a ByteDataset's `sample(at:)` and `readView`. The one allowed difference:
    /// a value nested over 200 deep (or containing itself), which Python reads, is refused when a
    /// pickle goes to the generic reader (its bound against pickles that explode in memory).
    func testBothDecodersAgreeWithCPythonOnGeneratedShapes() throws {
        let out = dir.appendingPathComponent("variants")
        _ = try DataTestHelpers.runPython(Self.generator, [out.path, "5", "3000"])
        let dataset = try ByteDataset(directory: out.path)
        let data = [UInt8](try Data(contentsOf: out.appendingPathComponent("data.pkl")))
        let lines = try String(contentsOf: out.appendingPathComponent("expected.jsonl"), encoding: .utf8)
            .split(separator: "\n")
        XCTAssertEqual(lines.count, dataset.count)
        var read = 0, refused = 0, bounded = 0
        var view = SampleView()
        for (i, line) in lines.enumerated() {
            let end = i + 1 < dataset.count ? try dataset.offset(at: i + 1) : data.count
            let bytes = Array(data[try dataset.offset(at: i)..<end])
            let context = "case \(i)"
            let result = decodeBoth(bytes, context)
            let fileResult = Result { try dataset.sample(at: i) }
            let viewResult = Result { () throws(ByteDatasetError) in try dataset.readView(at: i, into: &view); return view.sample }
            XCTAssertEqual(try? fileResult.get(), try? result.get(), "\(context): ByteDataset.sample(at:)")
            XCTAssertEqual(try? viewResult.get(), try? result.get(), "\(context): ByteDataset.readView")

            let record = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            guard let expected = record["expected"] as? [String: Any] else {
                if case .success(let s) = result { XCTFail("\(context): Python refuses it, we read \(s)") }
                refused += 1
                continue
            }
            switch result {
            case .success(let s):
                XCTAssertEqual(s, Self.sample(expected), context)
                read += 1
            case .failure(let error):
                if record["bounded"] as? Bool == true && "\(error)".contains("nested more than 200 deep") {
                    bounded += 1
                } else {
                    XCTFail("\(context): Python reads it, we refuse: \(error)")
                }
            }
        }
        XCTAssertGreaterThan(read, 400)
        XCTAssertGreaterThan(refused, 1000)
        XCTAssertLessThan(bounded, read / 4)
    }

    /// The generator's expected sample (`{"id", "q", "p", "h"}`, text as str or list of ints).
    private static func sample(_ json: [String: Any]) -> Sample {
        func field(_ v: Any) -> TextField { (v as? String).map { .text($0) } ?? .tokenIDs((v as! [NSNumber]).map(\.intValue)) }
        func passages(_ v: Any) -> [Passage] { (v as! [[Any]]).map { Passage(title: field($0[0]), text: field($0[1])) } }
        return Sample(sampleID: (json["id"] as! NSNumber).intValue, questions: (json["q"] as! [Any]).map(field),
                      positiveContexts: passages(json["p"]!), hardnegContexts: passages(json["h"]!))
    }

    private static let generator = #"""
        import pickle, random, sys, os, json
        # Sample pickles in many shapes, each with what CPython's pickle.loads and the original's field
        # access make of it (None: refused). argv: output directory, seed, count.
        rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 5)
        out = sys.argv[1]
        def S(x):
            b = x if isinstance(x, bytes) else x.encode('utf-8', 'surrogatepass')
            return b'\x8c' + bytes([len(b)]) + b
        def I(n):
            if rng.random() < 0.2 or not -2**31 <= n < 2**31: return b'\x8a\x08' + n.to_bytes(8, 'little', signed=True)
            return b'K' + bytes([n]) if 0 <= n < 256 else b'J' + n.to_bytes(4, 'little', signed=True)
        def memo(): return b'\x94' if rng.random() < 0.3 else b''
        def text():
            r = rng.random()
            if r < 0.62: return S(rng.choice(['q', 'who?', 'caf\u00e9 \u4e2d', ''])) + memo()
            if r < 0.8: return b']' + memo() + b'(' + b''.join(I(rng.randrange(-5, 70000)) for _ in range(rng.randrange(3))) + b'e'
            if r < 0.9: return S(rng.choice(['a\ud800b', '\udfff', '\ud83d\ude00x']))  # lone surrogates (CPython writes these)
            if r < 0.94: return S(rng.choice([b'ab\xff', b'\xc0\x80', b'\xed\xa0']))  # refused by Python
            if r < 0.97: return b'N'
            return b'K\x07'
        def texts():
            items = [text() for _ in range(rng.randrange(3))]
            r = rng.random()
            if r < 0.6: return b']' + memo() + b'(' + b''.join(items) + b'e'
            if r < 0.8: return b']' + b''.join(i + b'a' for i in items)
            if r < 0.93: return b']((' + b''.join(items) + b'ee'  # APPENDS under its outer MARK: Python refuses
            return b'N'
        def passage():
            r = rng.random()
            if r < 0.94: return b'}' + memo() + b'(' + S('title') + text() + S('text') + text() + b'u'
            if r < 0.97: return b'}(' + S('title') + text() + b'u'  # no text
            return b'K\x01'
        def passages():
            items = [passage() for _ in range(rng.randrange(3))]
            if rng.random() < 0.85: return b']' + memo() + b'(' + b''.join(items) + b'e'
            return S('x')
        deep = lambda: b']' * 250 + b'a' * 249
        def extra():
            r = rng.random()
            if r < 0.35: return S('extra') + text(), False
            if r < 0.5: return S('deep') + deep(), True          # Python reads it; our generic reader bounds nesting
            if r < 0.6: return S('cycle') + b']q\xc8h\xc8a', True  # a list that contains itself: the same
            if r < 0.7: return b']K\x00', False                   # an unhashable key: Python refuses
            if r < 0.9: return S('\ud800') + b'K\x01', False       # a surrogate key
            return S(b'k\xfe') + b'K\x01', False                    # a key Python cannot decode
        cases = []
        for n in range(int(sys.argv[3]) if len(sys.argv) > 3 else 3000):
            good = {'sample_id': lambda: I(rng.choice([0, 7, 300, 70000, -5, 2**40])), 'questions': texts,
                    'positive_contexts': passages, 'hardneg_contexts': passages}
            bad = {'sample_id': lambda: rng.choice([b'N', S('1'), b']']), 'questions': lambda: b'N',
                   'positive_contexts': lambda: b'K\x02', 'hardneg_contexts': lambda: S('no')}
            pairs, bounded = [], False
            for k in good:
                if rng.random() < 0.2: pairs.append(S(k) + memo() + bad[k]())   # an earlier value that a repeat replaces
                if rng.random() < 0.97: pairs.append(S(k) + memo() + good[k]())
            for _ in range(rng.randrange(3)):
                e, b = extra()
                bounded |= b
                pairs.insert(rng.randrange(len(pairs) + 1), e)
            body = b''.join(pairs)
            r = rng.random()
            if r < 0.1: p = b'\x80\x04(}(' + body + b'u.'            # STOP under an open MARK: Python reads it
            elif r < 0.13: p = b'\x80\x04}(\x94' + body + b'u.'      # a memo store right above the MARK: Python refuses
            elif r < 0.2: p = b'\x80\x04}' + b''.join(x + b's' for x in pairs) + b'.'  # SETITEM one by one
            else: p = b'\x80\x04}\x94(' + body + b'u.'
            try:
                d = pickle.loads(p)
                def t(v):
                    if isinstance(v, str): return ''.join('\ufffd' if 0xD800 <= ord(c) <= 0xDFFF else c for c in v)
                    if isinstance(v, list) and all(type(i) is int for i in v): return v
                    raise ValueError('not a text field')
                def ps(v):
                    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v): raise ValueError('passages')
                    return [[t(x['title']), t(x['text'])] for x in v]
                sid = d['sample_id']
                if type(sid) is not int: raise ValueError('id')
                if not isinstance(d['questions'], list): raise ValueError('questions')
                expected = {'id': sid, 'q': [t(q) for q in d['questions']], 'p': ps(d['positive_contexts']), 'h': ps(d['hardneg_contexts'])}
            except Exception:
                expected = None
            cases.append((p, expected, bounded))
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, 'data.pkl'), 'wb') as f, open(os.path.join(out, 'expected.jsonl'), 'w') as e:
            offsets = []
            for p, expected, bounded in cases:
                offsets.append(f.tell()); f.write(p)
                e.write(json.dumps({'expected': expected, 'bounded': bounded}) + '\n')
        with open(os.path.join(out, 'idxs.pkl'), 'wb') as f:
            f.write(len(offsets).to_bytes(4, 'big'))
            for o in offsets: f.write(o.to_bytes(6, 'big'))
        print(len(cases), sum(1 for c in cases if c[1] is not None))
        """#
}
