import XCTest
import Coordinator
import Data
import TestSupport

final class TensorBoardTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try Fixtures.temporaryDirectory("srdpr-tb") }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testCRC32CKnownValues() {
        // RFC 3720 / iSCSI check values.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        // Fed in odd-sized pieces, the result is the same as in one go.
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var crc = CRC32C()
        crc.update(bytes[0..<3]); crc.update(bytes[3..<500]); crc.update(bytes[500...])
        XCTAssertEqual(crc.finalValue, CRC32C.checksum(bytes))
    }

    /// Writes scalars and reads them back with our reader: version record first, every value, step and tag.
    func writeSample() throws -> TensorBoardWriter {
        let writer = try TensorBoardWriter(logDir: dir.appendingPathComponent("logs"), wallTime: 1_700_000_000.25, hostName: "testhost")
        for step in 0..<5 {
            try writer.addScalar("learning_rate", Float(step) * 1e-5, step: step, wallTime: 1_700_000_001 + Double(step))
            if step % 2 == 0 {
                try writer.addScalar("pos/loss", 2.5 - Float(step) * 0.25, step: step, wallTime: 1_700_000_001.5 + Double(step))
            }
        }
        return writer
    }

    func testWriteThenReadBackWithOurReader() throws {
        let writer = try writeSample()
        XCTAssertEqual(writer.fileURL.lastPathComponent, "events.out.tfevents.1700000000.testhost")
        let events = try TensorBoardEventReader.read(writer.fileURL)
        XCTAssertEqual(events.count, 1 + 5 + 3)
        XCTAssertEqual(events[0], TensorBoardEvent(wallTime: 1_700_000_000.25, step: 0, fileVersion: "brain.Event:2"))
        let lr = events.flatMap { e in e.scalars.filter { $0.tag == "learning_rate" }.map { (e.step, $0.value) } }
        XCTAssertEqual(lr.map(\.0), [0, 1, 2, 3, 4])
        XCTAssertEqual(lr.map(\.1), (0..<5).map { Float($0) * 1e-5 })
        let loss = events.flatMap { e in e.scalars.filter { $0.tag == "pos/loss" }.map { (e.step, $0.value, e.wallTime) } }
        XCTAssertEqual(loss.map(\.0), [0, 2, 4])
        XCTAssertEqual(loss.map(\.1), [2.5, 2.0, 1.5])
        XCTAssertEqual(loss.map(\.2), [1_700_000_001.5, 1_700_000_003.5, 1_700_000_005.5])
        // Records are on disk before close: a second writer in the same second gets its own file.
        let second = try TensorBoardWriter(logDir: dir.appendingPathComponent("logs"), wallTime: 1_700_000_000.5, hostName: "testhost")
        XCTAssertNotEqual(second.fileURL, writer.fileURL)
        XCTAssertEqual(try TensorBoardEventReader.eventFiles(in: dir.appendingPathComponent("logs")).count, 2)
        writer.close()
        XCTAssertThrowsError(try writer.addScalar("x", 1, step: 1))
    }

    func testReaderReportsTruncationAndCorruption() throws {
        let writer = try writeSample()
        writer.close()
        let bytes = try Foundation.Data(contentsOf: writer.fileURL)
        let cut = dir.appendingPathComponent("cut")
        try bytes.prefix(bytes.count - 3).write(to: cut)
        XCTAssertThrowsError(try TensorBoardEventReader.read(cut)) { error in
            guard case .truncated(let path, _)? = error as? TensorBoardError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, cut.path)
        }
        var flipped = bytes
        flipped[bytes.count - 8] ^= 0x01
        let bad = dir.appendingPathComponent("bad")
        try flipped.write(to: bad)
        XCTAssertThrowsError(try TensorBoardEventReader.read(bad)) { error in
            guard case .checksumMismatch(_, _, "data")? = error as? TensorBoardError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try TensorBoardWriter(logDir: URL(fileURLWithPath: "/proc/no-such-dir/logs")))
    }

    /// A reader written from the format description in Python (own CRC32C, own protobuf parsing),
    /// and TensorBoard's own EventAccumulator when the `tensorboard` package is importable.
    func testPythonReadersSeeTheScalars() throws {
        let writer = try writeSample()
        let python = ProcessInfo.processInfo.environment["SRDPR_PYTHON"] ?? "python3"
        let script = #"""
        import struct, sys, json
        def crc32c(data):
            crc = 0xFFFFFFFF
            for b in data:
                crc ^= b
                for _ in range(8):
                    crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            return crc ^ 0xFFFFFFFF
        def masked(c): return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF
        def varint(b, i):
            r = s = 0
            while True:
                r |= (b[i] & 0x7F) << s; i += 1; s += 7
                if not b[i - 1] & 0x80: return r, i
        def fields(b):
            i = 0
            while i < len(b):
                k, i = varint(b, i); f, t = k >> 3, k & 7
                if t == 0: v, i = varint(b, i)
                elif t == 1: v = b[i:i + 8]; i += 8
                elif t == 5: v = b[i:i + 4]; i += 4
                elif t == 2: n, i = varint(b, i); v = b[i:i + n]; i += n
                yield f, v
        data = open(sys.argv[1], 'rb').read(); i = 0; out = []
        while i < len(data):
            (n,) = struct.unpack('<Q', data[i:i + 8])
            assert struct.unpack('<I', data[i + 8:i + 12])[0] == masked(crc32c(data[i:i + 8]))
            payload = data[i + 12:i + 12 + n]
            assert struct.unpack('<I', data[i + 12 + n:i + 16 + n])[0] == masked(crc32c(payload))
            i += 16 + n
            ev = {'step': 0}
            for f, v in fields(payload):
                if f == 1: ev['wall_time'] = struct.unpack('<d', v)[0]
                elif f == 2: ev['step'] = v
                elif f == 3: ev['file_version'] = v.decode()
                elif f == 5:
                    for _, val in fields(v):
                        d = dict(fields(val))
                        ev.setdefault('scalars', []).append([d[1].decode(), struct.unpack('<f', d[2])[0]])
            out.append(ev)
        print(json.dumps(out))
        try:
            from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        except ImportError:
            print('no-tensorboard'); sys.exit(0)
        acc = EventAccumulator(sys.argv[2]); acc.Reload()
        print(json.dumps({t: [[e.step, e.value, e.wall_time] for e in acc.Scalars(t)] for t in acc.Tags()['scalars']}))
        """#
        let result = try Command.run(URL(fileURLWithPath: "/usr/bin/env"),
                                     [python, "-c", script, writer.fileURL.path, dir.appendingPathComponent("logs").path])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2, result.stdout)
        let events = try XCTUnwrap(JSONSerialization.jsonObject(with: Foundation.Data(lines[0].utf8)) as? [[String: Any]])
        XCTAssertEqual(events.count, 9)
        XCTAssertEqual(events[0]["file_version"] as? String, "brain.Event:2")
        XCTAssertEqual(events[0]["wall_time"] as? Double, 1_700_000_000.25)
        XCTAssertEqual(events[4]["step"] as? Int, 2)
        let scalars = try XCTUnwrap(events[4]["scalars"] as? [[Any]])
        XCTAssertEqual(scalars[0][0] as? String, "learning_rate")
        XCTAssertEqual((scalars[0][1] as? Double).map { Float($0) }, Float(2) * 1e-5)
        if lines[1] == "no-tensorboard" {
            print("tensorboard is not importable with \(python); EventAccumulator check skipped")
            return
        }
        let accumulated = try XCTUnwrap(JSONSerialization.jsonObject(with: Foundation.Data(lines[1].utf8)) as? [String: [[Double]]])
        XCTAssertEqual(Set(accumulated.keys), ["learning_rate", "pos/loss"])
        XCTAssertEqual(accumulated["pos/loss"]!.map { $0[0] }, [0, 2, 4])
        XCTAssertEqual(accumulated["pos/loss"]!.map { $0[1] }, [2.5, 2.0, 1.5])
        XCTAssertEqual(accumulated["pos/loss"]!.map { $0[2] }, [1_700_000_001.5, 1_700_000_003.5, 1_700_000_005.5])
        XCTAssertEqual(accumulated["learning_rate"]!.map { Float($0[1]) }, (0..<5).map { Float($0) * 1e-5 })
    }
}
