/// The fixed 64-byte header in front of every ring message (little-endian).
///
/// The receiver checks every field it can predict (job, step, operation and its sequence number,
/// segment, chunk, length, sender), so two ranks that disagree on what they are doing fail with a
/// message naming the field instead of silently adding the wrong buffers together.
public struct WireHeader: Equatable, Sendable {
    /// What a message is part of.
    public enum Kind: UInt8, Sendable, CustomStringConvertible {
        case hello = 1, challenge = 2, response = 3, accept = 4, reject = 5
        /// Setup of a shared-memory lane between neighbours on one host (``SharedMemoryLane``).
        case lane = 6
        case allReduce = 10, allGather = 11, broadcast = 12, barrier = 13
        /// Coordinator <-> worker messages (``ControlServer``, ``ControlClient``).
        case control = 20, heartbeat = 21

        public var description: String {
            switch self {
            case .hello: return "hello"
            case .challenge: return "challenge"
            case .response: return "response"
            case .accept: return "accept"
            case .reject: return "reject"
            case .lane: return "shared-memory lane setup"
            case .allReduce: return "all-reduce"
            case .allGather: return "all-gather"
            case .broadcast: return "broadcast"
            case .barrier: return "barrier"
            case .control: return "control"
            case .heartbeat: return "heartbeat"
            }
        }
    }

    public static let size = 64
    public static let magic: UInt32 = 0x5044_5253  // "SRDP" read little-endian
    public static let version: UInt8 = 1
    /// Flag of an all-gather message that carries no payload because the origin's payload was
    /// over `global_loss_buf_sz` (`length` is then the size it needed).
    public static let flagOverLimit: UInt8 = 1
    /// Flag of a message whose payload is in slot `slot` of the sender's shared-memory lane
    /// instead of a payload frame.
    public static let flagSharedMemory: UInt8 = 2
    /// Flag of an all-reduce whose payloads are bfloat16 (`allreduce_dtype=bf16`), not fp32.
    public static let flagBFloat16: UInt8 = 4

    public var kind: Kind
    public var flags: UInt8 = 0
    /// Lane slot of the payload (with ``flagSharedMemory``).
    public var slot: Int = 0
    public var sender: Int
    /// Ring segment (all-reduce) or origin rank (all-gather, broadcast).
    public var segment: Int = 0
    /// FNV-1a hash of the job id (``jobHash(_:)``).
    public var job: UInt64
    public var step: Int
    /// Number of collectives this communicator ran before this one.
    public var sequence: Int
    public var chunk: Int = 0
    /// Position in the ring schedule (reduce-scatter steps, then all-gather steps).
    public var ringStep: Int = 0
    /// Payload bytes following the header.
    public var length: Int
    /// Size of the whole operation (elements of the all-reduce buffer, bytes of a broadcast).
    public var total: Int = 0

    public init(kind: Kind, flags: UInt8 = 0, sender: Int, segment: Int = 0, job: UInt64, step: Int,
                sequence: Int, chunk: Int = 0, ringStep: Int = 0, length: Int, total: Int = 0) {
        self.kind = kind; self.flags = flags; self.sender = sender; self.segment = segment
        self.job = job; self.step = step; self.sequence = sequence; self.chunk = chunk; self.ringStep = ringStep
        self.length = length; self.total = total
    }

