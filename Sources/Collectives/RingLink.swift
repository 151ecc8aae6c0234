/// What the ring algorithms need from a transport: send to the right neighbour, receive from
/// the left one (header checked), and wait until our zero-copy sends no longer read our buffer.
/// ``ZMQRingLink`` implements it over ZeroMQ; the algorithms in RingAllReduce.swift and
/// RingAllGather.swift know nothing of sockets.
protocol RingLink: AnyObject {
    var rank: Int { get }
    var worldSize: Int { get }
    /// Sends `header` followed by `payload` (no payload frame when nil). With `zeroCopy` the
    /// payload memory is read later by the transport and must not change before `drainSends`.
    func sendRight(_ header: WireHeader, payload: UnsafeRawBufferPointer?, zeroCopy: Bool) throws
    /// Receives the next message from the left neighbour and checks it against `expected`
    /// (its length too when `checkLength`); `during` names the operation in errors.
    func receiveLeft(_ expected: WireHeader, checkLength: Bool, during: @autoclosure () -> String) throws -> ReceivedMessage
    /// Blocks until every zero-copy send has been written out.
    func drainSends() throws
}

/// A checked message; `payload` stays valid as long as the message is alive.
struct ReceivedMessage {
    var header: WireHeader
    var frame: ZMQFrame?
    /// The payload's slot when it came through a shared-memory lane (freed with the message).
    var lease: SharedSlotLease?

    init(header: WireHeader, frame: ZMQFrame?, lease: SharedSlotLease? = nil) {
        self.header = header; self.frame = frame; self.lease = lease
    }

    var payload: UnsafeRawBufferPointer { frame?.bytes ?? lease?.bytes ?? UnsafeRawBufferPointer(start: nil, count: 0) }
}

extension RingLink {
    var leftRank: Int { (rank + worldSize - 1) % worldSize }
    var rightRank: Int { (rank + 1) % worldSize }
}
