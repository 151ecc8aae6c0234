import CZMQ
import Collectives
import Foundation
import XCTest

/// `finishes(within:)`, which the control channel's close waits on libzmq's context termination
/// through: a call that blocks is given up after the bound, one that returns is waited for.
final class BoundedWaitTests: XCTestCase {
    /// zmq_ctx_term blocks while a socket of the context is open: the libzmq hang's shape, made on
    /// purpose. The wait gives up at its bound; closing the socket then lets the call finish.
    func testAContextTerminationThatBlocksIsGivenUpAtTheBound() throws {
        let context = try XCTUnwrap(zmq_ctx_new())
        let socket = try XCTUnwrap(zmq_socket(context, ZMQ_DEALER))
        let finished = DispatchSemaphore(value: 0)
        let address = UInt(bitPattern: context)
        let started = Date()
        let returned = finishes(within: 0.5) {
            _ = zmq_ctx_term(UnsafeMutableRawPointer(bitPattern: address)!)
            finished.signal()
        }
        let waited = Date().timeIntervalSince(started)
        XCTAssertFalse(returned, "zmq_ctx_term with an open socket returned")
        XCTAssertGreaterThanOrEqual(waited, 0.45)
        XCTAssertLessThan(waited, 5, "the wait did not stop at its bound")
        var linger: Int32 = 0
        zmq_setsockopt(socket, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size)
        zmq_close(socket)
        XCTAssertEqual(finished.wait(timeout: .now() + 10), .success, "the abandoned termination did not finish once the socket closed")
    }

    func testACallThatReturnsIsWaitedFor() {
        var value = 0
        XCTAssertTrue(finishes(within: 10) { usleep(50_000); value = 42 })
        XCTAssertEqual(value, 42)
    }

    /// The control channel's own close, both ends, with a peer that vanished: returns within its bound.
    func testClosingTheControlChannelAfterThePeerLeftReturns() throws {
        let secret = Array("bounded-wait-test-secret".utf8)
        let server = try ControlServer(bind: "tcp://127.0.0.1:0", worldSize: 1, secret: secret)
        // The server answers the handshake inside receive: serve it while the client connects.
        final class Received: @unchecked Sendable { var message: ControlServer.Message? }
        let received = Received()
        let served = DispatchSemaphore(value: 0)
        Thread {
            let deadline = Date(timeIntervalSinceNow: 20)
            while received.message == nil, deadline.timeIntervalSinceNow > 0 { received.message = try? server.receive(timeout: 0.1) }
            served.signal()
        }.start()
        let client = try ControlClient(endpoint: server.endpoint, rank: 0, secret: secret, timeout: 10)
        try client.send(Array("hello".utf8))
        XCTAssertEqual(served.wait(timeout: .now() + 30), .success)
        let message = try XCTUnwrap(received.message, "the server did not receive the client's message")
        XCTAssertEqual(message.payload, Array("hello".utf8))
        client.close(lingerMilliseconds: 0)
        try server.send(Array("stop".utf8), to: message.peer)
        let started = Date()
        server.close(lingerMilliseconds: 1000)
        XCTAssertLessThan(Date().timeIntervalSince(started), ControlServer.closeBound(lingerMilliseconds: 1000) + 1)
    }
}
