import CSharedMemory
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One direction of a ring link between two ranks on the same host: payloads go through a
/// shared mapping instead of a socket, while every header still travels over ZeroMQ (so the
/// checks, timeouts and lost-peer detection stay those of the ring).
///
/// A socket costs two kernel copies per byte plus the protocol; a lane costs one copy into the
/// slot, and the receiver reduces straight out of it. The sender fills a free slot and marks
/// it published (its state word 1, release store); the header names the slot; the receiver
/// checks the mark (acquire load), uses the bytes and frees the slot (0) when it is done. A send
/// never waits for a slot: when the next one is still held, the payload goes over the socket as
/// before, so a ring of lanes cannot deadlock when every rank sends a burst at once.
///
/// The sender creates the file in /dev/shm (0600, a random name) and the receiver proves it opened
/// the same file by reading back a random nonce; the sender unlinks it once the receiver answered,
/// so a crash after setup leaves nothing behind.
final class SharedMemoryLane {
    static let magic: UInt64 = 0x454E_414C_5044_5253  // "SRDPLANE" read little-endian
    static let directory = "/dev/shm"
    static let namePrefix = "srdpr-lane-"
    static let stateStride = 64  // one cache line per state word: no false sharing between slots

    let slotCount: Int
    let slotBytes: Int
    private let base: UnsafeMutableRawPointer
    private let mappedBytes: Int
    private let slotsOffset: Int
    private let slotStride: Int
    /// Payloads sent through the lane and over the socket because the lane was full (for logs/tests).
    private(set) var published = 0
    private(set) var overflowed = 0

    private init(base: UnsafeMutableRawPointer, mappedBytes: Int, slotCount: Int, slotBytes: Int) {
        self.base = base
        self.mappedBytes = mappedBytes
        self.slotCount = slotCount
        self.slotBytes = slotBytes
        let layout = Self.layout(slotCount: slotCount, slotBytes: slotBytes)
        self.slotsOffset = layout.slotsOffset
        self.slotStride = layout.slotStride
    }

    deinit { munmap(base, mappedBytes) }

    private static func layout(slotCount: Int, slotBytes: Int) -> (slotsOffset: Int, slotStride: Int, total: Int) {
        let page = 4096
        let slotsOffset = (64 + slotCount * stateStride + page - 1) / page * page
        let slotStride = (slotBytes + page - 1) / page * page
        return (slotsOffset, slotStride, slotsOffset + slotCount * slotStride)
    }

    /// What the receiver needs to map the sender's lane.
    struct Offer: Equatable {
        var path: String
        var nonce: [UInt8]
        var slotCount: Int
        var slotBytes: Int

        func encoded() -> [UInt8] {
            var bytes: [UInt8] = []
            withUnsafeBytes(of: UInt32(slotCount).littleEndian) { bytes += $0 }
            withUnsafeBytes(of: UInt64(slotBytes).littleEndian) { bytes += $0 }
            return bytes + nonce + Array(path.utf8)
        }

