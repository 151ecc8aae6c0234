import CBLAS
import CKernels
import Dispatch
import Foundation

/// Multi-head scaled dot-product self-attention over Q, K, V laid out [rows, seqLen, heads, headDim]
/// (the Linear outputs as they are): each head is a strided [seqLen, headDim] matrix with leading
/// dimension `hidden`, so one sgemm per (row, head) needs no transposition copies.
/// Saves the softmax probabilities (before dropout); the dropout mask is regenerated in backward.
enum Attention {
    struct Shape {
        var rows: Int, seqLen: Int, heads: Int, headDim: Int
        var hidden: Int { heads * headDim }
        var tt: Int { seqLen * seqLen }
    }

    /// Runs `body(pair, scratch)` for every (row, head) pair, split over threads.
    static func forEachHead(_ s: Shape, scratch: UnsafeMutablePointer<Float>, scratchPerThread: Int,
                            threads: Int, _ body: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let pairs = s.rows * s.heads
        let parts = min(threads, pairs)
        if parts <= 1 {
            for pair in 0..<pairs { body(pair, scratch) }
            return
        }
        // Each thread runs single-threaded sgemm calls: nested OpenBLAS threads would oversubscribe.
        let blasThreads = BLASThreads.current
        BLASThreads.set(1)
        DispatchQueue.concurrentPerform(iterations: parts) { t in
            let own = scratch + t * scratchPerThread
            for pair in (pairs * t / parts)..<(pairs * (t + 1) / parts) { body(pair, own) }
        }
        BLASThreads.set(blasThreads)
    }

    /// `probs` nil (a forward without backward): each head's probabilities live only in its
    /// thread's scratch, so nothing of size rows x heads x seqLen² is kept.
    static func forward(ctx: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?,
                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        mask: UnsafePointer<Int32>, shape s: Shape, dropoutKey: UInt64?, p: Float, rowLabels: RowLabels,
                        scratch: UnsafeMutablePointer<Float>, scratchPerThread: Int, threads: Int) {
        let T = s.seqLen, H = s.hidden, hd = s.headDim
        let scale = 1 / Float(hd).squareRoot()
        forEachHead(s, scratch: scratch, scratchPerThread: scratchPerThread, threads: threads) { pair, scratch in
            let b = pair / s.heads, h = pair % s.heads
            let base = b * T * H + h * hd
            let P = probs.map { $0 + pair * s.tt } ?? scratch
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(hd), scale,
                        q + base, Int32(H), k + base, Int32(H), 0, P, Int32(T))
            softmaxRows(P, mask: mask + b * T, seqLen: T)
            var used: UnsafePointer<Float> = UnsafePointer(P)
            if let key = dropoutKey {
                let dropped = scratch + s.tt
                dropped.update(from: P, count: s.tt)
                dropProbabilities(dropped, seqLen: T, head: h, rowKey: DropoutContext.rowKey(key, row: rowLabels[b]), p: p)
                used = UnsafePointer(dropped)
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(hd), Int32(T), 1,
                        used, Int32(T), v + base, Int32(H), 0, ctx + base, Int32(H))
        }
    }

    /// Dropout on one head's [T, T] attention probabilities. Element (i, j) is keyed by (head, i, j)
    /// on a fixed 4096 x 4096 grid, not by its offset in this batch's matrix: a sequence draws the
    /// same masks whatever length its batch is padded to (a rank's shard pads to its own longest).
    static func dropProbabilities(_ x: UnsafeMutablePointer<Float>, seqLen T: Int, head h: Int, rowKey: UInt64, p: Float) {
        precondition(T <= 4096, "attention dropout keys assume at most 4096 positions")
        for i in 0..<T {
            DropoutContext.apply(x + i * T, count: T, rowKey: rowKey, p: p, start: (h * 4096 + i) * 4096)
        }
    }

    /// Softmax over keys with padding keys excluded (HF adds the dtype minimum: they get exactly 0).
    /// A row whose keys are all padding gets uniform weights, as adding a constant everywhere would.
    @inline(__always) static func softmaxRows(_ P: UnsafeMutablePointer<Float>, mask: UnsafePointer<Int32>, seqLen T: Int) {
        var allKeys = true
        for j in 0..<T where mask[j] == 0 { allKeys = false; break }
        srdpr_softmax_rows(P, T, T, allKeys ? nil : mask)
    }

    /// Writes dQ, dK, dV from dCtx.
    static func backward(dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>,
                         dCtx: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         shape s: Shape, dropoutKey: UInt64?, p: Float, rowLabels: RowLabels,
                         scratch: UnsafeMutablePointer<Float>, scratchPerThread: Int, threads: Int) {
        let T = s.seqLen, H = s.hidden, hd = s.headDim
        let scale = 1 / Float(hd).squareRoot()
        forEachHead(s, scratch: scratch, scratchPerThread: scratchPerThread, threads: threads) { pair, scratch in
            let b = pair / s.heads, h = pair % s.heads
            let base = b * T * H + h * hd
            let P = probs + pair * s.tt
            let dP = scratch, dropped = scratch + s.tt
            var used: UnsafePointer<Float> = P
            let rowKey = dropoutKey.map { DropoutContext.rowKey($0, row: rowLabels[b]) }
            if let rowKey {
                dropped.update(from: P, count: s.tt)
                dropProbabilities(dropped, seqLen: T, head: h, rowKey: rowKey, p: p)
                used = UnsafePointer(dropped)
            }
            // dV = dropped(P)ᵀ · dCtx ; d(dropped P) = dCtx · Vᵀ
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(hd), Int32(T), 1,
                        used, Int32(T), dCtx + base, Int32(H), 0, dV + base, Int32(H))
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(T), Int32(hd), 1,
                        dCtx + base, Int32(H), v + base, Int32(H), 0, dP, Int32(T))
            if rowKey != nil {
                // The mask is where the dropped probabilities are nonzero; where P itself is 0 the
                // softmax backward below gives 0 anyway, so no second pass over the generator.
                srdpr_dropout_backward_where_kept(dP, dropped, s.tt, 1 / (1 - p))
            }
            // Softmax backward, with the 1/sqrt(d) of the scores folded in.
            srdpr_softmax_backward_rows(dP, P, T, T, scale)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(hd), Int32(T), 1,
                        dP, Int32(T), k + base, Int32(H), 0, dQ + base, Int32(H))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(T), Int32(hd), Int32(T), 1,
                        dP, Int32(T), q + base, Int32(H), 0, dK + base, Int32(H))
        }
    }
}
