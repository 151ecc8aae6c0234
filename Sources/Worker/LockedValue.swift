import Foundation

/// A value shared between threads behind a lock.
final class LockedValue<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return stored }
        set { lock.lock(); stored = newValue; lock.unlock() }
    }
    /// Stores `newValue` and returns what was there, in one step (a once-only flag).
    func exchange(_ newValue: T) -> T {
        lock.lock(); defer { lock.unlock() }
        let old = stored
        stored = newValue
        return old
    }
}
