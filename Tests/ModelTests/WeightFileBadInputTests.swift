import Foundation
import XCTest
import Model
import TestSupport

/// Hostile or corrupt weight files and configs (issue 8, part 1): each input here crashed the
/// loader (an integer overflow trap, an index out of range, an allocation of terabytes) before it
/// was fixed, and must now be a thrown error that names the file and what is wrong. The seeds of
/// the fuzz harness (Tests/Fuzz/seeds) are the valid starting points the mutations come from.
final class WeightFileBadInputTests: XCTestCase {
    static let seeds = Fixtures.packageRoot.appendingPathComponent("Tests/Fuzz/seeds")

    func seed(_ target: String, _ name: String) throws -> Data {
        try Data(contentsOf: Self.seeds.appendingPathComponent(target).appendingPathComponent(name))
    }

    /// `bytes` with the first occurrence of `pattern` replaced by `replacement` (same length).
    func patched(_ bytes: Data, _ pattern: [UInt8], _ replacement: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> Data {
        precondition(pattern.count == replacement.count)
        var out = [UInt8](bytes)
        guard let at = (0...(out.count - pattern.count)).first(where: { Array(out[$0..<($0 + pattern.count)]) == pattern }) else {
            XCTFail("pattern not found", file: file, line: line)
            return bytes
        }
        out.replaceSubrange(at..<(at + pattern.count), with: replacement)
        return Data(out)
    }

    func assertMalformed(_ body: @autoclosure () throws -> Any, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case .malformedWeights(let path, _, let reason)? = error as? ModelError else {
                return XCTFail("expected malformedWeights, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(path, "pytorch_model.bin", file: file, line: line)
            XCTAssertTrue(reason.contains(needle), reason, file: file, line: line)
        }
    }

    // MARK: pytorch_model.bin

    func testTorchSeedsLoadStridedHalfAndParameterTensors() throws {
        for name in ["strided.bin", "strided-zip64-wide-ints.bin"] {
            let checkpoint = try TorchCheckpoint(archive: ZipArchive(data: seed("torch", name), path: name))
            XCTAssertEqual(checkpoint.names, ["embeddings.weight", "half", "offset.bias", "transposed"], name)
            XCTAssertEqual(try checkpoint.tensor("embeddings.weight").floats, [1, 2, 3, 4, 5, 6], name)
            XCTAssertEqual(try checkpoint.tensor("transposed").floats, [1, 4, 2, 5, 3, 6], name)
            XCTAssertEqual(try checkpoint.tensor("offset.bias").floats, [5, 6], name)
            XCTAssertEqual(try checkpoint.tensor("half").floats, [1, 0.5, -2, 0], name)
        }
    }

    /// Sizes, strides and offsets are 4-byte BININTs in the zip64 seed; patching one in place keeps the zip valid.
    func torchVariant(size: (Int32, Int32) = (2, 3), stride: (Int32, Int32) = (3, 1)) throws -> TorchCheckpoint {
        func le(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func pair(_ a: Int32, _ b: Int32) -> [UInt8] { [0x4A] + le(a) + [0x4A] + le(b) + [0x86] }  // BININT, BININT, TUPLE2
        // The first tensor, embeddings.weight: storage offset 0, size (2, 3) memoized as 9, stride (3, 1).
        let bytes = patched(try seed("torch", "strided-zip64-wide-ints.bin"), [0x4A] + le(0) + pair(2, 3) + [0x71, 9] + pair(3, 1),
                            [0x4A] + le(0) + pair(size.0, size.1) + [0x71, 9] + pair(stride.0, stride.1))
        return try TorchCheckpoint(archive: ZipArchive(data: bytes, path: "pytorch_model.bin"))
    }

    func testTorchTensorWithANegativeSizeIsAnError() throws {
        // Was: a contiguous copy of storage[0..<-6], a range trap.
        assertMalformed(try torchVariant(size: (-2, 3)).tensor("embeddings.weight"), "negative size, stride or offset")
    }

    func testTorchTensorWithANegativeStrideIsAnError() throws {
        // Was: a gather from storage[-1], an index out of range.
        assertMalformed(try torchVariant(stride: (3, -1)).tensor("embeddings.weight"), "negative size, stride or offset")
    }

    func testTorchTensorReachingFarPastItsStorageIsAnError() throws {
        // (size - 1) * stride is now summed with overflow checks: with 8-byte LONG1 sizes it trapped.
        assertMalformed(try torchVariant(size: (.max, .max), stride: (.max, .max)).tensor("embeddings.weight"),
                        "reads past the 6 elements of storage 0")
    }

    func testTorchBroadcastViewLargerThanItsStorageIsAnError() throws {
        // Was: an allocation of 2^31 * 3 floats (24 GB) for a tensor read from a 24-byte storage.
        assertMalformed(try torchVariant(size: (.max, 3), stride: (0, 0)).tensor("embeddings.weight"),
                        "has 6442450941 elements but its storage 0 only 6")
    }

    /// The zip64 seed with one 8-byte field of a zip64 record or extra field set to `value`.
    func zip64Variant(record signature: [UInt8], fieldAt offset: Int, _ value: UInt64) throws -> Data {
        var bytes = [UInt8](try seed("torch", "strided-zip64-wide-ints.bin"))
        guard let at = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<($0 + 4)]) == signature }) else {
            XCTFail("no record \(signature)")
            return Data(bytes)
        }
        let le = withUnsafeBytes(of: value.littleEndian) { Array($0) }
        bytes.replaceSubrange((at + offset)..<(at + offset + 8), with: le)
        return Data(bytes)
    }

    func testZip64CentralDirectorySizeNearIntMaxIsAnError() throws {
        // Was: cdOffset + cdSize overflowed (the first crash the fuzzer found, in 5k runs).
        let bytes = try zip64Variant(record: [0x50, 0x4B, 0x06, 0x06], fieldAt: 40, 0x7FFF_FFFF_FFFF_FFF0)
        assertMalformed(try ZipArchive(data: bytes, path: "pytorch_model.bin"), "central directory runs past the end")
    }

    func testZip64LocalHeaderOffsetNearIntMaxIsAnError() throws {
        // Was: offset + 4 overflowed in the bounds check of the local header's signature.
        // The first central entry (data.pkl): its zip64 extra field holds size, size, local offset.
        let nameLength = "archive/data.pkl".utf8.count
        let bytes = try zip64Variant(record: [0x50, 0x4B, 0x01, 0x02], fieldAt: 46 + nameLength + 4 + 16, 0x7FFF_FFFF_FFFF_FFFE)
        assertMalformed(try TorchCheckpoint(archive: ZipArchive(data: bytes, path: "pytorch_model.bin")), "unexpected end of file")
    }

    func testZip64EntrySizeNearIntMaxIsAnError() throws {
        // Was: start + size overflowed in dataRange.
        let nameLength = "archive/data.pkl".utf8.count
        let bytes = try zip64Variant(record: [0x50, 0x4B, 0x01, 0x02], fieldAt: 46 + nameLength + 4, 0x7FFF_FFFF_FFFF_FFF0)
        assertMalformed(try TorchCheckpoint(archive: ZipArchive(data: bytes, path: "pytorch_model.bin")), "the file ends first")
    }

    // MARK: model.safetensors

    func safetensors(header: String, dataBytes: Int) -> Data {
        var out = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: [UInt8](repeating: 0, count: dataBytes))
        return out
    }

    func testSafetensorsShapeWhoseByteSizeOverflowsIsAnError() throws {
        // Was: 2^60 + 1 elements fit in Int, but times 8 bytes (F64) trapped.
        let file = safetensors(header: #"{"w": {"dtype": "F64", "shape": [1152921504606846977], "data_offsets": [0, 8]}}"#, dataBytes: 8)
        XCTAssertThrowsError(try SafeTensorsFile(data: file, path: "model.safetensors")) { error in
            XCTAssertEqual("\(error)", "model.safetensors: invalid safetensors header: tensor 'w' shape [1152921504606846977] overflows")
        }
    }

    func testSafetensorsOffsetsBeyondIntAreRefusedNotWrapped() throws {
        // Was: NSNumber.intValue turned 2^64 into 0, so these offsets were read as [0, 4].
        let file = safetensors(header: #"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [18446744073709551616, 4]}}"#, dataBytes: 4)
        XCTAssertThrowsError(try SafeTensorsFile(data: file, path: "model.safetensors")) { error in
            XCTAssertEqual("\(error)", "model.safetensors: invalid safetensors header: tensor 'w' has invalid data_offsets")
        }
    }

    /// Also a regression: the empty tensor shares its offset with `scalar`, and the overlap check
    /// refused the file whenever the dictionary happened to list `scalar` first (in about half of
    /// the processes: Swift seeds its hashing per process).
    func testSafetensorsSeedReadsEveryDType() throws {
        let file = try SafeTensorsFile(data: seed("safetensors", "every-dtype.safetensors"), path: "every-dtype")
        XCTAssertEqual(try file.floats("f16"), [1, -0.5, 65504])
        XCTAssertEqual(try file.floats("bf16"), [1, -2])
        XCTAssertEqual(try file.ints("i64"), [-1, 1 << 40])
        XCTAssertEqual(try file.floats("empty"), [])
        XCTAssertEqual(try file.floats("scalar"), [2])
    }

    // MARK: config.json

    func bertConfig(_ overrides: String) -> Data {
        Data(("{\"model_type\": \"bert\", \"vocab_size\": 100, \"hidden_size\": 8, \"num_hidden_layers\": 1, "
            + "\"num_attention_heads\": 2, \"intermediate_size\": 16" + overrides + "}").utf8)
    }

    func assertInvalidConfig(_ json: Data, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try BertConfig.decode(json, file: "config.json"), file: file, line: line) { error in
            guard case .invalidConfig("config.json", let reason)? = error as? ModelError else {
                return XCTFail("expected invalidConfig, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(reason.contains(needle), reason, file: file, line: line)
        }
    }

    func testBertConfigWithAWholeNumberBeyondIntIsAnError() throws {
        // Found by the fuzzer (bert-config, 22k runs): Int(3.05e44) trapped.
        assertInvalidConfig(bertConfig(", \"vocab_size\": 305223333333333333333333333333333333333333333"),
                            "\"vocab_size\" must be an integer")
    }

    func testBertConfigDescribingAnImpossiblyLargeModelIsAnError() throws {
        // Was accepted, then the layout arithmetic overflowed or the allocation failed.
        assertInvalidConfig(bertConfig(", \"num_hidden_layers\": 4000000000000000000"), "parameters per encoder")
        assertInvalidConfig(bertConfig(", \"vocab_size\": 1000000000000"), "parameters per encoder")
        assertInvalidConfig(bertConfig(", \"hidden_dropout_prob\": 1.5"), "hidden_dropout_prob must be in [0, 1)")
        assertInvalidConfig(bertConfig(", \"layer_norm_eps\": 0"), "layer_norm_eps must be a positive number")
        assertInvalidConfig(bertConfig(", \"pad_token_id\": 100"), "pad_token_id 100 is not a token")
    }

    func testParameterCountMatchesTheLayout() throws {
        for name in ["tiny-bert.json", "demo.json", "minimal.json"] {
            let config = try BertConfig.decode(seed("bert-config", name), file: name)
            var layout = ParameterLayout()
            let bert = BertLayout(config: config, into: &layout)
            XCTAssertEqual(config.parameterCount, bert.range.count, name)
        }
    }
}
