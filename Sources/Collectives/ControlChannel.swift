import CZMQ
import Foundation
import Logging

/// The coordinator's side of the control channel: a ROUTER socket that workers connect to (one
/// connection for orders and reports, one for heartbeats). Every connection must first prove the
/// job's shared secret with the ring's handshake (``RingHandshake``, the coordinator taking rank
/// ``ControlServer/coordinatorRank``); until then its messages are dropped and each refusal is
/// logged, while the job goes on. Messages are a ``WireHeader`` frame plus an optional payload
/// frame; malformed ones from authenticated peers are logged and dropped, never trusted.
public final class ControlServer {
    /// The rank the coordinator takes in handshakes and headers.
    public static let coordinatorRank = 0xFFFF
    /// Job id of the control channel (the secret is what makes it specific).
    static let jobID = "srdpr-control"
    /// Larger messages make libzmq drop the connection before allocating them.
    public static let maxMessageBytes = 64 << 20

    /// An authenticated connection and the rank it proved.
    public struct Peer: Hashable, Sendable, CustomStringConvertible {
        public let identity: [UInt8]
        public let rank: Int
        public var description: String { "rank \(rank)" }
    }

    public struct Message {
        public let peer: Peer
        public let kind: WireHeader.Kind
        public let payload: [UInt8]
    }

    /// The bound endpoint (with the port the system chose for `tcp://HOST:0`).
    public let endpoint: String
    public let worldSize: Int
    /// One line per refused connection or dropped message (also logged as warnings).
    public private(set) var refusedPeers: [String] = []

    private let secret: [UInt8]
    private let jobHash = WireHeader.jobHash(ControlServer.jobID)
    private let logger: Logger
    private var context: ZMQContext?
    private var router: ZMQSocket?
    private var authenticated: [[UInt8]: Int] = [:]
    private var authenticator: HandshakeAuthenticator
    private var sequence = 0

    /// Binds `address` (`tcp://HOST:PORT`; port 0 or `*` picks a free one, see `endpoint`).
    public init(bind address: String, worldSize: Int, secret: [UInt8], curve: Bool = false,
                logger: Logger = Logger(label: "srdpr.control")) throws {
        guard address.hasPrefix("tcp://") || address.hasPrefix("ipc://") else {
            throw CollectivesError.invalidArgument("--bind \(address) is not tcp://HOST:PORT")
        }
        guard worldSize >= 1, worldSize < ControlServer.coordinatorRank else {
            throw CollectivesError.invalidArgument("world size \(worldSize) must be 1...\(ControlServer.coordinatorRank - 1)")
        }
        self.worldSize = worldSize
        self.secret = secret
        self.logger = logger
        authenticator = HandshakeAuthenticator(secret: secret, jobID: ControlServer.jobID, serverRank: ControlServer.coordinatorRank)
        let (context, router) = try ControlServer.socket(ZMQ_ROUTER)
        try router.setOption(ZMQ_SNDHWM, 0, name: "ZMQ_SNDHWM")
        if curve {
            let keys = try RingHandshake.curveKeys(secret: secret, jobID: ControlServer.jobID)
            try router.setOption(ZMQ_CURVE_SERVER, 1, name: "ZMQ_CURVE_SERVER")
            try router.setOption(ZMQ_CURVE_SECRETKEY, bytes: keys.secretKey, name: "ZMQ_CURVE_SECRETKEY")
        }
        try router.bind(address.replacingOccurrences(of: ":0", with: ":*", options: [.anchored, .backwards]))
        endpoint = router.lastEndpoint() ?? address
        self.context = context
        self.router = router
    }

    deinit { close() }

    /// Closes the socket, letting queued messages (stop orders) go out for up to `linger` ms.
    public func close(lingerMilliseconds: Int32 = 1000) {
        router?.close(lingerMilliseconds: lingerMilliseconds)
        router = nil
        let waited = ControlServer.closeBound(lingerMilliseconds: lingerMilliseconds)
        if let context, !context.terminate(waitingAtMost: waited) {
            logger.warning("the control channel's libzmq context did not shut down within \(waited) s (a libzmq shutdown hang); going on without it")
        }
        context = nil
    }

