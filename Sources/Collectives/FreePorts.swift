import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// TCP ports that were free a moment ago (bound to port 0, then released), for
/// benchmarks and local launches that start a ring on one machine.
public enum FreePorts {
    public static func loopback(_ count: Int) -> [Int] { on(host: "127.0.0.1", count) }

    /// The IPv4 address of `host` (a dotted address is returned as it is, a name is resolved), nil if none.
    public static func ipv4Address(_ host: String) -> String? {
        if inet_addr(host) != INADDR_NONE { return host }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        guard let raw = first.pointee.ai_addr else { return nil }
        var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { return nil }
        return String(cString: text)
    }

    /// `count` ports free on the IPv4 address `host` (e.g. a worker's ring address).
    /// This host's IPv4 address on the route to `host` (an address or a name): the one the kernel
    /// would send from. A UDP socket is connected, which sends nothing. nil when there is no route.
    public static func routeAddress(toward host: String) -> String? {
        guard let target = ipv4Address(host) else { return nil }
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = in_port_t(UInt16(9).bigEndian)
        remote.sin_addr.s_addr = inet_addr(target)
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { return nil }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) == 0 }
        }
        guard named else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &local.sin_addr, &text, socklen_t(text.count)) != nil else { return nil }
        return String(cString: text)
    }

    public static func on(host: String, _ count: Int) -> [Int] {
        var sockets: [Int32] = []
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr(host)
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
                }
            }
            if ok { ports.append(Int(UInt16(bigEndian: address.sin_port))) }
            sockets.append(fd)  // kept open until all are chosen, so they differ
        }
        sockets.forEach { close($0) }
        return ports
    }
}
