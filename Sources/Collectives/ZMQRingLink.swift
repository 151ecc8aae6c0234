import CZMQ
import Foundation
import Logging

/// The ring's transport (as gloo's transport under its algorithms): this rank's ROUTER socket,
/// bound at its ring address, receives from the left neighbour; its DEALER, connected to the right
/// neighbour's address, sends. On connect each DEALER proves the job's shared secret to the ROUTER
/// it connects to and the ROUTER proves it back (``RingHandshake``, server side in
/// ``HandshakeAuthenticator``); any other connection is refused and logged while the job goes on.
/// After the handshake, neighbours on one host set up shared-memory lanes for payloads. Every
/// message is a 64-byte ``WireHeader`` frame plus a payload frame, checked on receipt. After
/// `fail` the sockets are shut and every later call throws ``CollectivesError/closed``.
final class ZMQRingLink: RingLink {
    typealias Options = ZMQCommunicator.Options

    let rank: Int
    let worldSize: Int
    let addresses: [String]
    let jobID: String
    /// Where this rank's ROUTER listens.
    let bindAddress: String
    let options: Options
    /// One line per refused connection or dropped stranger message (also logged as warnings).
    private(set) var refusedPeers: [String] = []

    /// Whether payloads to the right neighbour / from the left one go through shared memory.
    var sharedMemoryLinks: (toRight: Bool, fromLeft: Bool) { (outgoingLane != nil, incomingLane != nil) }
    /// Payloads sent through the outgoing lane, and sent over the socket because it was full.
    var laneCounts: (published: Int, overflowed: Int) { (outgoingLane?.published ?? 0, outgoingLane?.overflowed ?? 0) }

    private let logger: Logger
    private let jobHash: UInt64
    private let secret: [UInt8]
    private var context: ZMQContext?
    private var router: ZMQSocket?
    private var dealer: ZMQSocket?
    /// Receives libzmq's reports of connections to our ROUTER that failed below our protocol
    /// (not ZeroMQ at all, wrong CURVE key), so they are logged like the other refusals.
    private var monitor: ZMQSocket?
    private let sendTracker = SendTracker()
    /// Shared-memory lanes to the right neighbour and from the left one, when on this host.
    private var outgoingLane: SharedMemoryLane?
    private var incomingLane: SharedMemoryLane?
    private var leftIdentity: [UInt8]?
    /// Handshakes in progress on our ROUTER, by connection identity.
    private lazy var authenticator = HandshakeAuthenticator(secret: secret, jobID: jobID, serverRank: rank)
    /// Messages of the left neighbour that arrived before we asked for them (during setup).
    private var earlyMessages: [[ZMQFrame]] = []
    /// Why the link was shut (nil while it is up).
    private(set) var closedReason: String?

    /// Connects rank `rank` of `worldSize` into the ring and returns once both neighbours have
    /// proven the secret (world size 1: nothing to connect). `addresses[i]` is rank i's `tcp://host:port` as the others reach it;
    /// this rank binds `bindAddress` (default: its own entry, e.g. `tcp://0.0.0.0:PORT` when the
    /// host has several interfaces). All ranks must use the same `jobID` and `secret`.
    init(rank: Int, worldSize: Int, addresses: [String], jobID: String, secret: [UInt8]? = nil,
                bindAddress: String? = nil, options: Options = Options(),
                logger: Logger = Logger(label: "srdpr.collectives")) throws {
        guard worldSize >= 1 else { throw CollectivesError.invalidArgument("world size \(worldSize) must be at least 1") }
        guard (0..<worldSize).contains(rank) else {
            throw CollectivesError.invalidArgument("rank \(rank) is outside 0..<\(worldSize) (world size \(worldSize))")
        }
        guard addresses.count == worldSize else {
            throw CollectivesError.invalidArgument("\(addresses.count) ring addresses given for a world of size \(worldSize)")
        }
        for (i, address) in addresses.enumerated() where !address.hasPrefix("tcp://") && !address.hasPrefix("ipc://") {
            throw CollectivesError.invalidArgument("ring address of rank \(i) '\(address)' is not tcp://HOST:PORT")
        }
        guard options.chunkBytes >= 4, options.receiveTimeout > 0, options.setupTimeout > 0, (options.globalLossBufferSize ?? 0) >= 0 else {
            throw CollectivesError.invalidArgument("chunkBytes must be >= 4, timeouts > 0 and global_loss_buf_sz >= 0")
        }
        self.rank = rank
        self.worldSize = worldSize
        self.addresses = addresses
        self.jobID = jobID
        self.options = options
        self.logger = logger
        self.jobHash = WireHeader.jobHash(jobID)
        self.secret = secret ?? []
        self.bindAddress = bindAddress ?? (addresses.indices.contains(rank) ? addresses[rank] : "")
        guard worldSize > 1 else { return }
        if options.tuneMalloc { MallocTuning.applyOnce }
        do {
            try connectRing()
        } catch {
            // Linger a little so that our refusal reaches a peer that failed to authenticate.
            throw fail(error, lingerMilliseconds: 1000)
        }
    }

