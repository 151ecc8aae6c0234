import CZMQ
import Foundation

/// Thin owners of libzmq handles: a context, a socket, a received frame. Only what the ring
/// needs; every failing call becomes ``CollectivesError/zmq``.
final class ZMQContext {
    private(set) var handle: UnsafeMutableRawPointer?

    init(ioThreads: Int) throws {
        guard let handle = zmq_ctx_new() else { throw ZMQContext.lastError("zmq_ctx_new") }
        self.handle = handle
        zmq_ctx_set(handle, ZMQ_IO_THREADS, Int32(max(1, ioThreads)))
    }

    /// Blocks until every socket is closed and its pending messages are sent or dropped (linger);
    /// afterwards libzmq holds no pointer into our buffers.
    func terminate() {
        guard let handle else { return }
        self.handle = nil
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// `terminate`, waiting at most `seconds` (see ``finishes(within:_:)``): false when libzmq did not
    /// return by then and the context is abandoned. Only for contexts whose sends copy their bytes
    /// (the control channel): the ring's zero-copy buffers must outlive the context.
    func terminate(waitingAtMost seconds: Double) -> Bool {
        guard let handle else { return true }
        self.handle = nil
        let context = UInt(bitPattern: handle)
        return finishes(within: seconds) {
            let handle = UnsafeMutableRawPointer(bitPattern: context)!
            while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
        }
    }

    deinit { terminate() }

    static func lastError(_ call: String) -> CollectivesError {
        let code = zmq_errno()
        return .zmq(call: call, errno: code, message: String(cString: zmq_strerror(code)))
    }
}

/// One received frame; the bytes stay valid until the frame is released.
final class ZMQFrame {
    let message: UnsafeMutablePointer<zmq_msg_t>

    init() {
        message = .allocate(capacity: 1)
        zmq_msg_init(message)
    }

    deinit {
        zmq_msg_close(message)
        message.deallocate()
    }

    var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: zmq_msg_data(message), count: zmq_msg_size(message))
    }

    var array: [UInt8] { Array(bytes) }
}

/// Counts zero-copy sends whose bytes libzmq still reads from our buffer; libzmq calls
/// `releaseZeroCopySend` from its I/O thread once a frame is written out.
final class SendTracker {
    private let condition = NSCondition()
    private var outstanding = 0

    func add() {
        condition.lock(); outstanding += 1; condition.unlock()
    }

    func release() {
        condition.lock()
        outstanding -= 1
        if outstanding == 0 { condition.broadcast() }
        condition.unlock()
    }

    /// False when sends are still outstanding after `timeout` seconds.
    func waitUntilDrained(timeout: Double) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while outstanding > 0 {
            if !condition.wait(until: deadline) { return outstanding == 0 }
        }
        return true
    }
}

private let releaseZeroCopySend: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
    guard let hint else { return }
    Unmanaged<SendTracker>.fromOpaque(hint).takeUnretainedValue().release()
}

final class ZMQSocket {
    private(set) var handle: UnsafeMutableRawPointer?

    init(context: ZMQContext, type: Int32) throws {
        guard let handle = zmq_socket(context.handle, type) else { throw ZMQContext.lastError("zmq_socket") }
        self.handle = handle
    }

    func setOption(_ option: Int32, _ value: Int32, name: String) throws {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int32>.size) == 0 else {
            throw ZMQContext.lastError("zmq_setsockopt(\(name))")
        }
    }

    func setOption64(_ option: Int32, _ value: Int64, name: String) throws {
        var value = value
        guard zmq_setsockopt(handle, option, &value, MemoryLayout<Int64>.size) == 0 else {
            throw ZMQContext.lastError("zmq_setsockopt(\(name))")
        }
    }

    /// The endpoint the socket last bound (with the port the system chose for `:*` or `:0`).
    func lastEndpoint() -> String? {
        var buffer = [CChar](repeating: 0, count: 512)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return nil }
        return String(cString: buffer)
    }

    func setOption(_ option: Int32, bytes: [UInt8], name: String) throws {
        let rc = bytes.withUnsafeBytes { zmq_setsockopt(handle, option, $0.baseAddress, $0.count) }
        guard rc == 0 else { throw ZMQContext.lastError("zmq_setsockopt(\(name))") }
    }

    func bind(_ endpoint: String) throws {
        guard zmq_bind(handle, endpoint) == 0 else { throw ZMQContext.lastError("zmq_bind(\(endpoint))") }
    }

    func connect(_ endpoint: String) throws {
        guard zmq_connect(handle, endpoint) == 0 else { throw ZMQContext.lastError("zmq_connect(\(endpoint))") }
    }

    /// Sends a copy of `bytes` as one frame.
    func send(_ bytes: UnsafeRawBufferPointer, more: Bool) throws {
        while true {
            if zmq_send(handle, bytes.baseAddress, bytes.count, more ? ZMQ_SNDMORE : 0) >= 0 { return }
            if zmq_errno() != EINTR { throw ZMQContext.lastError("zmq_send") }
        }
    }

    func send(_ bytes: [UInt8], more: Bool) throws {
        try bytes.withUnsafeBytes { try send($0, more: more) }
    }

    /// Sends `bytes` as one frame without copying: libzmq writes straight from our memory, which
    /// must stay unchanged until `tracker` has drained.
    func sendZeroCopy(_ bytes: UnsafeRawBufferPointer, tracker: SendTracker, more: Bool) throws {
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { message.deallocate() }
        tracker.add()
        guard zmq_msg_init_data(message, UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count,
                                releaseZeroCopySend, Unmanaged.passUnretained(tracker).toOpaque()) == 0 else {
            tracker.release()
            throw ZMQContext.lastError("zmq_msg_init_data")
        }
        while true {
            if zmq_msg_send(message, handle, more ? ZMQ_SNDMORE : 0) >= 0 { return }
            if zmq_errno() != EINTR {
                let error = ZMQContext.lastError("zmq_msg_send")
                zmq_msg_close(message)  // calls the release function
                throw error
            }
        }
    }

    /// Waits up to `timeoutMilliseconds` for a message; true when one can be read.
    func poll(timeoutMilliseconds: Int) throws -> Bool {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        let rc = zmq_poll(&item, 1, timeoutMilliseconds)
        if rc < 0 {
            if zmq_errno() == EINTR { return false }
            throw ZMQContext.lastError("zmq_poll")
        }
        return rc > 0
    }

    /// Reads every frame of the next message without blocking; nil when none is waiting.
    func receiveMessage() throws -> [ZMQFrame]? {
        var frames: [ZMQFrame] = []
        while true {
            let frame = ZMQFrame()
            if zmq_msg_recv(frame.message, handle, frames.isEmpty ? ZMQ_DONTWAIT : 0) < 0 {
                let code = zmq_errno()
                if frames.isEmpty && code == EAGAIN { return nil }
                if code == EINTR { continue }
                throw ZMQContext.lastError("zmq_msg_recv")
            }
            frames.append(frame)
            if zmq_msg_more(frame.message) == 0 { return frames }
        }
    }

    func close(lingerMilliseconds: Int32) {
        guard let handle else { return }
        var linger = lingerMilliseconds
        zmq_setsockopt(handle, ZMQ_LINGER, &linger, MemoryLayout<Int32>.size)
        zmq_close(handle)
        self.handle = nil
    }

    deinit { close(lingerMilliseconds: 0) }
}
