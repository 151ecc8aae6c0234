/// Where each sequence of a batch lies in the encoder's flat token rows [tokens, hidden].
///
/// Packed (the default): the real tokens of every sequence one after the other, so the Linear
/// layers, LayerNorm, GELU, dropout and residual adds run over about Σ lengths rows and attention
/// runs per sequence at its own length. The sequences follow each other with no rows between
/// them: every forward product computes a row the same wherever it sits (the Linear layers' own
/// GEMM, one FMA chain per output; attention per sequence), so a token's numbers do not depend on
/// the other sequences of its batch without aligning them to OpenBLAS's row period (as they were
/// until the Linear forward left OpenBLAS: up to 11 wasted rows a sequence, 3-5% of the FAQ
/// passages' rows). Padded: every sequence at the
/// batch's padded length with its padding keys masked in attention — the computation before
/// packing, kept for batches packing cannot represent and to test that packing changes nothing.
/// A token's position (position embedding, dropout element index) is its index in its sequence
/// in both layouts, so both draw the same dropout masks.
struct SequencePacking {
    let rows: Int
    /// First token row of each sequence, and how many token rows it has.
    let offsets: [Int]
    let lengths: [Int]
    /// Token rows in all: Σ lengths (packed) or rows × padded length.
    let tokens: Int
    let longest: Int
    /// Padded layout only: the attention mask by token row (0 = padding key); nil = every token is real.
    let keyMask: [Int32]?
    /// Input ids by token row.
    let inputIds: [Int32]
    /// Σ over earlier sequences of length²: where a sequence's attention scores start (per head).
    let attentionOffsets: [Int]
    /// Σ lengths²: attention scores of one head over the whole batch.
    let attentionPerHead: Int

    private init(offsets: [Int], lengths: [Int], tokens: Int, keyMask: [Int32]?, inputIds: [Int32]) {
        rows = lengths.count
        self.offsets = offsets
        self.lengths = lengths
        self.tokens = tokens
        longest = lengths.max() ?? 0
        self.keyMask = keyMask
        self.inputIds = inputIds
        var attentionOffsets = [Int](), sum = 0
        attentionOffsets.reserveCapacity(lengths.count)
        for length in lengths {
            attentionOffsets.append(sum)
            sum += length * length
        }
        self.attentionOffsets = attentionOffsets
        attentionPerHead = sum
    }

    /// Every row at `batch.seqLen`, padding included.
    static func padded(_ batch: TokenBatch) -> SequencePacking {
        let T = batch.seqLen
        return SequencePacking(offsets: (0..<batch.rows).map { $0 * T }, lengths: [Int](repeating: T, count: batch.rows),
                               tokens: batch.rows * T, keyMask: batch.attentionMask, inputIds: batch.inputIds)
    }

    /// The real tokens only, or nil when a row's mask is not 1s then 0s with at least one 1 (left
    /// padding, holes, an empty row): the padded layout keeps those exact.
    static func packed(_ batch: TokenBatch) -> SequencePacking? {
        let T = batch.seqLen
        var lengths = [Int](), offsets = [Int]()
        lengths.reserveCapacity(batch.rows)
        offsets.reserveCapacity(batch.rows)
        var tokens = 0
        for r in 0..<batch.rows {
            let row = batch.attentionMask[(r * T)..<((r + 1) * T)]
            let length = row.firstIndex(of: 0).map { $0 - r * T } ?? T
            guard length > 0, !row[(r * T + length)...].contains(where: { $0 != 0 }) else { return nil }
            offsets.append(tokens)
            lengths.append(length)
            tokens += length
        }
        var ids = [Int32](repeating: 0, count: tokens)
        for r in 0..<batch.rows {
            for t in 0..<lengths[r] { ids[offsets[r] + t] = batch.inputIds[r * T + t] }
        }
        return SequencePacking(offsets: offsets, lengths: lengths, tokens: tokens, keyMask: nil, inputIds: ids)
    }

    /// Whether token row `n` of a sequence is a real token (always, when packed).
    @inline(__always) func isReal(_ n: Int) -> Bool { keyMask.map { $0[n] != 0 } ?? true }
}
