/// The server side of the shared-secret handshake (``RingHandshake``) for every ROUTER socket that
/// accepts connections: the ring (only the left neighbour may connect) and the coordinator's
/// control channel (any rank of the job). HELLO -> challenge, proof -> accept; anything else from
/// a connection that has not proved the secret is refused. Sending and logging stay with the caller.
struct HandshakeAuthenticator {
    /// What to do with a message of a connection that has not authenticated yet.
    enum Outcome: Equatable {
        /// Send this handshake message (a challenge) back.
        case reply(WireHeader.Kind, [UInt8])
        /// The connection proved the secret for `rank`: send `proof` back as `.accept`.
        case authenticated(rank: Int, proof: [UInt8])
        /// Refuse it for `reason` (also told to the peer when `reply`).
        case refuse(String, reply: Bool)
    }

    /// Connections that said hello and have not answered the challenge yet are remembered up to
    /// this many: strangers that never finish cannot grow memory without bound.
    static let maximumPending = 256

    let secret: [UInt8]
    let jobID: String
    /// The rank this side proves in the handshake.
    let serverRank: Int
    private var pending: [[UInt8]: (rank: Int, state: RingHandshake.ServerState)] = [:]

    init(secret: [UInt8], jobID: String, serverRank: Int) {
        self.secret = secret
        self.jobID = jobID
        self.serverRank = serverRank
    }

    /// The next step of the handshake of connection `identity` (whose message already passed the
    /// job check). `refusal(rank)` says why `rank` may not connect here now (nil: it may).
    mutating func answer(identity: [UInt8], header: WireHeader, payload: [UInt8], refusal: (Int) -> String?) -> Outcome {
        switch header.kind {
        case .hello:
            if let reason = refusal(header.sender) { return .refuse(reason, reply: true) }
            guard let state = RingHandshake.ServerState(hello: payload) else { return .refuse("malformed hello", reply: true) }
            if pending.count >= Self.maximumPending { pending.removeAll() }
            pending[identity] = (header.sender, state)
            return .reply(.challenge, state.nonce)
        case .response:
            guard let (rank, state) = pending.removeValue(forKey: identity) else {
                return .refuse("sent a handshake response without a hello", reply: true)
            }
            guard refusal(rank) == nil,
                  state.verify(response: payload, secret: secret, jobID: jobID, clientRank: rank, serverRank: serverRank) else {
                return .refuse("claims rank \(rank) but does not prove the shared secret", reply: true)
            }
            return .authenticated(rank: rank, proof: state.acceptance(secret: secret, jobID: jobID, clientRank: rank, serverRank: serverRank))
        default:
            return .refuse("sent a \(header.kind) message without authenticating", reply: false)
        }
    }
}
