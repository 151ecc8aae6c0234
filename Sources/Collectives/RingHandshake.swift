import CZMQ

/// Mutual proof of the job's shared secret between a DEALER (client, the left neighbour) and
/// the ROUTER it connects to (server):
///
///     client -> HELLO(client nonce)
///     server -> CHALLENGE(server nonce)
///     client -> RESPONSE(HMAC(secret, "srdpr-client" | job | nonces | ranks))
///     server -> ACCEPT(HMAC(secret, "srdpr-server" | job | nonces | ranks))  or REJECT(reason)
///
/// Fresh nonces on both sides make a recorded exchange useless for a replay; the secret itself
/// never travels. Without a secret both sides use the empty key (so ranks still check the job id).
enum RingHandshake {
    static let nonceBytes = 32

    static func randomNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<nonceBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    static func proof(_ role: String, secret: [UInt8], jobID: String, clientNonce: [UInt8], serverNonce: [UInt8],
                      clientRank: Int, serverRank: Int) -> [UInt8] {
        var message = Array("srdpr-ring-\(role)".utf8) + [0] + Array(jobID.utf8) + [0]
        message += clientNonce + serverNonce
        message += [UInt8(truncatingIfNeeded: clientRank >> 8), UInt8(truncatingIfNeeded: clientRank),
                    UInt8(truncatingIfNeeded: serverRank >> 8), UInt8(truncatingIfNeeded: serverRank)]
        return SHA256.hmac(key: secret, message: message)
    }

    struct ClientState {
        let nonce = RingHandshake.randomNonce()
        var serverNonce: [UInt8] = []

        mutating func respond(toChallenge payload: [UInt8], secret: [UInt8], jobID: String, clientRank: Int, serverRank: Int) -> [UInt8]? {
            guard payload.count == nonceBytes else { return nil }
            serverNonce = payload
            return proof("client", secret: secret, jobID: jobID, clientNonce: nonce, serverNonce: payload,
                         clientRank: clientRank, serverRank: serverRank)
        }

        func verifyAcceptance(_ payload: [UInt8], secret: [UInt8], jobID: String, clientRank: Int, serverRank: Int) -> Bool {
            guard serverNonce.count == nonceBytes else { return false }
            let expected = proof("server", secret: secret, jobID: jobID, clientNonce: nonce, serverNonce: serverNonce,
                                 clientRank: clientRank, serverRank: serverRank)
            return SHA256.constantTimeEqual(payload, expected)
        }
    }

    struct ServerState {
        let clientNonce: [UInt8]
        let nonce = RingHandshake.randomNonce()

        init?(hello payload: [UInt8]) {
            guard payload.count == nonceBytes else { return nil }
            clientNonce = payload
        }

        func verify(response: [UInt8], secret: [UInt8], jobID: String, clientRank: Int, serverRank: Int) -> Bool {
            let expected = proof("client", secret: secret, jobID: jobID, clientNonce: clientNonce, serverNonce: nonce,
                                 clientRank: clientRank, serverRank: serverRank)
            return SHA256.constantTimeEqual(response, expected)
        }

        func acceptance(secret: [UInt8], jobID: String, clientRank: Int, serverRank: Int) -> [UInt8] {
            proof("server", secret: secret, jobID: jobID, clientNonce: clientNonce, serverNonce: nonce,
                  clientRank: clientRank, serverRank: serverRank)
        }
    }

    /// A CURVE key pair every rank derives from the secret and the job id: only holders of the
    /// secret know the server key, so only they can open an encrypted connection.
    static func curveKeys(secret: [UInt8], jobID: String) throws -> (publicKey: [UInt8], secretKey: [UInt8]) {
        let secretKey = SHA256.hash(Array("srdpr-curve-key".utf8) + [0] + Array(jobID.utf8) + [0] + secret)
        var secretZ85 = [CChar](repeating: 0, count: 41)
        var publicZ85 = [CChar](repeating: 0, count: 41)
        guard zmq_z85_encode(&secretZ85, secretKey, secretKey.count) != nil,
              zmq_curve_public(&publicZ85, secretZ85) == 0 else {
            throw ZMQContext.lastError("zmq_curve_public (is libzmq built with CURVE?)")
        }
        var publicKey = [UInt8](repeating: 0, count: 32)
        guard zmq_z85_decode(&publicKey, publicZ85) != nil else { throw ZMQContext.lastError("zmq_z85_decode") }
        return (publicKey, secretKey)
    }
}
