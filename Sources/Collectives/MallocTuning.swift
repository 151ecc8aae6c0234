import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// libzmq mallocs a buffer for every received message (half a megabyte per all-reduce chunk)
/// and we free it right after reducing it. With glibc's defaults those buffers come from and go
/// back to the kernel all the time (mmap for large blocks, heap trimming of the I/O thread's
/// arena), so most received bytes land in freshly faulted, zeroed pages. Raising the mmap and
/// trim thresholds lets the same memory be reused: on this machine it cut the page faults of a
/// 64 MB all-reduce benchmark from ~250k to ~50k and the system time by a third.
/// Large allocations (over 4 MB: parameters, activations) are still mmapped. Applied once per
/// process, only where glibc's `mallopt` exists.
enum MallocTuning {
    static let applyOnce: Void = {
        #if canImport(Glibc)
        typealias MalloptFunction = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }  // RTLD_DEFAULT
        let mallopt = unsafeBitCast(symbol, to: MalloptFunction.self)
        let mmapThreshold: Int32 = -3, trimThreshold: Int32 = -1  // M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
        _ = mallopt(mmapThreshold, 4 << 20)
        _ = mallopt(trimThreshold, 1 << 30)
        #endif
    }()
}
