/// The checks every ring message passes before its payload is used, apart from the transport:
/// the frames are one header frame and at most one payload frame, the header decodes and
/// matches what this rank expects, and the payload frame has exactly the announced size.
/// ``ZMQRingLink`` runs it on every received message; it is public so that the fuzz
/// harness (Tests/Fuzz) can feed it arbitrary frames.
public enum WireMessage {
    /// Checks `frames` (header frame first, the sender's identity frame already removed)
    /// against `expected`; returns the header and whether a payload frame follows it.
    public static func validate(_ frames: [UnsafeRawBufferPointer], expected: WireHeader, checkLength: Bool,
                                peer: Int, during: () -> String) throws -> (header: WireHeader, hasPayload: Bool) {
        guard let first = frames.first else {
            throw CollectivesError.malformedMessage(peer: peer, reason: "a message without a header frame")
        }
        let header = try WireHeader.decode(first, peer: peer)
        try header.verify(expected: expected, checkLength: checkLength, peer: peer, during: during())
        // A payload in a shared-memory lane slot has no frame; the transport checks the slot.
        let carriesPayload = header.length > 0 && header.flags & (WireHeader.flagOverLimit | WireHeader.flagSharedMemory) == 0
        let payloadFrames = frames.count - 1
        if carriesPayload {
            guard payloadFrames == 1, frames[1].count == header.length else {
                let got = payloadFrames == 0 ? "none" : "\(frames[1...].map { $0.count }) bytes"
                throw CollectivesError.malformedMessage(
                    peer: peer, reason: "header announces \(header.length) payload bytes, got \(got) (truncated?) during \(during())")
            }
            return (header, true)
        }
        guard payloadFrames == 0 else {
            throw CollectivesError.malformedMessage(
                peer: peer, reason: "header announces no payload but \(payloadFrames) frame(s) follow during \(during())")
        }
        return (header, false)
    }
}
