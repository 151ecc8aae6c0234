import XCTest
import Data
import TestSupport

final class PickleReaderTests: XCTestCase {
    /// Every opcode that imports or calls code is refused under the default policy, with its
    /// name and byte offset (after a PROTO 4 header and one EMPTY_TUPLE: offset 3 or later).
    func testEveryCodeOpcodeIsRefusedByDefault() {
        let cases: [(String, [UInt8], Int)] = [
            ("GLOBAL", [0x80, 0x04, 0x29] + [0x63] + Array("os\nsystem\n".utf8) + [0x2E], 3),
            ("STACK_GLOBAL", [0x80, 0x04, 0x8C, 0x02] + Array("os".utf8) + [0x8C, 0x06] + Array("system".utf8) + [0x93, 0x2E], 14),
            ("REDUCE", [0x80, 0x04, 0x29, 0x29, 0x52, 0x2E], 4),
            ("BUILD", [0x80, 0x04, 0x7D, 0x7D, 0x62, 0x2E], 4),
            ("INST", [0x80, 0x04, 0x28, 0x69] + Array("os\nsystem\n".utf8) + [0x2E], 3),
            ("OBJ", [0x80, 0x04, 0x28, 0x29, 0x6F, 0x2E], 4),
            ("NEWOBJ", [0x80, 0x04, 0x29, 0x29, 0x81, 0x2E], 4),
            ("NEWOBJ_EX", [0x80, 0x04, 0x29, 0x29, 0x7D, 0x92, 0x2E], 5),
            ("EXT1", [0x80, 0x04, 0x82, 0x01, 0x2E], 2),
            ("EXT2", [0x80, 0x04, 0x83, 0x01, 0x00, 0x2E], 2),
            ("EXT4", [0x80, 0x04, 0x84, 0x01, 0x00, 0x00, 0x00, 0x2E], 2),
            ("PERSID", [0x80, 0x04, 0x50] + Array("0\n".utf8) + [0x2E], 2),
            ("BINPERSID", [0x80, 0x04, 0x29, 0x51, 0x2E], 3),
        ]
        for (name, bytes, offset) in cases {
            XCTAssertThrowsError(try PickleReader.read(bytes), name) { error in
                XCTAssertEqual(error as? PickleError, .refusedOpcode(name, offset: offset), name)
                XCTAssertTrue("\(error)".contains("refused pickle opcode \(name) at byte offset \(offset)"), "\(error)")
            }
        }
    }

    func testPlainValuesAndMemo() throws {
        // pickle.dumps({'a': [1, -1, 300, 70000, 2**64, -2**70, 1.5, None, True, False, (1, 'x'), b'hi'], 'b': 'a'}, 4)
        // with the list memoized and fetched twice (BINGET) after being appended to.
        var bytes: [UInt8] = [0x80, 0x04, 0x7D, 0x94, 0x28, 0x8C, 0x01, 0x61, 0x94, 0x5D, 0x94, 0x28]
        bytes += [0x4B, 0x01, 0x4A, 0xFF, 0xFF, 0xFF, 0xFF, 0x4D, 0x2C, 0x01, 0x4A, 0x70, 0x11, 0x01, 0x00]
        bytes += [0x8A, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]            // 2**64
        bytes += [0x8A, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0]            // -2**70
        bytes += [0x47, 0x3F, 0xF8, 0, 0, 0, 0, 0, 0, 0x4E, 0x88, 0x89]
        bytes += [0x4B, 0x01, 0x8C, 0x01, 0x78, 0x94, 0x86, 0x94, 0x43, 0x02, 0x68, 0x69, 0x94]
        bytes += [0x65, 0x8C, 0x01, 0x62, 0x94, 0x68, 0x02, 0x75, 0x2E]  // APPENDS, 'b': memo[2] (the list), SETITEMS
        let value = try PickleReader.read(bytes)
        let list: [PickleValue] = [.int(1), .int(-1), .int(300), .int(70000),
                                   .bigInt(PickleBigInt(decimal: "18446744073709551616")!),
                                   .bigInt(PickleBigInt(decimal: "-1180591620717411303424")!),
                                   .float(1.5), .none, .bool(true), .bool(false),
                                   .tuple([.int(1), .string("x")]), .bytes(Array("hi".utf8))]
        XCTAssertEqual(value, .dict([PickleDictEntry(key: .string("a"), value: .list(list)),
                                     PickleDictEntry(key: .string("b"), value: .list(list))]))
        let python = try DataTestHelpers.runPython("""
            import pickle, sys
            v = pickle.loads(bytes.fromhex(sys.argv[1]))
            assert v == {'a': [1, -1, 300, 70000, 2**64, -2**70, 1.5, None, True, False, (1, 'x'), b'hi'], 'b': v['a']}, v
            print('ok')
            """, [bytes.map { String(format: "%02x", $0) }.joined()])
        XCTAssertEqual(python, "ok\n", "the hand-made pickle is not what the test says")
    }

