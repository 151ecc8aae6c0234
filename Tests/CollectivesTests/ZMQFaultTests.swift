import Collectives
import Foundation
import TestSupport
import XCTest

final class ZMQFaultTests: XCTestCase {
    func testRanksOnDifferentStepsFailOnTheHeader() throws {
        let results = RingHarness.run(world: 2) { comm -> Void in
            comm.step = comm.rank == 0 ? 4 : 5
            var data = [Float](repeating: 1, count: 100)
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum) }
        }
        for (rank, result) in results.enumerated() {
            XCTAssertThrowsError(try result.get()) { error in
                guard case let .headerMismatch(peer, field, _, _, _)? = error as? CollectivesError else {
                    return XCTFail("rank \(rank): \(error)")
                }
                XCTAssertEqual(peer, 1 - rank)
                XCTAssertEqual(field, "step")
            }
        }
    }

    func testRanksWithDifferentBufferSizesFailOnTheHeader() throws {
        var options = RingHarness.fastOptions()
        options.receiveTimeout = 2
        let results = RingHarness.run(world: 3, options: options) { comm -> Void in
            var data = [Float](repeating: 1, count: comm.rank == 2 ? 11 : 10)
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum) }
        }
        // Rank 2's right neighbour sees the other size first; the others time out or see it.
        XCTAssertThrowsError(try results[0].get()) { error in
            XCTAssertTrue("\(error)".contains("total size is 11, expected 10"), "\(error)")
        }
        XCTAssertThrowsError(try results[2].get())
        // A failed communicator stays closed.
    }

    func testGarbageAndTruncatedMessagesFromThePeerAreRejected() throws {
        let cases: [(name: String, frames: (ZMQCommunicator) -> [[UInt8]], expect: String)] = [
            ("garbage", { _ in [Array("hello, this is not a header".utf8)] }, "header frame is 27 bytes"),
            ("bad magic", { _ in [[UInt8](repeating: 0xAB, count: WireHeader.size)] }, "bad magic"),
            ("truncated", { comm in
                // A correct header for rank 1's first receive, but 40 of the 400 announced bytes.
                let header = WireHeader(kind: .allReduce, sender: 0, segment: 0, job: WireHeader.jobHash(comm.jobID),
                                        step: 0, sequence: 0, chunk: 0, ringStep: 0, length: 400, total: 200)
                return [header.encoded(), [UInt8](repeating: 0, count: 40)]
            }, "announces 400 payload bytes, got [40] bytes"),
            ("shared-memory payload over TCP", { comm in
                // Points into a shared-memory lane, which a TCP link never has.
                var header = WireHeader(kind: .allReduce, sender: 0, segment: 0, job: WireHeader.jobHash(comm.jobID),
                                        step: 0, sequence: 0, chunk: 0, ringStep: 0, length: 400, total: 200)
                header.flags = WireHeader.flagSharedMemory
                return [header.encoded()]
            }, "but no lane was set up"),
        ]
        for testCase in cases {
            let results = RingHarness.run(world: 2) { comm -> Void in
                if comm.rank == 0 {
                    try comm.sendRawFramesForTesting(testCase.frames(comm))
                    return
                }
                var data = [Float](repeating: 1, count: 200)
                try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum) }
            }
            XCTAssertNoThrow(try results[0].get())
            XCTAssertThrowsError(try results[1].get(), testCase.name) { error in
                guard case let .malformedMessage(peer, reason)? = error as? CollectivesError else {
                    return XCTFail("\(testCase.name): \(error)")
                }
                XCTAssertEqual(peer, 0)
                XCTAssertTrue(reason.contains(testCase.expect), "\(testCase.name): \(reason)")
            }
        }
    }

    func testSilentPeerTimesOutWithItsName() throws {
        var options = RingHarness.fastOptions()
        options.receiveTimeout = 1
        let started = Date()
        let results = RingHarness.run(world: 2, options: options) { comm -> Void in
            guard comm.rank == 1 else { return }  // rank 0 never joins the all-reduce
            var data = [Float](repeating: 1, count: 10)
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum) }
        }
        XCTAssertThrowsError(try results[1].get()) { error in
            guard case let .peerTimeout(peer, address, _, _)? = error as? CollectivesError else { return XCTFail("\(error)") }
            XCTAssertEqual(peer, 0)
            XCTAssertTrue(address.hasPrefix("tcp://127.0.0.1:"))
            XCTAssertTrue("\(error)".contains("no message from rank 0"), "\(error)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 8)

        // A neighbour that went away (its sockets closed, as after kill -9) while this rank sends
        // a large buffer zero-copy: a timeout naming it, and the buffer is released before the throw.
        let gone = RingHarness.run(world: 2, options: options) { comm -> Void in
            guard comm.rank == 1 else { return }  // rank 0's communicator is released right away
            Thread.sleep(forTimeInterval: 0.2)
            var data = [Float](repeating: 1, count: 1 << 20)
            try comm.allReduce(&data, op: .sum)
        }
        XCTAssertThrowsError(try gone[1].get()) { error in
            XCTAssertTrue("\(error)".contains("no message from rank 0"), "\(error)")
        }

        // At setup: the neighbours never start.
        var setup = RingHarness.fastOptions()
        setup.setupTimeout = 1
        XCTAssertThrowsError(try ZMQCommunicator(rank: 0, worldSize: 3, addresses: RingHarness.addresses(3),
                                                 jobID: "j", options: setup)) { error in
            guard case let .peerTimeout(peer, _, _, _)? = error as? CollectivesError else { return XCTFail("\(error)") }
            XCTAssertEqual(peer, 1, "\(error)")  // the right neighbour, whose handshake is awaited first
        }
    }

    func testRanksWithDifferentSecretsRefuseEachOther() throws {
        let results = RingHarness.run(world: 2, secrets: ["right", "wrong"]) { _ in () }
        for result in results {
            XCTAssertThrowsError(try result.get()) { error in
                guard case let .authenticationFailed(_, _, reason)? = error as? CollectivesError else { return XCTFail("\(error)") }
                XCTAssertTrue(reason.contains("does not prove the shared secret"), reason)
            }
        }
    }

    /// An intruder without the secret and a raw TCP client writing garbage are refused and
    /// logged while the job goes on.
    func testStrangersAreRefusedAndTheJobContinues() throws {
        let (intruder, refusals, rounds) = try runRingWithStrangers(curve: false)
        XCTAssertTrue(intruder.contains("authentication with rank 1"), intruder)
        XCTAssertTrue(intruder.contains("refused by the peer"), intruder)
        XCTAssertTrue(intruder.contains("does not prove the shared secret"), intruder)
        XCTAssertTrue(refusals.contains { $0.contains("claims rank 0 but does not prove the shared secret") }, "\(refusals)")
        XCTAssertTrue(refusals.contains { $0.contains("broke the ZeroMQ protocol") }, "\(refusals)")
        XCTAssertGreaterThan(rounds, 0)
    }

    /// With CURVE, an intruder without the secret cannot even finish the encrypted handshake.
    func testCurveRingRefusesAPeerWithoutTheSecret() throws {
        let (intruder, refusals, rounds) = try runRingWithStrangers(curve: true)
        XCTAssertTrue(intruder.contains("no message from rank 1"), intruder)
        XCTAssertTrue(refusals.contains { $0.contains("failed the CURVE handshake") }, "\(refusals)")
        XCTAssertGreaterThan(rounds, 0)
    }

    /// A ring of two ranks all-reducing while a raw TCP client writes garbage to rank 1's port
    /// and an intruder with the wrong secret claims to be rank 0 (before the real rank 0 comes).
    /// Returns the intruder's error, rank 1's refusals and the number of rounds the ring ran.
    private func runRingWithStrangers(curve: Bool) throws -> (String, [String], Int) {
        let addresses = RingHarness.addresses(2)
        let intruderAddress = RingHarness.addresses(1)[0]
        var options = RingHarness.fastOptions()
        options.curve = curve
        let done = NSCondition()
        var strangersDone = false
        let results = RingHarness.concurrently(3) { index -> [String] in
            if index == 2 {
                defer { done.lock(); strangersDone = true; done.broadcast(); done.unlock() }
                Thread.sleep(forTimeInterval: 0.2)
                RawClient.sendGarbage(toPort: Int(addresses[1].split(separator: ":").last!)!)
                var intruderOptions = options
                intruderOptions.setupTimeout = 1.5
                do {
                    _ = try ZMQCommunicator(rank: 0, worldSize: 2, addresses: [intruderAddress, addresses[1]],
                                            jobID: "test-job", secret: Array("guess".utf8), options: intruderOptions)
                    return ["intruder was accepted"]
                } catch {
                    return ["\(error)"]
                }
            }
            // Rank 0 comes late, so the strangers reach rank 1 first.
            if index == 0 { Thread.sleep(forTimeInterval: 0.8) }
            let comm = try ZMQCommunicator(rank: index, worldSize: 2, addresses: addresses, jobID: "test-job",
                                           secret: Array("s3cret".utf8), options: options)
            var rounds = 0
            while true {
                done.lock(); let finished = strangersDone; done.unlock()
                var data: [Float] = [Float(index), 1]
                try comm.allReduce(&data, op: .sum)
                XCTAssertEqual(data, [1, 2])
                let stop = try comm.broadcast([finished ? 1 : 0], root: 0)
                rounds += 1
                if stop == [1] { break }
                Thread.sleep(forTimeInterval: 0.02)
            }
            return comm.refusedPeers + ["\(rounds)"]
        }
        let outputs = try RingHarness.unwrap(results)
        XCTAssertEqual(outputs[0].count, 1, "rank 0 refused someone: \(outputs[0])")
        return (outputs[2][0], Array(outputs[1].dropLast()), Int(outputs[1].last!) ?? 0)
    }
}

/// A plain TCP client that writes bytes that are not ZeroMQ at all.
enum RawClient {
    static func sendGarbage(toPort port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return }
        let garbage = [UInt8](repeating: 0xFF, count: 4096)
        _ = garbage.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        usleep(100_000)
    }
}
