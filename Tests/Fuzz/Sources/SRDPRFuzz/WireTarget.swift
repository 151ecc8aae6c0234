import Collectives

/// A ring message as the receiving rank sees it: a header frame and any payload frames.
///
/// Input layout: one control byte, then the header frame (64 bytes, or `control & 0x3f` when
/// bit 6 is set, to reach the size check), then the rest as payload (bit 0: one frame, bit 1:
/// split into two). The expected header is the received one with the field chosen by bits 2-4
/// changed, so that the checks after decoding are reached too; bit 7 sets `checkLength`.
enum WireTarget {
    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let control = bytes.first else { return }
        let rest = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[1...])
        let headerCount = min(rest.count, control & 0x40 != 0 ? Int(control & 0x3f) : WireHeader.size)
        var frames = [UnsafeRawBufferPointer(rebasing: rest[..<headerCount])]
        let payload = UnsafeRawBufferPointer(rebasing: rest[headerCount...])
        if control & 0x1 != 0 { frames.append(payload) }
        if control & 0x2 != 0 {
            let half = payload.count / 2
            frames.append(UnsafeRawBufferPointer(rebasing: payload[..<half]))
            frames.append(UnsafeRawBufferPointer(rebasing: payload[half...]))
        }

        var expected = WireHeader(kind: .allGather, sender: 1, job: WireHeader.jobHash("fuzz"), step: 3, sequence: 7, length: 0)
        if let received = try? WireHeader.decode(frames[0], peer: 1) {
            // What decodes must encode back to the same header.
            let again = received.encoded()
            guard let back = try? again.withUnsafeBytes({ try WireHeader.decode($0, peer: 1) }), back == received else {
                violated("header \(received) does not survive encode/decode")
            }
            expected = received
            switch (control >> 2) & 0x7 {
            case 1: expected.step &+= 1
            case 2: expected.sequence &+= 1
            case 3: expected.length &+= 1
            case 4: expected.kind = received.kind == .barrier ? .allReduce : .barrier
            case 5: expected.job &+= 1
            default: break
            }
        }
        _ = try? WireMessage.validate(frames, expected: expected, checkLength: control & 0x80 != 0, peer: 1,
                                      during: { "fuzz" })
    }
}
