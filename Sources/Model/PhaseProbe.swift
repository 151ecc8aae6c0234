import Dispatch
import Foundation

// TEMPORARY instrumentation (not to be committed).
public enum PhaseProbe {
    nonisolated(unsafe) static var wall: [String: Double] = [:]
    nonisolated(unsafe) static var busy: [String: Double] = [:]
    static let lock = NSLock()
    public static var enabled = ProcessInfo.processInfo.environment["SRDPR_PHASES"] != nil
    public static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
    public static func add(_ name: String, wall w: Double, busy b: Double = 0) {
        guard enabled else { return }
        lock.lock(); wall[name, default: 0] += w; busy[name, default: 0] += b; lock.unlock()
    }
    @discardableResult
    public static func time<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let t0 = now(); defer { add(name, wall: Double(now() - t0) / 1e9) }
        return try body()
    }
    public static func dump(_ step: Int) {
        guard enabled else { return }
        lock.lock()
        let total = wall.values.reduce(0, +)
        var s = "[phases] step \(step) sum=\(String(format: "%.3f", total))"
        for k in wall.keys.sorted() { s += " \(k)=\(String(format: "%.4f", wall[k]!))" + (busy[k]! > 0 ? "/busy\(String(format: "%.4f", busy[k]!))" : "") }
        wall = [:]; busy = [:]
        lock.unlock()
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }
}
