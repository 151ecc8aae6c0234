import CBLAS
import CKernels
import Dispatch
import Foundation

/// Multi-head scaled dot-product self-attention over Q, K, V laid out [token rows, heads, headDim]
/// (the Linear outputs as they are): each head of a sequence is a strided [length, headDim] matrix
/// with leading dimension `hidden`, so one sgemm per (sequence, head) needs no transposition copies.
/// Each sequence attends at its own length (SequencePacking): packed, it has no padding keys at all.
/// Saves the softmax probabilities (before dropout); the dropout mask is regenerated in backward.
/// Two implementations per (sequence, head): `.sgemm` (OpenBLAS calls, softmax and dropout between
/// them) and `.fused` (CKernels' srdpr_attention_forward / _backward: register-tiled products with
/// the query and probability rows broadcast in place, softmax and dropout on blocks of query rows
/// in cache). The encoder runs the fused kernels (inference and training alike, so both give the
/// same bits): `srdpr bench attention` measured them faster at head size 32 and 64, lengths 24 to
/// 256, forward and backward; `.sgemm` stays for the bench and the tests.
enum Attention {
    /// Floats of head scratch one thread needs for sequences up to `longest` (either implementation).
    static func scratchPerThread(longest: Int, headDim: Int) -> Int {
        max(2 * longest * longest, srdpr_attention_scratch(longest, headDim))
    }

    struct Shape {
        var packing: SequencePacking, heads: Int, headDim: Int
        /// Floats from one token row of Q, K, V to the next: `hidden` when each is its own
        /// [tokens, hidden] matrix, 3 × hidden when they are the column blocks of one
        /// [tokens, 3 × hidden] product (QKVProjection). nil = hidden.
        var qkvRowStride: Int? = nil
        var hidden: Int { heads * headDim }
        var qkvStride: Int { qkvRowStride ?? hidden }
        /// Where head `head` of the token row `row` starts in Q, K or V, and in the context (or a gradient).
        func qkvBase(row: Int, head: Int) -> Int { row * qkvStride + head * headDim }
        func hiddenBase(row: Int, head: Int) -> Int { row * hidden + head * headDim }
        /// Where the probabilities of `head` of sequence `row` start in the saved [Σ heads·length²] block.
        func probabilitiesOffset(row: Int, head: Int) -> Int {
            heads * packing.attentionOffsets[row] + head * packing.lengths[row] * packing.lengths[row]
        }
    }

    /// Runs `body(row, head, scratch)` for every (sequence, head) pair, split over threads by their
    /// cost (length²: a batch mixes short and long sequences).
    static func forEachHead(_ s: Shape, scratch: UnsafeMutablePointer<Float>, scratchPerThread: Int,
                            threads: Int, callsBLAS: Bool, _ body: (Int, Int, UnsafeMutablePointer<Float>) -> Void) {
        let pairs = s.packing.rows * s.heads
        let parts = min(threads, pairs)
        if parts <= 1 {
            for pair in 0..<pairs { body(pair / s.heads, pair % s.heads, scratch) }
            return
        }
        // Part t starts at the first pair before which the cost reaches t/parts of the total.
        var starts = [Int](repeating: pairs, count: parts + 1)
        starts[0] = 0
        let total = s.heads * s.packing.attentionPerHead
        var cost = 0, part = 1
        for pair in 0..<pairs {
            while part < parts && cost * parts >= total * part {
                starts[part] = pair
                part += 1
            }
            let length = s.packing.lengths[pair / s.heads]
            cost += length * length
        }
        // Each thread runs single-threaded sgemm calls: nested OpenBLAS threads would oversubscribe.
        let blasThreads = BLASThreads.current
        if callsBLAS { BLASThreads.set(1) }
        DispatchQueue.concurrentPerform(iterations: parts) { t in
            let own = scratch + t * scratchPerThread
            for pair in starts[t]..<starts[t + 1] { body(pair / s.heads, pair % s.heads, own) }
        }
        if callsBLAS { BLASThreads.set(blasThreads) }
    }

