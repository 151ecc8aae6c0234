#if canImport(Glibc)
import Glibc
#endif

/// The target chosen by SRDPR_FUZZ_TARGET, found once before the first input.
nonisolated(unsafe) private var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let name = getenv("SRDPR_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let target = fuzzTargets.first(where: { $0.name == name }) else {
        var message = "SRDPR_FUZZ_TARGET=\(name.isEmpty ? "(unset)" : name) is not a target; known targets:\n"
        for t in fuzzTargets { message += "  \(t.name)\t\(t.summary)\n" }
        fputs(message, stderr)
        exit(2)
    }
    selected = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    selected?.run(UnsafeBufferPointer(start: count == 0 ? nil : data, count: count))
    return 0
}