    /// How long closing waits for libzmq: the linger, then 2 s more for the connections to go.
    public static func closeBound(lingerMilliseconds: Int32) -> Double { Double(max(0, lingerMilliseconds)) / 1000 + 2 }

    /// The next message of an authenticated peer, waiting up to `timeout` seconds (nil: none came).
    /// Handshakes of new connections and refusals are handled meanwhile.
    public func receive(timeout: Double) throws -> Message? {
        guard let router else { throw CollectivesError.closed(reason: "the control channel is closed") }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            while let frames = try router.receiveMessage() {
                if let message = handle(frames) { return message }
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return nil }
            _ = try router.poll(timeoutMilliseconds: Int(remaining * 1000) + 1)
        }
    }

    /// Sends `payload` to `peer` (silently lost if that connection is gone: heartbeats tell).
    public func send(_ payload: [UInt8], kind: WireHeader.Kind = .control, to peer: Peer) throws {
        guard let router else { throw CollectivesError.closed(reason: "the control channel is closed") }
        defer { sequence += 1 }
        let header = WireHeader(kind: kind, sender: ControlServer.coordinatorRank, job: jobHash, step: 0, sequence: sequence,
                                length: payload.count)
        try router.sendMessage(to: peer.identity, header: header, payload: payload)
    }

    // MARK: Internals

    /// A socket of the control channel in a context of its own; messages over the size limit
    /// make libzmq drop the connection instead of allocating them.
    static func socket(_ type: Int32) throws -> (ZMQContext, ZMQSocket) {
        let context = try ZMQContext(ioThreads: 1)
        let socket = try ZMQSocket(context: context, type: type)
        try socket.setOption64(ZMQ_MAXMSGSIZE, Int64(ControlServer.maxMessageBytes), name: "ZMQ_MAXMSGSIZE")
        return (context, socket)
    }

    private func handle(_ frames: [ZMQFrame]) -> Message? {
        guard let identityFrame = frames.first else { return nil }
        let identity = identityFrame.array
        let name = "connection \(identity.map { String(format: "%02x", $0) }.joined())"
        guard frames.count >= 2, let header = try? WireHeader.decode(frames[1].bytes, peer: -1) else {
            refuse(identity, name, reason: "not an srdpr message (\(frames.count) frame(s))", reply: false)
            return nil
        }
        let payload = frames.count > 2 ? frames[2].array : []
        guard header.job == jobHash else {
            refuse(identity, name, reason: "belongs to another job (job id differs)", reply: true)
            return nil
        }
        if let rank = authenticated[identity] {
            guard header.kind == .control || header.kind == .heartbeat, header.sender == rank,
                  frames.count <= 3, header.length == payload.count else {
                let line = "coordinator dropped a malformed message from rank \(rank): \(header.kind) from rank \(header.sender), "
                    + "\(frames.count) frames, \(payload.count) of \(header.length) payload bytes"
                note(line)
                return nil
            }
            return Message(peer: Peer(identity: identity, rank: rank), kind: header.kind, payload: payload)
        }
        let world = worldSize
        let outcome = authenticator.answer(identity: identity, header: header, payload: payload) {
            (0..<world).contains($0) ? nil : "claims rank \($0), outside 0..<\(world)"
        }
        switch outcome {
        case let .reply(kind, message):
            try? reply(identity, kind: kind, payload: message)
        case let .authenticated(rank, proof):
            authenticated[identity] = rank
            try? reply(identity, kind: .accept, payload: proof)
            logger.debug("control connection of rank \(rank) authenticated")
        case let .refuse(reason, sendReply):
            refuse(identity, name, reason: reason, reply: sendReply)
        }
        return nil
    }

    private func note(_ line: String) {
        // Keep the first lines; a flood must not grow memory without bound.
        if refusedPeers.count < 1000 { refusedPeers.append(line) }
        logger.warning("\(line)")
    }

    private func refuse(_ identity: [UInt8], _ name: String, reason: String, reply sendReply: Bool) {
        note("coordinator refused \(name) on \(endpoint): \(reason)")
        if sendReply { try? reply(identity, kind: .reject, payload: Array(reason.utf8)) }
    }

    private func reply(_ identity: [UInt8], kind: WireHeader.Kind, payload: [UInt8]) throws {
        guard let router else { return }
        let header = WireHeader(kind: kind, sender: ControlServer.coordinatorRank, job: jobHash, step: 0, sequence: 0,
                                length: payload.count)
        try router.sendMessage(to: identity, header: header, payload: payload)
    }
}

