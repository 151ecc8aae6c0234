import XCTest
import Model
import TestSupport

final class SafeTensorsTests: XCTestCase {
    func testReadsFixtureHeaderAndTypes() throws {
        let file = try SafeTensorsFile(url: Fixtures.url("losses.safetensors"))
        XCTAssertEqual(file.tensors.count, 44)
        XCTAssertEqual(try file.info("pos_hardneg.cosine.h").shape, [4, 3, 8])
        XCTAssertEqual(try file.info("inbatch.cosine.mask").dtype, .i64)
        XCTAssertEqual(try file.ints("inbatch.cosine.mask").count, 32)
        XCTAssertThrowsError(try file.floats("inbatch.cosine.mask")) { error in
            XCTAssertTrue("\(error)".contains("inbatch.cosine.mask"), "\(error)")
        }
        XCTAssertThrowsError(try file.floats("no.such.tensor")) { error in
            XCTAssertEqual(error as? SafeTensorsError, .missingTensor(file: file.path, name: "no.such.tensor"))
        }
        XCTAssertThrowsError(try file.floats("inbatch.cosine.q", shape: [8, 4]))
    }

    func testWriteThenReadRoundTrip() throws {
        var writer = SafeTensorsWriter()
        writer.add("a.weight", shape: [2, 3], floats: [1, -2, 3.5, 0, .greatestFiniteMagnitude, -0.0])
        writer.add("ids", shape: [3], int64s: [1, -7, 1 << 40])
        writer.metadata = ["format": "pt"]
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("t.safetensors")
        try writer.write(to: url)
        let file = try SafeTensorsFile(url: url)
        XCTAssertEqual(try file.floats("a.weight"), [1, -2, 3.5, 0, .greatestFiniteMagnitude, -0.0])
        XCTAssertEqual(try file.ints("ids"), [1, -7, 1 << 40])
        XCTAssertEqual(file.metadata["format"], "pt")
        XCTAssertEqual(file.names, ["a.weight", "ids"])
        // Python's safetensors reads it too, when available.
        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "python3"
        let script = """
        import sys
        try:
            from safetensors.numpy import load_file
        except ImportError:
            print("skip"); sys.exit(0)
        d = load_file(sys.argv[1]); print(d["a.weight"].tolist()[0], d["ids"].tolist())
        """
        if let result = try? Command.run(URL(fileURLWithPath: "/usr/bin/env"), [python, "-c", script, url.path]),
           result.status == 0, !result.stdout.hasPrefix("skip") {
            XCTAssertEqual(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                           "[1.0, -2.0, 3.5] [1, -7, 1099511627776]")
        }
    }

    func testTruncatedAndCorruptFilesAreClearErrors() throws {
        let original = try Data(contentsOf: Fixtures.url("losses.safetensors"))
        let path = "/x/model.safetensors"
        XCTAssertThrowsError(try SafeTensorsFile(data: original.prefix(5), path: path)) { error in
            guard case .truncated(let file, _)? = error as? SafeTensorsError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, path)
        }
        XCTAssertThrowsError(try SafeTensorsFile(data: original.prefix(original.count - 10), path: path)) { error in
            guard case .truncated? = error as? SafeTensorsError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains(path))
        }
        XCTAssertThrowsError(try SafeTensorsFile(data: original.prefix(100), path: path)) { error in
            guard case .truncated? = error as? SafeTensorsError else { return XCTFail("\(error)") }
        }
        var garbage = original
        garbage[8] = UInt8(ascii: "x")
        XCTAssertThrowsError(try SafeTensorsFile(data: garbage, path: path)) { error in
            guard case .badHeader? = error as? SafeTensorsError else { return XCTFail("\(error)") }
        }
        // A shape that does not match the byte span.
        func file(header: String, dataBytes: Int) -> Data {
            var d = Data()
            var n = UInt64(header.utf8.count).littleEndian
            withUnsafeBytes(of: &n) { d.append(contentsOf: $0) }
            d.append(Data(header.utf8))
            d.append(Data(repeating: 0, count: dataBytes))
            return d
        }
        XCTAssertThrowsError(try SafeTensorsFile(
            data: file(header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8), path: path)) {
            XCTAssertTrue("\($0)".contains("'w' spans 8 bytes"), "\($0)")
        }
        XCTAssertThrowsError(try SafeTensorsFile(
            data: file(header: #"{"w":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 8), path: path))
        XCTAssertThrowsError(try SafeTensorsFile(
            data: file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                       dataBytes: 12), path: path)) {
            XCTAssertTrue("\($0)".contains("overlap"), "\($0)")
        }
        XCTAssertThrowsError(try SafeTensorsFile(url: URL(fileURLWithPath: "/nonexistent/model.safetensors"))) {
            XCTAssertTrue("\($0)".contains("/nonexistent/model.safetensors"))
        }
    }
}