    /// The job id as it travels in headers.
    public static func jobHash(_ jobID: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in jobID.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return hash
    }

    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: WireHeader.size)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            withUnsafeBytes(of: value.littleEndian) { raw in
                for i in 0..<raw.count { bytes[offset + i] = raw[i] }
            }
        }
        put(WireHeader.magic, at: 0)
        bytes[4] = WireHeader.version
        bytes[5] = kind.rawValue
        bytes[6] = flags
        bytes[7] = UInt8(truncatingIfNeeded: slot)
        put(UInt16(truncatingIfNeeded: sender), at: 8)
        put(UInt32(truncatingIfNeeded: segment), at: 12)
        put(job, at: 16)
        put(UInt64(truncatingIfNeeded: step), at: 24)
        put(UInt64(truncatingIfNeeded: sequence), at: 32)
        put(UInt32(truncatingIfNeeded: chunk), at: 40)
        put(UInt32(truncatingIfNeeded: ringStep), at: 44)
        put(UInt64(truncatingIfNeeded: length), at: 48)
        put(UInt64(truncatingIfNeeded: total), at: 56)
        return bytes
    }

    /// Parses a header frame; `peer` only names the sender in errors.
    public static func decode(_ bytes: UnsafeRawBufferPointer, peer: Int) throws -> WireHeader {
        guard bytes.count == size else {
            throw CollectivesError.malformedMessage(
                peer: peer, reason: "header frame is \(bytes.count) bytes, expected \(size) (truncated or not one of ours)")
        }
        func get<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
            var value: T = 0
            withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + MemoryLayout<T>.size])) }
            return T(littleEndian: value)
        }
        let magic = get(UInt32.self, at: 0)
        guard magic == WireHeader.magic else {
            throw CollectivesError.malformedMessage(peer: peer, reason: "bad magic 0x\(String(magic, radix: 16)) (not an srdpr message)")
        }
        guard bytes[4] == WireHeader.version else {
            throw CollectivesError.malformedMessage(peer: peer, reason: "protocol version \(bytes[4]), expected \(WireHeader.version)")
        }
        guard let kind = Kind(rawValue: bytes[5]) else {
            throw CollectivesError.malformedMessage(peer: peer, reason: "unknown message kind \(bytes[5])")
        }
        let length = get(UInt64.self, at: 48), total = get(UInt64.self, at: 56)
        let step = get(UInt64.self, at: 24), sequence = get(UInt64.self, at: 32)
        guard length <= UInt64(Int.max), total <= UInt64(Int.max), step <= UInt64(Int.max), sequence <= UInt64(Int.max) else {
            throw CollectivesError.malformedMessage(peer: peer, reason: "length, total, step or sequence out of range")
        }
        var header = WireHeader(kind: kind, flags: bytes[6], sender: Int(get(UInt16.self, at: 8)),
                                segment: Int(get(UInt32.self, at: 12)), job: get(UInt64.self, at: 16),
                                step: Int(step), sequence: Int(sequence), chunk: Int(get(UInt32.self, at: 40)),
                                ringStep: Int(get(UInt32.self, at: 44)), length: Int(length), total: Int(total))
        header.slot = Int(bytes[7])
        return header
    }

    /// Throws ``CollectivesError/headerMismatch`` naming the first field of `self` (received)
    /// that differs from `expected`; `length` is compared only when `checkLength` is set.
    public func verify(expected: WireHeader, checkLength: Bool = true, peer: Int, during: String) throws {
        func mismatch(_ field: String, _ want: String, _ got: String) -> CollectivesError {
            .headerMismatch(peer: peer, field: field, expected: want, got: got, during: during)
        }
        if job != expected.job { throw mismatch("job id hash", "\(expected.job)", "\(job) (a peer of another job)") }
        if kind != expected.kind { throw mismatch("operation", "\(expected.kind)", "\(kind)") }
        if sender != expected.sender { throw mismatch("sender rank", "\(expected.sender)", "\(sender)") }
        if step != expected.step { throw mismatch("step", "\(expected.step)", "\(step)") }
        if sequence != expected.sequence { throw mismatch("collective sequence number", "\(expected.sequence)", "\(sequence)") }
        if segment != expected.segment { throw mismatch("segment", "\(expected.segment)", "\(segment)") }
        if ringStep != expected.ringStep { throw mismatch("ring step", "\(expected.ringStep)", "\(ringStep)") }
        if chunk != expected.chunk { throw mismatch("chunk", "\(expected.chunk)", "\(chunk)") }
        if total != expected.total { throw mismatch("total size", "\(expected.total)", "\(total)") }
        if flags & Self.flagBFloat16 != expected.flags & Self.flagBFloat16 {
            func name(_ flags: UInt8) -> String { flags & Self.flagBFloat16 != 0 ? "bf16" : "fp32" }
            throw mismatch("all-reduce element type (allreduce_dtype)", name(expected.flags), name(flags))
        }
        if checkLength && length != expected.length { throw mismatch("payload length", "\(expected.length)", "\(length)") }
    }
}