/// A worker's connection to the coordinator (``ControlServer``): proves the shared secret on
/// connect, then sends and receives header + payload messages. Not thread-safe: a worker opens one
/// for orders and reports and another, on its heartbeat thread, for heartbeats.
public final class ControlClient {
    public let endpoint: String
    public let rank: Int
    private let jobHash = WireHeader.jobHash(ControlServer.jobID)
    private var context: ZMQContext?
    private var dealer: ZMQSocket?
    private var sequence = 0

    /// Connects to `endpoint` as `rank` and completes the handshake within `timeout` seconds.
    /// Throws ``CollectivesError/authenticationFailed`` when the coordinator refuses us (wrong
    /// secret) or cannot prove the secret itself, ``CollectivesError/peerTimeout`` when nobody answers.
    public init(endpoint: String, rank: Int, secret: [UInt8], curve: Bool = false, timeout: Double) throws {
        guard endpoint.hasPrefix("tcp://") || endpoint.hasPrefix("ipc://") else {
            throw CollectivesError.invalidArgument("--coordinator \(endpoint) is not tcp://HOST:PORT")
        }
        self.endpoint = endpoint
        self.rank = rank
        let (context, dealer) = try ControlServer.socket(ZMQ_DEALER)
        // A send that cannot be queued within 10 s fails instead of blocking forever.
        try dealer.setOption(ZMQ_SNDTIMEO, 10_000, name: "ZMQ_SNDTIMEO")
        if curve {
            let keys = try RingHandshake.curveKeys(secret: secret, jobID: ControlServer.jobID)
            try dealer.setOption(ZMQ_CURVE_SERVERKEY, bytes: keys.publicKey, name: "ZMQ_CURVE_SERVERKEY")
            try dealer.setOption(ZMQ_CURVE_PUBLICKEY, bytes: keys.publicKey, name: "ZMQ_CURVE_PUBLICKEY")
            try dealer.setOption(ZMQ_CURVE_SECRETKEY, bytes: keys.secretKey, name: "ZMQ_CURVE_SECRETKEY")
        }
        try dealer.connect(endpoint)
        self.context = context
        self.dealer = dealer

        var client = RingHandshake.ClientState()
        try send(client.nonce, kind: .hello)
        let server = ControlServer.coordinatorRank
        let deadline = Date(timeIntervalSinceNow: timeout)
        while true {
            guard let (header, payload) = try receiveFrames(timeout: deadline.timeIntervalSinceNow) else {
                close(lingerMilliseconds: 0)
                throw CollectivesError.peerTimeout(peer: server, address: endpoint, seconds: timeout,
                                                   waitingFor: "the coordinator to answer our handshake (is it running at this address?)")
            }
            switch header.kind {
            case .challenge:
                guard let proof = client.respond(toChallenge: payload, secret: secret, jobID: ControlServer.jobID,
                                                 clientRank: rank, serverRank: server) else {
                    throw CollectivesError.authenticationFailed(peer: server, address: endpoint, reason: "malformed challenge")
                }
                try send(proof, kind: .response)
            case .accept:
                guard client.verifyAcceptance(payload, secret: secret, jobID: ControlServer.jobID, clientRank: rank, serverRank: server) else {
                    close(lingerMilliseconds: 0)
                    throw CollectivesError.authenticationFailed(
                        peer: server, address: endpoint, reason: "it accepted us but does not prove the shared secret (an impostor?)")
                }
                return
            case .reject:
                close(lingerMilliseconds: 0)
                throw CollectivesError.authenticationFailed(peer: server, address: endpoint,
                    reason: "the coordinator refused us: \(String(decoding: payload, as: UTF8.self)) (same --secret-file / SRDPR_SECRET on every process?)")
            default:
                throw CollectivesError.malformedMessage(peer: server, reason: "unexpected \(header.kind) message during the handshake")
            }
        }
    }