    deinit {
        // Let queued messages reach the right neighbour (it may still be finishing this
        // collective), but never wait longer than a receive would.
        let linger = Int32(min(Double(Int32.max / 2), options.receiveTimeout * 1000))
        monitor?.close(lingerMilliseconds: 0)
        router?.close(lingerMilliseconds: linger)
        dealer?.close(lingerMilliseconds: linger)
        context?.terminate()
    }

    /// Sends `frames` to the right neighbour as they are, unchecked. For fault-injection tests
    /// (a garbage or truncated message from an authenticated peer); never used by the library.
    func sendRawFramesForTesting(_ frames: [[UInt8]]) throws {
        guard let dealer else { throw CollectivesError.invalidArgument("world size 1 has no right neighbour") }
        for (i, frame) in frames.enumerated() { try dealer.send(frame, more: i < frames.count - 1) }
    }

    // MARK: RingLink

    func sendRight(_ header: WireHeader, payload: UnsafeRawBufferPointer?, zeroCopy: Bool) throws {
        guard let dealer else { throw CollectivesError.closed(reason: closedReason ?? "no ring") }
        let hasPayload = (payload?.count ?? 0) > 0
        if hasPayload, let payload, let lane = outgoingLane, let slot = lane.publish(payload) {
            var header = header
            header.flags |= WireHeader.flagSharedMemory
            header.slot = slot
            try header.encoded().withUnsafeBytes { try dealer.send($0, more: false) }
            return
        }
        try header.encoded().withUnsafeBytes { try dealer.send($0, more: hasPayload) }
        guard hasPayload, let payload else { return }
        if zeroCopy {
            try dealer.sendZeroCopy(payload, tracker: sendTracker, more: false)
        } else {
            try dealer.send(payload, more: false)
        }
    }

    func receiveLeft(_ expected: WireHeader, checkLength: Bool, during: @autoclosure () -> String) throws -> ReceivedMessage {
        let frames = try nextLeftMessage(during: during)
        let left = leftRank
        guard frames.count >= 2 else {
            throw CollectivesError.malformedMessage(peer: left, reason: "a message of \(frames.count) frame(s) without a header")
        }
        let (header, hasPayload) = try WireMessage.validate(frames.dropFirst().map(\.bytes), expected: expected,
                                                            checkLength: checkLength, peer: left, during: during)
        if header.flags & WireHeader.flagSharedMemory != 0 {
            guard let lane = incomingLane, let bytes = lane.payload(slot: header.slot, length: header.length) else {
                throw CollectivesError.malformedMessage(
                    peer: left, reason: "payload announced in shared-memory slot \(header.slot) (\(header.length) bytes), "
                        + (incomingLane == nil ? "but no lane was set up" : "which is not published or out of range") + " during \(during())")
            }
            return ReceivedMessage(header: header, frame: nil, lease: SharedSlotLease(lane: lane, slot: header.slot, bytes: bytes))
        }
        return ReceivedMessage(header: header, frame: hasPayload ? frames[2] : nil)
    }