        static func decode(_ bytes: [UInt8]) -> Offer? {
            guard bytes.count > 12 + 16 else { return nil }
            let (count, size) = bytes.withUnsafeBytes {
                (UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
                 UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 4, as: UInt64.self)))
            }
            guard size <= UInt64(1 << 30), let path = String(validating: bytes[28...], as: UTF8.self) else { return nil }
            return Offer(path: path, nonce: Array(bytes[12..<28]), slotCount: Int(count), slotBytes: Int(size))
        }
    }

    /// Sender side: a new lane file of `slotCount` slots of `slotBytes`.
    static func create(slotCount: Int, slotBytes: Int) throws -> (SharedMemoryLane, Offer) {
        guard (1...255).contains(slotCount), slotBytes > 0, slotBytes <= 1 << 30 else {
            throw CollectivesError.invalidArgument("shared-memory lane of \(slotCount) slots of \(slotBytes) bytes")
        }
        var nonce = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for i in nonce.indices { nonce[i] = UInt8.random(in: 0...255, using: &generator) }
        let path = "\(directory)/\(namePrefix)\(getpid())-\(nonce.prefix(8).map { String(format: "%02x", $0) }.joined())"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw laneError("cannot create \(path)") }
        defer { close(fd) }
        let total = layout(slotCount: slotCount, slotBytes: slotBytes).total
        // Reserve the pages now: a write to a tmpfs page that cannot be allocated (a full or small
        // /dev/shm, as in containers) kills the process with SIGBUS instead of failing a call.
        #if os(Linux)
        let sized = posix_fallocate(fd, 0, off_t(total))
        #else
        let sized = ftruncate(fd, off_t(total)) == 0 ? 0 : errno
        #endif
        guard sized == 0 else {
            errno = sized
            let error = laneError("cannot reserve \(total) bytes for \(path)")
            unlink(path)
            throw error
        }
        guard let lane = map(fd: fd, bytes: total, slotCount: slotCount, slotBytes: slotBytes) else {
            let error = laneError("cannot map \(path)")
            unlink(path)
            throw error
        }
        // Touch every page now: a first write to a tmpfs page faults, and would otherwise do so
        // inside the first collectives that reach that slot.
        lane.base.initializeMemory(as: UInt8.self, repeating: 0, count: total)
        lane.base.storeBytes(of: magic.littleEndian, toByteOffset: 0, as: UInt64.self)
        lane.base.storeBytes(of: UInt32(slotCount).littleEndian, toByteOffset: 8, as: UInt32.self)
        lane.base.storeBytes(of: UInt64(slotBytes).littleEndian, toByteOffset: 16, as: UInt64.self)
        for (i, byte) in nonce.enumerated() { lane.base.storeBytes(of: byte, toByteOffset: 24 + i, as: UInt8.self) }
        return (lane, Offer(path: path, nonce: nonce, slotCount: slotCount, slotBytes: slotBytes))
    }

    /// Receiver side: maps the sender's lane after checking that the file is one of ours, of the
    /// announced size, and carries the announced nonce (so it is the sender's file on this host).
    static func attach(_ offer: Offer) throws -> SharedMemoryLane {
        let name = offer.path.hasPrefix(directory + "/") ? String(offer.path.dropFirst(directory.count + 1)) : ""
        guard name.hasPrefix(namePrefix), !name.contains("/"), offer.nonce.count == 16, (1...255).contains(offer.slotCount),
              offer.slotBytes > 0, offer.slotBytes <= 1 << 30 else {
            throw CollectivesError.invalidArgument("not a shared-memory lane offer: \(offer.path), \(offer.slotCount) x \(offer.slotBytes) bytes")
        }
        let fd = open(offer.path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw laneError("cannot open \(offer.path)") }
        defer { close(fd) }
        let total = layout(slotCount: offer.slotCount, slotBytes: offer.slotBytes).total
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int(info.st_size) == total else {
            throw CollectivesError.invalidArgument("\(offer.path) is not a lane file of \(total) bytes")
        }
        guard let lane = map(fd: fd, bytes: total, slotCount: offer.slotCount, slotBytes: offer.slotBytes, populate: true) else {
            throw laneError("cannot map \(offer.path)")
        }
        let nonce = (0..<16).map { lane.base.load(fromByteOffset: 24 + $0, as: UInt8.self) }
        guard UInt64(littleEndian: lane.base.load(fromByteOffset: 0, as: UInt64.self)) == magic, nonce == offer.nonce,
              Int(UInt32(littleEndian: lane.base.load(fromByteOffset: 8, as: UInt32.self))) == offer.slotCount,
              Int(UInt64(littleEndian: lane.base.load(fromByteOffset: 16, as: UInt64.self))) == offer.slotBytes else {
            throw CollectivesError.invalidArgument("\(offer.path) does not carry the offer's nonce and layout (another host's file?)")
        }
        return lane
    }

    /// `populate`: map the pages now (the receiver's side: the sender already wrote them all).
    private static func map(fd: Int32, bytes: Int, slotCount: Int, slotBytes: Int, populate: Bool = false) -> SharedMemoryLane? {
        #if os(Linux)
        let flags = MAP_SHARED | (populate ? MAP_POPULATE : 0)
        #else
        let flags = MAP_SHARED
        #endif
        guard let pointer = mmap(nil, bytes, PROT_READ | PROT_WRITE, flags, fd, 0), pointer != MAP_FAILED else { return nil }
        return SharedMemoryLane(base: pointer, mappedBytes: bytes, slotCount: slotCount, slotBytes: slotBytes)
    }

    private static func laneError(_ what: String) -> CollectivesError {
        .invalidArgument("\(what): \(String(cString: strerror(errno)))")
    }

    private func state(_ slot: Int) -> UnsafeMutablePointer<UInt32> {
        (base + 64 + slot * Self.stateStride).assumingMemoryBound(to: UInt32.self)
    }

    private func slotBase(_ slot: Int) -> UnsafeMutableRawPointer { base + slotsOffset + slot * slotStride }

    // MARK: Sender

    /// Copies `bytes` into the lowest free slot (the most recently used ones are likely still in
    /// cache) and marks it published; nil (nothing written) when the payload does not fit or the
    /// receiver still holds every slot.
    func publish(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count <= slotBytes else { return nil }
        guard let slot = (0..<slotCount).first(where: { srdpr_load_acquire(state($0)) == 0 }) else {
            overflowed += 1
            return nil
        }
        if let source = bytes.baseAddress, bytes.count > 0 { slotBase(slot).copyMemory(from: source, byteCount: bytes.count) }
        srdpr_store_release(state(slot), 1)
        published += 1
        return slot
    }

    // MARK: Receiver

    /// The bytes of a published slot, nil if the slot number or length is out of range or the
    /// sender has not published it (a peer that breaks the protocol).
    func payload(slot: Int, length: Int) -> UnsafeRawBufferPointer? {
        guard (0..<slotCount).contains(slot), (0...slotBytes).contains(length), srdpr_load_acquire(state(slot)) == 1 else { return nil }
        return UnsafeRawBufferPointer(start: slotBase(slot), count: length)
    }

    /// Hands a slot back to the sender.
    func release(slot: Int) {
        srdpr_store_release(state(slot), 0)
    }
}

/// A received payload that lives in a lane slot; the slot is freed when the last copy of the
/// message is gone.
final class SharedSlotLease {
    let lane: SharedMemoryLane
    let slot: Int
    let bytes: UnsafeRawBufferPointer

    init(lane: SharedMemoryLane, slot: Int, bytes: UnsafeRawBufferPointer) {
        self.lane = lane; self.slot = slot; self.bytes = bytes
    }

    deinit { lane.release(slot: slot) }
}