    func testBigIntDecimalRoundTrip() {
        for text in ["0", "1", "-1", "127", "128", "255", "256", "-128", "-129", "9223372036854775807",
                     "-9223372036854775808", "9223372036854775808", "-1267650600228229401496703205376",
                     "340282366920938463463374607431768211455"] {
            let big = PickleBigInt(decimal: text)
            XCTAssertEqual(big?.description, text)
            if let small = Int(text) { XCTAssertEqual(big?.intValue, small, text) } else { XCTAssertNil(big?.intValue, text) }
        }
        // Python: (255).to_bytes shortest signed = ff 00; (-129) = 7f ff.
        XCTAssertEqual(PickleBigInt(decimal: "255")?.littleEndianBytes, [0xFF, 0x00])
        XCTAssertEqual(PickleBigInt(decimal: "-129")?.littleEndianBytes, [0x7F, 0xFF])
        XCTAssertEqual(PickleBigInt(decimal: "-128")?.littleEndianBytes, [0x80])
        XCTAssertNil(PickleBigInt(decimal: "12a"))
    }

    func testMalformedPicklesFailCleanly() {
        let cases: [([UInt8], String)] = [
            ([], "truncated pickle"),
            ([0x80], "truncated pickle: PROTO"),
            ([0x80, 0x04, 0x95, 0xFF, 0, 0, 0, 0, 0, 0, 0], "truncated pickle: FRAME"),
            ([0x80, 0x04, 0x8C, 0x05, 0x61, 0x2E], "truncated pickle: SHORT_BINUNICODE at byte offset 2"),
            ([0x80, 0x04, 0x2E], "STOP needs a value"),
            ([0x80, 0x04, 0x68, 0x03, 0x2E], "memo index 3 was never stored"),
            ([0x80, 0x04, 0x4B, 0x01, 0x65, 0x2E], "APPENDS without a MARK"),
            ([0x80, 0x04, 0x4B, 0x00, 0x4B, 0x01, 0x4B, 0x02, 0x73, 0x2E], "SETITEM on something that is not a dict"),
            ([0x80, 0x06, 0x4E, 0x2E], "unsupported pickle protocol 6"),
            ([0x80, 0x04, 0xFF], "unknown pickle opcode 0xff at byte offset 2"),
            ([0x80, 0x04, 0x5D, 0x94, 0x68, 0x00, 0x61, 0x2E], "contains itself"),
            // "billion laughs": each list holds the previous one twice (2^60 leaves if expanded).
            ([0x80, 0x04, 0x4E, 0x94] + Array((0..<60).map { i -> [UInt8] in [0x28, 0x68, UInt8(i), 0x68, UInt8(i), 0x6C, 0x94] }.joined()) + [0x2E], "too many objects"),
        ]
        for (bytes, expected) in cases {
            XCTAssertThrowsError(try PickleReader.read(bytes)) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(bytes): \(error)")
            }
        }
    }

    func testWriterRoundTripAndPythonAgreement() throws {
        let value: PickleValue = .dict([
            PickleDictEntry(key: .string("k"), value: .list([.int(0), .int(-7), .int(Int.max), .int(Int.min), .float(-0.25),
                                                             .string("é\u{1F600}"), .none, .bool(true), .tuple([.int(1), .int(2)])])),
            PickleDictEntry(key: .string("big"), value: .bigInt(PickleBigInt(decimal: "-99999999999999999999999")!)),
        ])
        for proto in 2...5 {
            let bytes = try PickleWriter.dumps(value, protocol: proto)
            XCTAssertEqual(try PickleReader.read(bytes), value, "protocol \(proto)")
            let python = try DataTestHelpers.runPython("""
                import pickle, sys
                v = {'k': [0, -7, 2**63 - 1, -2**63, -0.25, '\\u00e9\\U0001F600', None, True, (1, 2)], 'big': -99999999999999999999999}
                print(pickle.dumps(v, protocol=int(sys.argv[1])).hex())
                """, [String(proto)])
            XCTAssertEqual(bytes.map { String(format: "%02x", $0) }.joined(), python.trimmingCharacters(in: .whitespacesAndNewlines),
                           "protocol \(proto) bytes differ from CPython")
        }
        XCTAssertThrowsError(try PickleWriter.dumps(.global(module: "os", name: "system")))
    }

    /// The writer reproduces the protocol 2, 3 and 5 fixture files byte for byte.
    func testWriterMatchesTheProtocolFixtures() throws {
        let samples = try JSONLinesFile.readSamples(path: Fixtures.url("pipelines/all.jsonl").path)
        for proto in [2, 3, 5] {
            var writer = PickleWriter(protocol: proto)
            for sample in samples { writer.dump(sample: sample) }
            let expected = try Data(contentsOf: Fixtures.url("pickle_protocols/protocol\(proto).bytedataset/data.pkl"))
            XCTAssertEqual(Data(writer.output), expected, "protocol \(proto)")
        }
    }

    /// The torch-checkpoint policy reads tiny-bert's `pytorch_model.bin` state dict symbolically.
    func testTorchCheckpointPolicyReadsTheTinyBertStateDict() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let pkl = dir.appendingPathComponent("data.pkl")
        _ = try DataTestHelpers.runPython("""
            import zipfile, sys
            z = zipfile.ZipFile(sys.argv[1])
            open(sys.argv[2], 'wb').write(z.read([n for n in z.namelist() if n.endswith('/data.pkl')][0]))
            """, [Fixtures.url("tiny-bert/pytorch_model.bin").path, pkl.path])
        let bytes = Array(try Data(contentsOf: pkl))

        XCTAssertThrowsError(try PickleReader.read(bytes)) { error in
            XCTAssertEqual(error as? PickleError, .refusedOpcode("GLOBAL", offset: 2))
        }
        let value = try PickleReader.read(bytes, policy: .torchCheckpoint)
        guard case .object(let stateDict) = value else { return XCTFail("not an object: \(value)") }
        XCTAssertEqual(stateDict.callable, .global(module: "collections", name: "OrderedDict"))
        XCTAssertEqual(stateDict.arguments, .tuple([]))
        XCTAssertGreaterThan(stateDict.items.count, 30)
        XCTAssertEqual(stateDict.items[0].key, .string("embeddings.word_embeddings.weight"))
        guard case .object(let tensor) = stateDict.items[0].value, case .tuple(let args) = tensor.arguments else {
            return XCTFail("not a tensor rebuild")
        }
        XCTAssertEqual(tensor.callable, .global(module: "torch._utils", name: "_rebuild_tensor_v2"))
        XCTAssertEqual(args[0], .persistentID(.tuple([.string("storage"), .global(module: "torch", name: "FloatStorage"),
                                                      .string("0"), .string("cpu"), .int(30522 * 64)])))
        XCTAssertEqual(Array(args[1...3]), [.int(0), .tuple([.int(30522), .int(64)]), .tuple([.int(64), .int(1)])])
        XCTAssertNotNil(stateDict.state)  // BUILD sets the _metadata attribute

        // A global outside the allow-list is refused even under the torch policy.
        let evil: [UInt8] = [0x80, 0x02, 0x63] + Array("os\nsystem\n".utf8) + [0x2E]
        XCTAssertThrowsError(try PickleReader.read(evil, policy: .torchCheckpoint)) { error in
            XCTAssertEqual(error as? PickleError, .refusedGlobal(module: "os", name: "system", offset: 2))
        }
        let newobj: [UInt8] = [0x80, 0x02, 0x63] + Array("collections\nOrderedDict\n".utf8) + [0x29, 0x81, 0x2E]
        XCTAssertThrowsError(try PickleReader.read(newobj, policy: .torchCheckpoint)) { error in
            XCTAssertEqual(error as? PickleError, .refusedOpcode("NEWOBJ", offset: 28))
        }
    }
}