    func drainSends() throws {
        guard sendTracker.waitUntilDrained(timeout: options.receiveTimeout) else {
            throw CollectivesError.sendTimeout(peer: rightRank, address: addresses[rightRank], seconds: options.receiveTimeout)
        }
    }

    // MARK: Internals

    /// Shuts the sockets (so libzmq no longer reads the caller's buffers) and remembers why.
    func fail(_ error: Error, lingerMilliseconds: Int32 = 0) -> Error {
        if closedReason == nil { closedReason = "\(error)" }
        monitor?.close(lingerMilliseconds: 0)
        router?.close(lingerMilliseconds: lingerMilliseconds)
        dealer?.close(lingerMilliseconds: lingerMilliseconds)
        monitor = nil
        router = nil
        dealer = nil
        outgoingLane = nil
        incomingLane = nil
        context?.terminate()  // returns once libzmq has released every zero-copy buffer
        context = nil
        return error
    }

    private func connectRing() throws {
        let context = try ZMQContext(ioThreads: options.ioThreads)
        self.context = context
        let router = try ZMQSocket(context: context, type: ZMQ_ROUTER)
        let dealer = try ZMQSocket(context: context, type: ZMQ_DEALER)
        self.router = router
        self.dealer = dealer
        for socket in [router, dealer] {
            // Unbounded queues: zero-copy messages cost no memory and the ring itself bounds
            // what is in flight; a finite high-water mark could only make a send block.
            try socket.setOption(ZMQ_SNDHWM, 0, name: "ZMQ_SNDHWM")
            try socket.setOption(ZMQ_RCVHWM, 0, name: "ZMQ_RCVHWM")
            if options.socketBufferBytes > 0 {
                try socket.setOption(ZMQ_SNDBUF, options.socketBufferBytes, name: "ZMQ_SNDBUF")
                try socket.setOption(ZMQ_RCVBUF, options.socketBufferBytes, name: "ZMQ_RCVBUF")
            }
        }
        if options.curve {
            let keys = try RingHandshake.curveKeys(secret: secret, jobID: jobID)
            try router.setOption(ZMQ_CURVE_SERVER, 1, name: "ZMQ_CURVE_SERVER")
            try router.setOption(ZMQ_CURVE_SECRETKEY, bytes: keys.secretKey, name: "ZMQ_CURVE_SECRETKEY")
            try dealer.setOption(ZMQ_CURVE_SERVERKEY, bytes: keys.publicKey, name: "ZMQ_CURVE_SERVERKEY")
            try dealer.setOption(ZMQ_CURVE_PUBLICKEY, bytes: keys.publicKey, name: "ZMQ_CURVE_PUBLICKEY")
            try dealer.setOption(ZMQ_CURVE_SECRETKEY, bytes: keys.secretKey, name: "ZMQ_CURVE_SECRETKEY")
        }
        let monitorEndpoint = "inproc://srdpr-ring-monitor-\(rank)-\(UUID().uuidString)"
        let failures = ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        guard zmq_socket_monitor(router.handle, monitorEndpoint, failures) == 0 else {
            throw ZMQContext.lastError("zmq_socket_monitor")
        }
        let monitor = try ZMQSocket(context: context, type: ZMQ_PAIR)
        try monitor.connect(monitorEndpoint)
        self.monitor = monitor
        try router.bind(bindAddress)
        try dealer.connect(addresses[rightRank])

        // Our DEALER proves the secret to the right neighbour while our ROUTER checks the left one.
        var client = RingHandshake.ClientState()
        try sendHandshake(dealer: dealer, kind: .hello, payload: client.nonce)
        var rightAccepted = false
        var deadline = Date(timeIntervalSinceNow: options.setupTimeout)
        // When the right neighbour refuses us, we keep answering the left one for a moment so
        // that it learns why (instead of timing out), then report the refusal.
        var refusal: Error?
        while (!rightAccepted && refusal == nil) || leftIdentity == nil {
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                if let refusal { throw refusal }
                if !rightAccepted {
                    throw CollectivesError.peerTimeout(peer: rightRank, address: addresses[rightRank], seconds: options.setupTimeout,
                                                       waitingFor: "the right neighbour to accept our handshake (is it running, with this job id?)")
                }
                throw CollectivesError.peerTimeout(peer: leftRank, address: addresses[leftRank], seconds: options.setupTimeout,
                                                   waitingFor: "the left neighbour to connect to \(addresses[rank]) and prove the shared secret")
            }
            var items = [zmq_pollitem_t(socket: router.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0),
                         zmq_pollitem_t(socket: dealer.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0),
                         zmq_pollitem_t(socket: monitor.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)]
            let rc = zmq_poll(&items, 3, Int(min(remaining, 0.5) * 1000) + 1)
            if rc < 0 && zmq_errno() != EINTR { throw ZMQContext.lastError("zmq_poll") }
            try logFailedConnections()
            while let frames = try router.receiveMessage() {
                if let leftIdentity, frames.first?.array == leftIdentity {
                    earlyMessages.append(frames)
                } else {
                    serveStranger(frames)
                }
            }
            while refusal == nil, let frames = try dealer.receiveMessage() {
                do {
                    rightAccepted = try answerHandshake(frames, client: &client, dealer: dealer) || rightAccepted
                } catch {
                    refusal = error
                    deadline = min(deadline, Date(timeIntervalSinceNow: 1))
                }
            }
        }
        if let refusal { throw refusal }
        try setUpLanes(router: router, dealer: dealer)
        logger.debug("rank \(rank): ring connected (left \(leftRank), right \(rightRank))")
    }

    /// After the handshake every rank sends its right neighbour one `.lane` message, a lane offer
    /// when that neighbour is reached over `ipc://` (same host) or an empty one, and answers its
    /// left neighbour's offer on the ROUTER: accepted once the lane file is mapped and shows the
    /// offer's nonce. Any failure leaves that link on the socket; nothing here is fatal but a
    /// silent peer.
    private func setUpLanes(router: ZMQSocket, dealer: ZMQSocket) throws {
        let right = rightRank, left = leftRank
        var offered: (lane: SharedMemoryLane, offer: SharedMemoryLane.Offer)?
        if options.sharedMemoryLanes && addresses[right].hasPrefix("ipc://") {
            do {
                offered = try SharedMemoryLane.create(slotCount: options.laneSlots, slotBytes: options.chunkBytes)
            } catch {
                logger.info("rank \(rank): no shared-memory lane to rank \(right), payloads go over the socket: \(error)")
            }
        }
        defer { if let path = offered?.offer.path { unlink(path) } }
        let offerBytes = offered?.offer.encoded() ?? []
        try offerBytes.withUnsafeBytes {
            try sendRight(WireHeader(kind: .lane, sender: rank, job: jobHash, step: 0, sequence: 0, length: offerBytes.count),
                          payload: $0, zeroCopy: false)
        }

        let expected = WireHeader(kind: .lane, sender: left, job: jobHash, step: 0, sequence: 0, length: 0)
        let message = try receiveLeft(expected, checkLength: false, during: "the left neighbour's shared-memory lane offer")
        if message.header.length > 0, let identity = leftIdentity {
            var answer: [UInt8] = [0]
            if !options.sharedMemoryLanes {
                answer += Array("shared-memory lanes are off on rank \(rank)".utf8)
            } else if let offer = SharedMemoryLane.Offer.decode(Array(message.payload)) {
                do {
                    incomingLane = try SharedMemoryLane.attach(offer)
                    answer = [1]
                } catch {
                    answer += Array("\(error)".utf8)
                }
            } else {
                answer += Array("malformed offer".utf8)
            }
            try replyHandshake(router: router, identity: identity, kind: .lane, payload: answer)
        }

        guard let offered else { return }
        let deadline = Date(timeIntervalSinceNow: options.setupTimeout)
        while true {
            if let frames = try dealer.receiveMessage() {
                guard let first = frames.first, let header = try? WireHeader.decode(first.bytes, peer: right),
                      header.kind == .lane, header.job == jobHash, frames.count == 2 else {
                    throw CollectivesError.malformedMessage(peer: right, reason: "expected the answer to our shared-memory lane offer")
                }
                let answer = frames[1].array
                if answer.first == 1 {
                    outgoingLane = offered.lane
                    logger.debug("rank \(rank): payloads to rank \(right) go through shared memory")
                } else {
                    logger.info("rank \(rank): rank \(right) declined a shared-memory lane (\(String(decoding: answer.dropFirst(), as: UTF8.self))); payloads go over the socket")
                }
                return
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                throw CollectivesError.peerTimeout(peer: right, address: addresses[right], seconds: options.setupTimeout,
                                                   waitingFor: "the answer to our shared-memory lane offer")
            }
            _ = try dealer.poll(timeoutMilliseconds: Int(min(remaining, 0.5) * 1000) + 1)
        }
    }

    /// The left neighbour's next message, serving handshakes of other connections meanwhile.
    private func nextLeftMessage(during: () -> String) throws -> [ZMQFrame] {
        if !earlyMessages.isEmpty { return earlyMessages.removeFirst() }
        guard let router else { throw CollectivesError.closed(reason: closedReason ?? "no ring") }
        let deadline = Date(timeIntervalSinceNow: options.receiveTimeout)
        while true {
            while let frames = try router.receiveMessage() {
                if frames.first?.array == leftIdentity { return frames }
                serveStranger(frames)
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else {
                throw CollectivesError.peerTimeout(peer: leftRank, address: addresses[leftRank],
                                                   seconds: options.receiveTimeout, waitingFor: during())
            }
            var items = [zmq_pollitem_t(socket: router.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0),
                         zmq_pollitem_t(socket: monitor?.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)]
            if zmq_poll(&items, monitor == nil ? 1 : 2, Int(remaining * 1000) + 1) < 0 && zmq_errno() != EINTR {
                throw ZMQContext.lastError("zmq_poll")
            }
            try logFailedConnections()
        }
    }

    /// Logs connections libzmq dropped during its own handshake (garbage bytes, wrong CURVE key).
    private func logFailedConnections() throws {
        guard let monitor else { return }
        while let frames = try monitor.receiveMessage() {
            guard let event = frames.first, event.bytes.count >= 6 else { continue }
            let bytes = event.bytes
            let kind = UInt16(bytes[0]) | UInt16(bytes[1]) << 8
            let value = UInt32(bytes[2]) | UInt32(bytes[3]) << 8 | UInt32(bytes[4]) << 16 | UInt32(bytes[5]) << 24
            let reason: String
            switch Int32(kind) {
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: reason = "failed ZeroMQ authentication (status \(value))"
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
                reason = value == UInt32(ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
                    ? "failed the CURVE handshake (wrong key: it does not know the shared secret)"
                    : "broke the ZeroMQ protocol (error 0x\(String(value, radix: 16)): not a ZeroMQ peer, or CURVE on one side only)"
            default: reason = "failed the ZeroMQ handshake (errno \(value))"
            }
            let line = "rank \(rank) refused a connection on \(bindAddress): it \(reason)"
            if refusedPeers.count < 1000 { refusedPeers.append(line) }
            logger.warning("\(line)")
        }
    }

    private func sendHandshake(dealer: ZMQSocket, kind: WireHeader.Kind, payload: [UInt8]) throws {
        let header = WireHeader(kind: kind, sender: rank, job: jobHash, step: 0, sequence: 0, length: payload.count)
        try payload.withUnsafeBytes { try sendRight(header, payload: $0, zeroCopy: false) }
    }

    /// Client side of the handshake on our DEALER; true once the right neighbour accepted us.
    private func answerHandshake(_ frames: [ZMQFrame], client: inout RingHandshake.ClientState, dealer: ZMQSocket) throws -> Bool {
        let right = rightRank, address = addresses[right]
        guard let first = frames.first else { return false }
        let header = try WireHeader.decode(first.bytes, peer: right)
        let payload = frames.count > 1 ? frames[1].array : []
        guard header.job == jobHash else {
            throw CollectivesError.authenticationFailed(peer: right, address: address, reason: "the peer runs another job (job id differs)")
        }
        switch header.kind {
        case .challenge:
            guard let proof = client.respond(toChallenge: payload, secret: secret, jobID: jobID, clientRank: rank, serverRank: right) else {
                throw CollectivesError.authenticationFailed(peer: right, address: address, reason: "malformed challenge")
            }
            try sendHandshake(dealer: dealer, kind: .response, payload: proof)
            return false
        case .accept:
            guard client.verifyAcceptance(payload, secret: secret, jobID: jobID, clientRank: rank, serverRank: right) else {
                throw CollectivesError.authenticationFailed(
                    peer: right, address: address, reason: "the peer accepted us but does not prove the shared secret (an impostor?)")
            }
            return true
        case .reject:
            throw CollectivesError.authenticationFailed(peer: right, address: address,
                                                        reason: "refused by the peer: \(String(decoding: payload, as: UTF8.self))")
        default:
            throw CollectivesError.malformedMessage(peer: right, reason: "unexpected \(header.kind) message during the handshake")
        }
    }

    /// Server side of the handshake for any connection that is not (yet) our left neighbour:
    /// only a HELLO from the left rank followed by a correct proof is accepted.
    private func serveStranger(_ frames: [ZMQFrame]) {
        guard let router, let identityFrame = frames.first else { return }
        let identity = identityFrame.array
        let peerName = "connection \(identity.map { String(format: "%02x", $0) }.joined())"
        guard frames.count >= 2, let header = try? WireHeader.decode(frames[1].bytes, peer: -1) else {
            refuse(identity, peerName, reason: "not an srdpr message (\(frames.count) frames)", reply: false)
            return
        }
        let payload = frames.count > 2 ? frames[2].array : []
        guard header.job == jobHash else {
            refuse(identity, peerName, reason: "claims rank \(header.sender) of another job (job id differs)", reply: true)
            return
        }
        let left = leftRank
        let outcome = authenticator.answer(identity: identity, header: header, payload: payload) { sender in
            if sender != left { return "claims rank \(sender), but only rank \(left) may connect to rank \(rank)" }
            if leftIdentity != nil { return "claims rank \(left), which is already connected and authenticated" }
            return nil
        }
        switch outcome {
        case let .reply(kind, message):
            try? replyHandshake(router: router, identity: identity, kind: kind, payload: message)
        case let .authenticated(_, proof):
            leftIdentity = identity
            try? replyHandshake(router: router, identity: identity, kind: .accept, payload: proof)
            logger.debug("rank \(rank): left neighbour rank \(left) authenticated")
        case let .refuse(reason, reply):
            refuse(identity, peerName, reason: reason, reply: reply)
        }
    }

    private func refuse(_ identity: [UInt8], _ peerName: String, reason: String, reply: Bool) {
        let line = "rank \(rank) refused \(peerName) on \(addresses[rank]): \(reason)"
        // Keep the first refusals; a flood of them must not grow memory without bound.
        if refusedPeers.count < 1000 { refusedPeers.append(line) }
        logger.warning("\(line)")
        if reply, let router {
            try? replyHandshake(router: router, identity: identity, kind: .reject, payload: Array(reason.utf8))
        }
    }

    private func replyHandshake(router: ZMQSocket, identity: [UInt8], kind: WireHeader.Kind, payload: [UInt8]) throws {
        let header = WireHeader(kind: kind, sender: rank, job: jobHash, step: 0, sequence: 0, length: payload.count)
        try router.send(identity, more: true)
        try router.send(header.encoded(), more: !payload.isEmpty)
        if !payload.isEmpty { try router.send(payload, more: false) }
    }
}
