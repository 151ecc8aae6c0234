import CBLAS
import Data
import Foundation

/// Why a token's numbers could depend on the other sequences of its batch, and what keeps them
/// from it. OpenBLAS's sgemm does not compute every row of C = A·Wᵀ with the same arithmetic: the
/// kernel takes the rows of A in tiles, and a row's rounding depends on its place in its tile and
/// on whether it falls in the last, partial tile (measured with OpenBLAS 0.3.21's Haswell kernels,
/// which serve Zen 3: a period of 12 rows; shifting a row by 1 to 11 places changes the last bits
/// of up to half the rows, shifting by 12 changes none). In a packed batch a token's row is the sum
/// of the lengths before its sequence, so its embedding changed with the batch around it by a few
/// ulps. Rows that start at a multiple of the period, in calls whose row count is a multiple of it,
/// get the same bits wherever they are, whatever the call's size. No forward product runs on sgemm
/// any more (the Linear layers' kernel, srdpr_gemm_rows, and the fused attention give a row the same
/// bits at any place), so the packing no longer aligns sequences to the period; the backward's
/// sgemm calls sum gradients, whose bits depend on the batch's rows anyway (fp32 summation order).
public enum SgemmRowTiling {
    /// The smallest row shift that leaves sgemm's rows bit-identical on the kernels this process
    /// runs (probed once), or 1 when none up to 48 does (then batches may change the last bits).
    public static let period: Int = probe()

    static func probe() -> Int {
        let inner = 96, outer = 24, rows = 144  // 96 and 144 are multiples of every candidate
        var random = SplitMix64(seed: 0x51AB)
        let a = (0..<(rows * inner)).map { _ in Float(Int(random.next() % 2001) - 1000) / 997 }
        let w = (0..<(outer * inner)).map { _ in Float(Int(random.next() % 2001) - 1000) / 1013 }
        func product(firstRow: Int, count: Int) -> [Float] {
            var out = [Float](repeating: 0, count: count * outer)
            a.withUnsafeBufferPointer { a in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(outer), Int32(inner), 1,
                            a.baseAddress! + firstRow * inner, Int32(inner), w, Int32(inner), 0, &out, Int32(outer))
            }
            return out
        }
        let threads = BLASThreads.current
        BLASThreads.set(1)
        defer { BLASThreads.set(threads) }
        let whole = product(firstRow: 0, count: rows)
        for shift in [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48] {
            let part = product(firstRow: shift, count: 96)
            if part == Array(whole[(shift * outer)..<((shift + 96) * outer)]) { return shift }
        }
        return 1
    }
}
