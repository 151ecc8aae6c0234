/// How the coordinator of a multi-process job listens: the address workers connect to, how many
/// ranks it waits for, the shared secret (and CurveZMQ encryption), and its timeouts. The training
/// coordinator (`RemoteWorkers`) and the index coordinator (`IndexJobCoordinator`) take the same.
public struct CoordinatorListenOptions: Sendable {
    public var bind: String
    public var worldSize: Int
    public var secret: [UInt8]
    public var curve = false
    /// A process silent this long (seconds) counts as lost.
    public var heartbeatTimeout: Double = 30
    /// How long to wait for every worker to register (seconds).
    public var joinTimeout: Double = 600

    public init(bind: String, worldSize: Int, secret: [UInt8]) {
        self.bind = bind
        self.worldSize = worldSize
        self.secret = secret
    }
}
