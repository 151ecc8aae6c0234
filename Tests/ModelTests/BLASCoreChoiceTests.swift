import XCTest
import CKernels
import Model
import TestSupport

/// OpenBLAS's kernel family: replaced only when OpenBLAS fell back to a family without AVX2 on a CPU
/// that has it (Debian 12's 0.3.21 runs "Prescott" on family 6 model 207 Xeons), never when the user chose.
final class BLASCoreChoiceTests: XCTestCase {
    func testOnlyAFamilyWithoutAVX2OnACPUWithAVX2IsReplaced() {
        XCTAssertEqual(BLASCoreChoice.replacement(for: "Prescott", avx512: true, avx2: true), "SkylakeX")
        XCTAssertEqual(BLASCoreChoice.replacement(for: "PRESCOTT", avx512: false, avx2: true), "Haswell")
        XCTAssertEqual(BLASCoreChoice.replacement(for: "Sandybridge", avx512: false, avx2: true), "Haswell")
        XCTAssertEqual(BLASCoreChoice.replacement(for: "Nehalem", avx512: true, avx2: true), "SkylakeX")
        XCTAssertNil(BLASCoreChoice.replacement(for: "Prescott", avx512: false, avx2: false), "an old CPU keeps the fallback")
        for known in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] {
            XCTAssertNil(BLASCoreChoice.replacement(for: known, avx512: true, avx2: true), known)
        }
    }

    /// The executable, started without OPENBLAS_CORETYPE, never runs a family without AVX2 on this
    /// CPU when the CPU has AVX2; a family the user sets is kept as set.
    func testTheExecutableRunsAnAVX2FamilyAndKeepsTheUsersChoice() throws {
        let own = try Command.srdpr(["bench", "blas-core"], unsetting: ["OPENBLAS_CORETYPE", BLASCoreChoice.replacedVariable])
        XCTAssertEqual(own.status, 0, own.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(own.stdout.utf8)) as? [String: Any])
        let core = try XCTUnwrap(report["openblas_core"] as? String)
        if srdpr_cpu_has_avx2_fma() != 0 {
            XCTAssertNil(BLASCoreChoice.replacement(for: core, avx512: srdpr_cpu_has_avx512_skylake() != 0, avx2: true),
                         "srdpr runs OpenBLAS's \(core) kernels on a CPU with AVX2: \(own.stdout)")
        }
        print("BLASCoreChoiceTests: this CPU runs OpenBLAS's \(core) kernels, chosen by \(report["chosen_by"] ?? "?")")

        let chosen = try Command.srdpr(["bench", "blas-core"], environment: ["OPENBLAS_CORETYPE": "Nehalem"],
                                       unsetting: [BLASCoreChoice.replacedVariable])
        XCTAssertEqual(chosen.status, 0, chosen.stderr)
        let kept = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(chosen.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(kept["openblas_core"] as? String, "Nehalem")
        XCTAssertEqual(kept["chosen_by"] as? String, "OPENBLAS_CORETYPE")
    }
}