    /// `probs` nil (a forward without backward): each head's probabilities live only in its
    /// thread's scratch, so nothing of size heads x Σ length² is kept.
    static func forward(ctx: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>?,
                        q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                        shape s: Shape, dropoutKey: UInt64?, p: Float, rowLabels: RowLabels,
                        scratch: UnsafeMutablePointer<Float>, scratchPerThread: Int, threads: Int,
                        implementation: AttentionImplementation = .preferredForward) {
        let H = s.hidden, hd = s.headDim
        let scale = 1 / Float(hd).squareRoot()
        if dropoutKey != nil { precondition(s.packing.longest <= 4096, "attention dropout keys assume at most 4096 positions") }
        if implementation == .fused {
            s.packing.keyMask.withOptionalPointer { keyMask in
                forEachHead(s, scratch: scratch, scratchPerThread: scratchPerThread, threads: threads, callsBLAS: false) { b, h, scratch in
                    let L = s.packing.lengths[b], offset = s.packing.offsets[b]
                    let base = s.hiddenBase(row: offset, head: h), qkvBase = s.qkvBase(row: offset, head: h)
                    let rowKey = dropoutKey.map { DropoutContext.rowKey($0, row: rowLabels[b]) }
                    srdpr_attention_forward(ctx + base, probs.map { $0 + s.probabilitiesOffset(row: b, head: h) },
                                            q + qkvBase, k + qkvBase, v + qkvBase, L, hd, H, s.qkvStride, scale,
                                            realKeys(keyMask, offset: offset, length: L), rowKey == nil ? 0 : 1,
                                            rowKey ?? 0, p, h, scratch)
                }
            }
            return
        }
        s.packing.keyMask.withOptionalPointer { keyMask in
            forEachHead(s, scratch: scratch, scratchPerThread: scratchPerThread, threads: threads, callsBLAS: true) { b, h, scratch in
                let L = s.packing.lengths[b], offset = s.packing.offsets[b]
                let base = s.hiddenBase(row: offset, head: h), qkvBase = s.qkvBase(row: offset, head: h), ld = Int32(s.qkvStride)
                let P = probs.map { $0 + s.probabilitiesOffset(row: b, head: h) } ?? scratch
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(L), Int32(L), Int32(hd), scale,
                            q + qkvBase, ld, k + qkvBase, ld, 0, P, Int32(L))
                softmaxRows(P, keyMask: keyMask.map { $0 + offset }, length: L)
                var used: UnsafePointer<Float> = UnsafePointer(P)
                if let key = dropoutKey {
                    let dropped = scratch + L * L
                    dropped.update(from: P, count: L * L)
                    dropProbabilities(dropped, length: L, head: h, rowKey: DropoutContext.rowKey(key, row: rowLabels[b]), p: p)
                    used = UnsafePointer(dropped)
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(L), Int32(hd), Int32(L), 1,
                            used, Int32(L), v + qkvBase, ld, 0, ctx + base, Int32(H))
            }
        }
    }

    /// Dropout on one head's [L, L] attention probabilities. Element (i, j) is keyed by (head, i, j)
    /// on a fixed 4096 x 4096 grid, not by its offset in this batch's matrix: a sequence draws the
    /// same masks whatever length its batch is padded to (a rank's shard pads to its own longest),
    /// or packed at its own length.
    static func dropProbabilities(_ x: UnsafeMutablePointer<Float>, length L: Int, head h: Int, rowKey: UInt64, p: Float) {
        precondition(L <= 4096, "attention dropout keys assume at most 4096 positions")
        for i in 0..<L {
            DropoutContext.apply(x + i * L, count: L, rowKey: rowKey, p: p, start: (h * 4096 + i) * 4096)
        }
    }

    /// Softmax over keys with padding keys excluded (HF adds the dtype minimum: they get exactly 0).
    /// A row whose keys are all padding gets uniform weights, as adding a constant everywhere would.
    /// `keyMask` nil: every key is real (a packed sequence).
    @inline(__always) static func softmaxRows(_ P: UnsafeMutablePointer<Float>, keyMask: UnsafePointer<Int32>?, length L: Int) {
        srdpr_softmax_rows(P, L, L, realKeys(keyMask, offset: 0, length: L))
    }

    /// The key mask of the sequence at token row `offset`, or nil when all its keys are real.
    @inline(__always) static func realKeys(_ keyMask: UnsafePointer<Int32>?, offset: Int, length L: Int) -> UnsafePointer<Int32>? {
        guard let mask = keyMask.map({ $0 + offset }) else { return nil }
        for j in 0..<L where mask[j] == 0 { return mask }
        return nil
    }

    /// Writes dQ, dK, dV from dCtx.
    static func backward(dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>,
                         dCtx: UnsafePointer<Float>, probs: UnsafePointer<Float>,
                         q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                         shape s: Shape, dropoutKey: UInt64?, p: Float, rowLabels: RowLabels,
                         scratch: UnsafeMutablePointer<Float>, scratchPerThread: Int, threads: Int,
                         implementation: AttentionImplementation = .preferredBackward) {
        let H = s.hidden, hd = s.headDim
        let scale = 1 / Float(hd).squareRoot()
        if implementation == .fused {
            forEachHead(s, scratch: scratch, scratchPerThread: scratchPerThread, threads: threads, callsBLAS: false) { b, h, scratch in
                let L = s.packing.lengths[b], offset = s.packing.offsets[b]
                let base = s.hiddenBase(row: offset, head: h), qkvBase = s.qkvBase(row: offset, head: h)
                let rowKey = dropoutKey.map { DropoutContext.rowKey($0, row: rowLabels[b]) }
                srdpr_attention_backward(dQ + base, dK + base, dV + base, dCtx + base,
                                         probs + s.probabilitiesOffset(row: b, head: h), q + qkvBase, k + qkvBase, v + qkvBase,
                                         L, hd, H, s.qkvStride, scale, rowKey == nil ? 0 : 1, rowKey ?? 0, p, h, scratch)
            }
            return
        }
        forEachHead(s, scratch: scratch, scratchPerThread: scratchPerThread, threads: threads, callsBLAS: true) { b, h, scratch in
            let L = s.packing.lengths[b], LL = L * L
            let base = s.hiddenBase(row: s.packing.offsets[b], head: h)
            let qkvBase = s.qkvBase(row: s.packing.offsets[b], head: h), ld = Int32(s.qkvStride)
            let P = probs + s.probabilitiesOffset(row: b, head: h)
            let dP = scratch, dropped = scratch + LL
            var used: UnsafePointer<Float> = P
            let rowKey = dropoutKey.map { DropoutContext.rowKey($0, row: rowLabels[b]) }
            if let rowKey {
                dropped.update(from: P, count: LL)
                dropProbabilities(dropped, length: L, head: h, rowKey: rowKey, p: p)
                used = UnsafePointer(dropped)
            }
            // dV = dropped(P)ᵀ · dCtx ; d(dropped P) = dCtx · Vᵀ
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(L), Int32(hd), Int32(L), 1,
                        used, Int32(L), dCtx + base, Int32(H), 0, dV + base, Int32(H))
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(L), Int32(L), Int32(hd), 1,
                        dCtx + base, Int32(H), v + qkvBase, ld, 0, dP, Int32(L))
            if rowKey != nil {
                // The mask is where the dropped probabilities are nonzero; where P itself is 0 the
                // softmax backward below gives 0 anyway, so no second pass over the generator.
                srdpr_dropout_backward_where_kept(dP, dropped, LL, 1 / (1 - p))
            }
            // Softmax backward, with the 1/sqrt(d) of the scores folded in.
            srdpr_softmax_backward_rows(dP, P, L, L, scale)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(L), Int32(hd), Int32(L), 1,
                        dP, Int32(L), k + qkvBase, ld, 0, dQ + base, Int32(H))
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(L), Int32(hd), Int32(L), 1,
                        dP, Int32(L), q + qkvBase, ld, 0, dK + base, Int32(H))
        }
    }
}

/// How Attention runs each (sequence, head): the fused CKernels kernels, or OpenBLAS sgemm calls with
/// the softmax and dropout in between (`srdpr bench attention` times both, and the encoder's mix).
public enum AttentionImplementation: String, CaseIterable, Sendable {
    case fused, sgemm

    /// What the encoder's forward runs (inference and training): the one `srdpr bench attention`
    /// measured faster at MiniLM's and BERT-base's shapes (head size 32 and 64, lengths 24 to 256).
    public static let preferredForward = AttentionImplementation.fused
    /// What the encoder's backward runs: the fused one too, measured faster there (broadcasting the
    /// probabilities and score gradients, transposed or not, where they lie).
    public static let preferredBackward = AttentionImplementation.fused
}

extension Optional where Wrapped == [Int32] {
    /// `body` with a pointer to the array's elements, or nil.
    func withOptionalPointer<R>(_ body: (UnsafePointer<Int32>?) -> R) -> R {
        guard let array = self else { return body(nil) }
        return array.withUnsafeBufferPointer { body($0.baseAddress) }
    }
}
