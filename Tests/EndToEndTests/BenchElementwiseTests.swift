import Foundation
import TestSupport
import XCTest

/// `srdpr bench elementwise` on tiny buffers: one JSON line with every kernel's ns per element at
/// each size (positive, finite), the build it ran, and clear errors for bad options.
final class BenchElementwiseTests: XCTestCase {
    func testReportsEveryKernelAtEverySize() throws {
        for baseline in [false, true] {
            let r = try Command.srdpr(["bench", "elementwise", "--sizes", "1000,4099", "--softmax-length", "128",
                                       "--repeats", "1", "--elements-per-sample", "20000"] + (baseline ? ["--baseline"] : []))
            XCTAssertEqual(r.status, 0, r.stderr)
            let line = try XCTUnwrap(r.stdout.split(separator: "\n").last, "no JSON line: \(r.stdout)")
            let out = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            if baseline { XCTAssertEqual(out["build"] as? String, "baseline") }
            XCTAssertEqual(out["time"] as? String, "thread CPU time")
            let sizes = try XCTUnwrap(out["sizes"] as? [[String: Any]])
            XCTAssertEqual(sizes.map { $0["floats"] as? Int }, [1000, 4099])
            XCTAssertEqual(sizes.map { $0["softmax_length"] as? Int }, [128, 128])
            for size in sizes {
                for kernel in ["copy", "add", "gelu_forward", "gelu_forward_derivative", "gelu_backward", "erf"] {
                    let value = try XCTUnwrap(size[kernel + "_ns_per_element"] as? Double, "\(kernel) missing: \(size)")
                    XCTAssertTrue(value > 0 && value.isFinite, "\(kernel): \(value)")
                }
                // Softmax is reported net of the copy that restores its input, so only finite is certain.
                for kernel in ["softmax_rows", "softmax_rows_masked"] {
                    let value = try XCTUnwrap(size[kernel + "_ns_per_element"] as? Double, "\(kernel) missing: \(size)")
                    XCTAssertTrue(value.isFinite, "\(kernel): \(value)")
                }
            }
        }
    }

    func testRefusesBadOptionsByName() throws {
        for (arguments, name) in [(["--sizes", "0"], "--sizes"), (["--sizes", "8,x"], "--sizes"), (["--repeats", "0"], "--repeats"),
                                  (["--softmax-length", "0"], "--softmax-length")] {
            let r = try Command.srdpr(["bench", "elementwise"] + arguments)
            XCTAssertNotEqual(r.status, 0, "\(arguments) accepted")
            XCTAssertTrue(r.stderr.contains(name), "\(arguments): \(r.stderr)")
        }
    }
}
