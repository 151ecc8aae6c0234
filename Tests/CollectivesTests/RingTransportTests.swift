import Collectives
import Foundation
import XCTest

/// Same-host ring links over abstract Unix sockets (`RingTransport`).
final class RingTransportTests: XCTestCase {
    private func offer(_ rank: Int, host: String?, local: Bool = true) -> RingTransport.Offer {
        RingTransport.Offer(tcpAddress: "tcp://10.0.0.\(rank):7000", localAddress: local ? "ipc://@ring-\(rank)" : nil,
                            hostIdentity: host)
    }

    /// A link is a Unix socket exactly when the rank offered one and its left neighbour is on its host.
    func testLinksBetweenRanksOnOneHostUseTheLocalAddress() {
        XCTAssertEqual(RingTransport.ringAddresses([offer(0, host: "A"), offer(1, host: "A")]), ["ipc://@ring-0", "ipc://@ring-1"])
        // Ranks 0 and 1 on host A, rank 2 on B: only the link 0 -> 1 stays on the host.
        XCTAssertEqual(RingTransport.ringAddresses([offer(0, host: "A"), offer(1, host: "A"), offer(2, host: "B")]),
                       ["tcp://10.0.0.0:7000", "ipc://@ring-1", "tcp://10.0.0.2:7000"])
        // No offer (`--ring-transport tcp`) or no identity: TCP.
        XCTAssertEqual(RingTransport.ringAddresses([offer(0, host: "A"), offer(1, host: "A", local: false)]),
                       ["ipc://@ring-0", "tcp://10.0.0.1:7000"])
        XCTAssertEqual(RingTransport.ringAddresses([offer(0, host: nil), offer(1, host: nil)]),
                       ["tcp://10.0.0.0:7000", "tcp://10.0.0.1:7000"])
        XCTAssertEqual(RingTransport.ringAddresses([offer(0, host: "A")]), ["tcp://10.0.0.0:7000"])
    }

    func testHostIdentityNamesTheBootAndTheNetworkNamespace() throws {
        #if os(Linux)
        let identity = try XCTUnwrap(RingTransport.hostIdentity())
        XCTAssertEqual(identity, RingTransport.hostIdentity())
        XCTAssertTrue(identity.contains("/netns:"), identity)
        let address = try XCTUnwrap(RingTransport.localAddress())
        XCTAssertTrue(address.hasPrefix("ipc://@srdpr-ring-"), address)
        XCTAssertNotEqual(address, RingTransport.localAddress())
        #else
        XCTAssertNil(RingTransport.hostIdentity())
        #endif
    }

    /// A ring mixing TCP and abstract-socket links gives the same sums (and the handshake still
    /// refuses a rank with another secret over a Unix socket).
    func testAllReduceOverMixedLinks() throws {
        #if os(Linux)
        var options = RingHarness.fastOptions()
        options.chunkBytes = 4096
        let tcp = RingHarness.addresses(3)
        let addresses = [tcp[0], RingTransport.localAddress()!, RingTransport.localAddress()!]
        let count = 50_000
        let results = RingHarness.run(world: 3, options: options, addresses: addresses) { comm -> [Float] in
            var data = RingHarness.values(rank: comm.rank, count: count)
            try data.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .sum) }
            return data
        }
        let expected = RingHarness.reference(world: 3, count: count, op: .sum)
        for output in try RingHarness.unwrap(results) {
            for i in stride(from: 0, to: count, by: 97) { XCTAssertEqual(output[i], expected[i], accuracy: 1e-5) }
        }
        options.setupTimeout = 2
        let refused = RingHarness.run(world: 2, secrets: ["one", "two"], options: options,
                                      addresses: [RingTransport.localAddress()!, RingTransport.localAddress()!]) { _ in true }
        for result in refused {
            XCTAssertThrowsError(try result.get())
        }
        #endif
    }
}
