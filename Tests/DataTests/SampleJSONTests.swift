import XCTest
import Data
import TestSupport

final class SampleJSONTests: XCTestCase {
    func testStringsEscapesAndSurrogates() throws {
        let text = #"["plain", "tab\there", "q\"b\\s\/", "\u00e9\u4e2d", "\ud83d\ude00", "lone \ud800!", "caf\u00e9 raw é 中 😀"]"#
        guard case .array(let items) = try JSONParser.parse(text) else { return XCTFail("not an array") }
        let strings = items.compactMap { $0.stringValue }
        XCTAssertEqual(Array(strings.prefix(5)), ["plain", "tab\there", "q\"b\\s/", "é中", "😀"])
        // A lone surrogate keeps Python's surrogatepass bytes (ED A0 80) for the pickle writer.
        XCTAssertEqual(items[5], .string(Array("lone ".utf8) + [0xED, 0xA0, 0x80] + Array("!".utf8)))
        XCTAssertEqual(strings[6], "café raw é 中 😀")
    }

    func testNumbersFollowPython() throws {
        guard case .array(let items) = try JSONParser.parse("[0, -7, 1.5, 1e3, -0.0, 123456789012345678901234567890, NaN, -Infinity]") else {
            return XCTFail("not an array")
        }
        XCTAssertEqual(Array(items[0..<6]), [.int(0), .int(-7), .float(1.5), .float(1000), .float(-0.0),
                                             .bigInt("123456789012345678901234567890")])
        guard case .float(let nan) = items[6] else { return XCTFail("NaN is not a float") }
        XCTAssertTrue(nan.isNaN)
        XCTAssertEqual(items[7], .float(-.infinity))
    }

    func testSyntaxErrorsSayWhatAndWhere() {
        let cases: [(String, String, Int)] = [
            (#"{"a": 1,}"#, "expected a string key", 9),
            (#"{"a" 1}"#, "expected ':'", 6),
            (#"[1 2]"#, "expected ',' or ']'", 4),
            ("\"tab\tinside\"", "invalid control character", 5),
            (#""bad \x escape""#, "invalid escape", 6),
            (#"01"#, "extra data", 2),
            (#"[1, 2"#, "unexpected end of input", 6),
            (#"tru"#, "invalid literal", 1),
        ]
        for (text, message, column) in cases {
            XCTAssertThrowsError(try JSONParser.parse(text), text) { error in
                guard let e = error as? JSONSyntaxError else { return XCTFail("\(error)") }
                XCTAssertTrue(e.message.contains(message), "\(text): \(e)")
                if !message.isEmpty { XCTAssertEqual(e.column + 1, column, "\(text): \(e)") }
            }
        }
        // Invalid UTF-8 inside a string (a lone continuation byte, an overlong form).
        for bytes: [UInt8] in [[0x22, 0x61, 0x80, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xE4, 0xB8, 0x22]] {
            XCTAssertThrowsError(try JSONParser.parse(bytes)) { error in
                XCTAssertTrue("\(error)".contains("UTF-8"), "\(error)")
            }
        }
        XCTAssertThrowsError(try JSONParser.parse(String(repeating: "[", count: 10_000))) { error in
            XCTAssertTrue("\(error)".contains("nesting"), "\(error)")
        }
    }

    func testSampleLineRoundTrip() throws {
        let samples = try JSONLinesFile.readSamples(path: Fixtures.url("pipelines/all.jsonl").path)
        for sample in samples {
            XCTAssertEqual(try SampleJSON.sample(from: JSONParser.parse(SampleJSON.line(for: sample))), sample)
        }
        let tokenized = Sample(sampleID: 3, questions: [.tokenIDs([101, 2054, 102])],
                               positiveContexts: [Passage(title: .tokenIDs([]), text: .tokenIDs([7]))], hardnegContexts: [])
        XCTAssertEqual(SampleJSON.line(for: tokenized),
                       #"{"sample_id": 3, "questions": [[101, 2054, 102]], "positive_contexts": [{"title": [], "text": [7]}], "hardneg_contexts": []}"#)
        XCTAssertEqual(try SampleJSON.sample(from: JSONParser.parse(SampleJSON.line(for: tokenized))), tokenized)
    }
}

