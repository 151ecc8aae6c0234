import Collectives
import Foundation
import TestSupport
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Runs the ranks of a ring as threads of the test process over tcp://127.0.0.1.
enum RingHarness {
    /// `count` TCP ports that were free a moment ago.
    static func freePorts(_ count: Int) -> [Int] {
        var sockets: [Int32] = []
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    _ = bind(fd, $0, length)
                    _ = getsockname(fd, $0, &length)
                }
            }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
            sockets.append(fd)
        }
        sockets.forEach { close($0) }
        return ports
    }

    static func addresses(_ world: Int) -> [String] {
        freePorts(world).map { "tcp://127.0.0.1:\($0)" }
    }

    /// Runs `body(rank)` on `world` threads at once and returns each rank's result.
    static func concurrently<T>(_ world: Int, _ body: @escaping (Int) throws -> T) -> [Result<T, Error>] {
        let slots = ResultSlots<T>(world)
        let group = DispatchGroup()
        for rank in 0..<world {
            group.enter()
            let thread = Thread {
                let result = Result { try body(rank) }
                slots.lock.lock(); slots.results[rank] = result; slots.lock.unlock()
                group.leave()
            }
            thread.stackSize = 4 << 20
            thread.start()
        }
        group.wait()
        return slots.results.map { $0! }
    }

    /// Connects a ring of `world` ranks and runs `body` on each.
    static func run<T>(world: Int, jobID: String = "test-job", secrets: [String?]? = nil,
                       options: ZMQCommunicator.Options = fastOptions(), addresses given: [String]? = nil,
                       _ body: @escaping (ZMQCommunicator) throws -> T) -> [Result<T, Error>] {
        let addresses = given ?? addresses(world)
        return concurrently(world) { rank in
            let secretText: String? = secrets.map { $0[rank] } ?? "s3cret"
            let secret = secretText.map { Array($0.utf8) }
            let communicator = try ZMQCommunicator(rank: rank, worldSize: world, addresses: addresses, jobID: jobID,
                                                   secret: secret, options: options)
            return try body(communicator)
        }
    }

    static func fastOptions() -> ZMQCommunicator.Options {
        var options = ZMQCommunicator.Options()
        options.receiveTimeout = 10
        options.setupTimeout = 10
        return options
    }

    /// Deterministic test data of one rank (values in [-2, 2)).
    static func values(rank: Int, count: Int, seed: Int = 0) -> [Float] {
        var state = UInt64(truncatingIfNeeded: rank &* 7919 &+ count &* 31 &+ seed &* 104_729) | 1
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(state >> 40) / Double(1 << 24) * 4 - 2)
        }
    }

    static func reference(world: Int, count: Int, op: ReduceOp, seed: Int = 0) -> [Float] {
        var sum = [Double](repeating: 0, count: count)
        for rank in 0..<world {
            for (i, v) in values(rank: rank, count: count, seed: seed).enumerated() { sum[i] += Double(v) }
        }
        return sum.map { Float(op == .mean ? $0 / Double(world) : $0) }
    }

    /// Buffer sizes of the all-reduce reference tests: empty, one, below the world size, prime,
    /// several 4 KB chunks.
    static func referenceSizes(world: Int) -> [Int] { [0, 1, max(0, world - 1), 7, 1009, 20_011] }

    /// One rank's all-reduces of every reference size, sum then mean.
    static func allReduceReferenceSizes(_ comm: Communicator) throws -> [[Float]] {
        var outputs: [[Float]] = []
        for count in referenceSizes(world: comm.worldSize) {
            for op in [ReduceOp.sum, .mean] {
                var data = values(rank: comm.rank, count: count)
                try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: op) }
                outputs.append(data)
            }
        }
        return outputs
    }

    /// Checks one rank's ``allReduceReferenceSizes(_:)`` against the Double-precision reference.
    static func checkReferenceOutputs(_ outputs: [[Float]], world: Int, rank: Int, file: StaticString = #filePath, line: UInt = #line) {
        var index = 0
        for count in referenceSizes(world: world) {
            for op in [ReduceOp.sum, .mean] {
                let expected = reference(world: world, count: count, op: op)
                let got = outputs[index]
                index += 1
                XCTAssertEqual(got.count, count, file: file, line: line)
                let d = deviation(got, expected)
                XCTAssertLessThanOrEqual(d.maxAbs, 1e-5 * max(1, d.scale), "world \(world) rank \(rank) count \(count) \(op): \(d)",
                                         file: file, line: line)
            }
        }
    }

    static func unwrap<T>(_ results: [Result<T, Error>], file: StaticString = #filePath, line: UInt = #line) throws -> [T] {
        try results.enumerated().map { rank, result in
            do { return try result.get() } catch {
                XCTFail("rank \(rank) failed: \(error)", file: file, line: line)
                throw error
            }
        }
    }
}

/// Per-rank results, written under `lock` by the rank threads and read after they finished.
final class ResultSlots<T>: @unchecked Sendable {
    let lock = NSLock()
    var results: [Result<T, Error>?]
    init(_ count: Int) { results = Array(repeating: nil, count: count) }
}
