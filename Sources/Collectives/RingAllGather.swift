/// Ring all-gather of byte payloads and ring broadcast: every message travels n-1 hops to the
/// right, each rank forwarding what it received from its left neighbour.
enum RingAllGather {
    /// Every rank's payload, in rank order. A payload over `limit` is replaced on the wire by a
    /// header-only notice carrying its size; all ranks finish the ring (nobody waits for a
    /// message that never comes) and then throw the same `global_loss_buf_sz` error.
    static func run(_ payload: [UInt8], limit: Int, link: RingLink, template: WireHeader) throws -> [[UInt8]] {
        let n = link.worldSize, r = link.rank
        var result = [[UInt8]](repeating: [], count: n)
        var overLimit: [(rank: Int, size: Int)] = []
        if payload.count > limit { overLimit.append((r, payload.count)) } else { result[r] = payload }
        guard n > 1 else {
            if let worst = overLimit.first { throw CollectivesError.allGatherPayloadTooLarge(rank: worst.rank, size: worst.size, limit: limit) }
            return result
        }
        func send(origin: Int, ringStep: Int, bytes: [UInt8]?, size: Int) throws {
            var header = template
            header.segment = origin; header.ringStep = ringStep; header.length = size
            header.flags = bytes == nil ? WireHeader.flagOverLimit : 0
            if let bytes {
                try bytes.withUnsafeBytes { try link.sendRight(header, payload: $0, zeroCopy: false) }
            } else {
                try link.sendRight(header, payload: nil, zeroCopy: false)
            }
        }
        try send(origin: r, ringStep: 0, bytes: payload.count > limit ? nil : payload, size: payload.count)
        for t in 0..<(n - 1) {
            let origin = ((r - t - 1) % n + n) % n
            var expected = template
            expected.sender = link.leftRank; expected.segment = origin; expected.ringStep = t
            let message = try link.receiveLeft(expected, checkLength: false,
                                               during: "\(template.kind) ring step \(t), payload of rank \(origin)")
            let size = message.header.length
            let tooLarge = message.header.flags & WireHeader.flagOverLimit != 0 || size > limit
            if tooLarge {
                overLimit.append((origin, size))
            } else {
                result[origin] = withExtendedLifetime(message) { Array(message.payload) }
            }
            if t < n - 2 {
                try send(origin: origin, ringStep: t + 1, bytes: tooLarge ? nil : result[origin], size: size)
            }
        }
        if let worst = overLimit.max(by: { $0.size < $1.size }) {
            throw CollectivesError.allGatherPayloadTooLarge(rank: worst.rank, size: worst.size, limit: limit)
        }
        return result
    }

    /// Rank `root`'s payload on every rank: root sends right, every other rank forwards until the
    /// rank left of the root.
    static func broadcast(_ payload: [UInt8], root: Int, link: RingLink, template: WireHeader) throws -> [UInt8] {
        let n = link.worldSize, r = link.rank
        guard n > 1 else { return payload }
        var header = template
        header.segment = root
        if r == root {
            header.length = payload.count
            try payload.withUnsafeBytes { try link.sendRight(header, payload: $0, zeroCopy: false) }
            return payload
        }
        let hops = ((r - root) % n + n) % n  // this rank is `hops` to the right of the root
        var expected = template
        expected.sender = link.leftRank; expected.segment = root; expected.ringStep = hops - 1
        let message = try link.receiveLeft(expected, checkLength: false, during: "broadcast from rank \(root)")
        let received = withExtendedLifetime(message) { Array(message.payload) }
        if link.rightRank != root {
            header.ringStep = hops; header.length = received.count
            try received.withUnsafeBytes { try link.sendRight(header, payload: $0, zeroCopy: false) }
        }
        return received
    }
}