    deinit { close() }

    /// Closes the connection, letting queued messages go out for up to `linger` ms.
    public func close(lingerMilliseconds: Int32 = 2000) {
        dealer?.close(lingerMilliseconds: lingerMilliseconds)
        dealer = nil
        let waited = ControlServer.closeBound(lingerMilliseconds: lingerMilliseconds)
        if let context, !context.terminate(waitingAtMost: waited) {
            FileHandle.standardError.write(Foundation.Data(("srdpr: the connection to the coordinator did not shut down within \(waited) s "
                + "(a libzmq shutdown hang); going on without it\n").utf8))
        }
        context = nil
    }

    public func send(_ payload: [UInt8], kind: WireHeader.Kind = .control) throws {
        guard let dealer else { throw CollectivesError.closed(reason: "the connection to the coordinator is closed") }
        defer { sequence += 1 }
        let header = WireHeader(kind: kind, sender: rank, job: jobHash, step: 0, sequence: sequence, length: payload.count)
        try dealer.sendMessage(to: nil, header: header, payload: payload)
    }

    /// The coordinator's next message within `timeout` seconds (nil: none came). A message that
    /// is not the coordinator's is an error naming what is wrong.
    public func receive(timeout: Double) throws -> (kind: WireHeader.Kind, payload: [UInt8])? {
        guard let (header, payload) = try receiveFrames(timeout: timeout) else { return nil }
        guard header.kind == .control || header.kind == .heartbeat else {
            throw CollectivesError.malformedMessage(peer: ControlServer.coordinatorRank, reason: "unexpected \(header.kind) message")
        }
        return (header.kind, payload)
    }

    private func receiveFrames(timeout: Double) throws -> (WireHeader, [UInt8])? {
        guard let dealer else { throw CollectivesError.closed(reason: "the connection to the coordinator is closed") }
        let deadline = Date(timeIntervalSinceNow: max(0, timeout))
        while true {
            if let frames = try dealer.receiveMessage() {
                let server = ControlServer.coordinatorRank
                guard let first = frames.first, frames.count <= 2 else {
                    throw CollectivesError.malformedMessage(peer: server, reason: "a message of \(frames.count) frames from the coordinator")
                }
                let header = try WireHeader.decode(first.bytes, peer: server)
                let payload = frames.count > 1 ? frames[1].array : []
                guard header.job == jobHash, header.sender == server, header.length == payload.count else {
                    throw CollectivesError.malformedMessage(peer: server,
                        reason: "header (job, sender \(header.sender), length \(header.length)) does not match a coordinator message of \(payload.count) bytes")
                }
                return (header, payload)
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return nil }
            _ = try dealer.poll(timeoutMilliseconds: Int(remaining * 1000) + 1)
        }
    }
}

extension ZMQSocket {
    /// A control message: [the ROUTER's peer identity,] the header frame, and the payload frame if any.
    fileprivate func sendMessage(to identity: [UInt8]?, header: WireHeader, payload: [UInt8]) throws {
        if let identity { try send(identity, more: true) }
        try send(header.encoded(), more: !payload.isEmpty)
        if !payload.isEmpty { try send(payload, more: false) }
    }
}
