import CKernels
import Dispatch
import Foundation

/// Training on several cores inside one process: a side's rows (or each grad-cache chunk's rows)
/// are dealt into one group per thread (balanced by cost, `groups`), and thread t runs forward AND
/// backward of its group on its own replica of the encoder (the same parameter buffer, activations
/// of its own, its own gradient buffer; thread 0 writes into the model's), with one-thread sgemm
/// and one-thread elementwise loops. After backward the other threads' gradients are added into the model's in a
/// fixed order, so a given thread count gives the same bytes run after run.
///
/// Why (as BatchParallelInference for inference): one step over the whole batch on 2-thread sgemm
/// left ~10% of the CPU to the scheduler (OpenBLAS's threads spinning between small calls, the
/// per-head attention dispatch handing over). A row's forward does not depend on the other rows
/// of its call (srdpr_gemm_rows, the fused attention; SequencePacking), so the embeddings and the loss are the bytes of
/// one thread; the parameter gradients are sums over rows, which differ only by fp32 summation
/// order. Costs one gradient buffer (the whole model) per thread after the first.
final class RowParallelTraining {
    private let parameters: FloatBuffer
    private let gradients: FloatBuffer
    /// Replicas by side (`BiEncoder.Side.rawValue`) then thread.
    private var replicas: [[BertEncoder]] = [[], []]
    /// Gradients of threads 1, 2, …: each the layout of the model's buffer, zero outside a backward
    /// (`finishBackward` zeroes what it adds, in the same pass).
    private var threadGradients: [FloatBuffer] = []
    /// By side, the thread buffers (1, 2, …) a backward of the side wrote into and that no
    /// `finishBackward` has added and zeroed since: only after a backward that threw.
    private var dirty: [Set<Int>] = [[], []]
    /// By side, the token ids of each group of the kept forward (`forward` with `keep`).
    private var keptTokenIds: [[Set<Int32>]] = [[], []]
    /// By side, the word-embedding rows the side's backward under way may have written in any
    /// thread buffer: the only rows of that table `finishBackward` adds (the others are zero there).
    private var touchedWords: [Set<Int32>] = [[], []]
    /// The groups whose activations each side's replicas keep (nil: none, the side's last forward
    /// ran on the model's own encoder).
    private var kept: [[[Int]]?] = [nil, nil]
    /// The threads (1, 2, …) whose buffers hold gradients of the side's backward under way.
    private var used: [[Int]] = [[], []]

    init(parameters: FloatBuffer, gradients: FloatBuffer) {
        self.parameters = parameters
        self.gradients = gradients
    }

    /// The bytes held besides the model's: the extra gradient buffers.
    var extraGradientBytes: Int { threadGradients.reduce(0) { $0 + $1.count * 4 } }

    /// One non-empty group of rows per thread (at most one per row), each in ascending row order,
    /// balanced by what the rows cost so that the threads finish together. Empty when the rows should
    /// not be split: one thread, or a single row (it keeps the whole step's threads on the old path).
    ///
    /// A row costs its packed token rows (SequencePacking aligns each sequence to sgemm's row period)
    /// in the Linear layers, plus its length² in attention (`attentionCostPerPair`). The rows are
    /// dealt longest first, each to the thread with the least cost so far: the threads then differ
    /// by at most about the cheapest row, where contiguous groups could differ by up to a whole
    /// row (a 128-token passage is ~6% of a thread's share of 32 passages).
    static func groups(_ batch: TokenBatch, threads: Int, config: BertConfig) -> [[Int]] {
        let count = min(threads, batch.rows)
        guard count >= 2 else { return [] }
        let pairCost = attentionCostPerPair(config)
        let costs = (0..<batch.rows).map { r -> Double in
            let row = batch.attentionMask[(r * batch.seqLen)..<((r + 1) * batch.seqLen)]
            let length = max(row.reduce(0) { $0 + ($1 != 0 ? 1 : 0) }, 1)
            return Double(length) + pairCost * Double(length * length)
        }
        // Costliest first; equal costs by row, so the split is a function of the batch alone.
        let order = costs.indices.sorted { costs[$0] != costs[$1] ? costs[$0] > costs[$1] : $0 < $1 }
        var groups = [[Int]](repeating: [], count: count), load = [Double](repeating: 0, count: count)
        for row in order {
            let t = load.indices.min { load[$0] != load[$1] ? load[$0] < load[$1] : $0 < $1 }!
            groups[t].append(row)
            load[t] += costs[row]
        }
        return groups.map { $0.sorted() }
    }

    /// The cost of one (query, key) pair of attention, in units of one token row through the Linear
    /// layers: attention multiplies 2 × hidden per pair (scores and the weighted sum) where the
    /// Linear layers multiply 4 hidden² + 2 hidden × intermediate per token; counted twice, as its
    /// small per-sequence products and softmax run slower than the large sgemms (a least-squares fit
    /// of the forward threads' CPU time on the FAQ batches, MiniLM, max_length 128, gave 1.8 times
    /// the multiply ratio; a rough figure, measured on a loaded machine).
    static func attentionCostPerPair(_ c: BertConfig) -> Double {
        let H = Double(c.hiddenSize), I = Double(c.intermediateSize)
        return 2 * (2 * H) / (4 * H * H + 2 * H * I)
    }

    /// `count` replicas of `base` (its side), made once; their settings follow the base's.
    private func encoders(of base: BertEncoder, side: Int, count: Int) -> [BertEncoder] {
        let trainable = gradients.count == parameters.count
        while trainable && threadGradients.count < count - 1 {
            // Written whole once now, though calloc made it zero: else its word-embedding rows are
            // first touched by backwards, mid-step, as new tokens come (hundreds of pages a step in
            // the FAQ run's first steps), each page faulted twice (`+=` reads it, mapping the shared
            // zero page, then the write replaces that with a TLB shootdown across the threads).
            let buffer = FloatBuffer(count: gradients.count)
            buffer.zero(threads: Parallel.threads)
            threadGradients.append(buffer)
        }
        let parallelThreads = Parallel.threads
        while replicas[side].count < count {
            let t = replicas[side].count
            let buffer = !trainable ? FloatBuffer(count: 0) : t == 0 ? gradients : threadGradients[t - 1]
            let replica = BertEncoder(config: base.config, layout: base.layout, parameters: parameters, gradients: buffer)
            replica.threads = 1  // (sets Parallel.threads: restored below)
            replicas[side].append(replica)
        }
        Parallel.threads = parallelThreads
        for replica in replicas[side].prefix(count) {
            replica.pooling = base.pooling
            replica.packsSequences = base.packsSequences
            replica.prunesLastLayer = base.prunesLastLayer
            replica.hiddenDropout = base.hiddenDropout
            replica.attentionDropout = base.attentionDropout
            replica.writtenWordRows = base.writtenWordRows
        }
        return Array(replicas[side].prefix(count))
    }

    /// Runs `body(t, replica t)` for every group on its own thread, with one-thread sgemm and
    /// elementwise loops inside; the first error thrown is rethrown after all threads return.
    private func run(_ groups: [[Int]], base: BertEncoder, side: Int,
                     _ body: (Int, BertEncoder) throws -> Void) throws {
        let workers = encoders(of: base, side: side, count: groups.count)
        let lock = NSLock()
        var failure: Error?
        Parallel.withOneThreadKernels {
            DispatchQueue.concurrentPerform(iterations: groups.count) { t in
                do {
                    try body(t, workers[t])
                } catch {
                    lock.lock()
                    if failure == nil { failure = error }
                    lock.unlock()
                }
            }
        }
        if let failure { throw failure }
    }

    /// Forward of `batch` in `groups` (from `groups(_:threads:config:)`), the embeddings in row order.
    /// With `keep` the replicas keep their activations for `backward`.
    func forward(_ side: BiEncoder.Side, base: BertEncoder, _ batch: TokenBatch, groups: [[Int]],
                 dropout: DropoutContext?, labels: RowLabels, keep: Bool) throws -> [Float] {
        let s = side.rawValue
        kept[s] = nil
        let d = base.outputDim
        var embeddings = [Float](repeating: 0, count: batch.rows * d)
        let lock = NSLock()
        try run(groups, base: base, side: s) { t, encoder in
            let part = try encoder.forward(batch.rows(groups[t]), dropout: dropout, labels: labels.rows(groups[t]),
                                           keepActivations: keep)
            lock.lock()
            Self.scatter(part, into: &embeddings, rows: groups[t], width: d)
            lock.unlock()
        }
        if keep {
            kept[s] = groups
            keptTokenIds[s] = groups.map { Set($0.flatMap { batch.inputIds[($0 * batch.seqLen)..<(($0 + 1) * batch.seqLen)] }) }
        }
        return embeddings
    }

    /// Row k of `part` [rows.count, width] becomes row rows[k] of `all`.
    static func scatter(_ part: [Float], into all: inout [Float], rows: [Int], width: Int) {
        for (k, row) in rows.enumerated() { all[(row * width)..<((row + 1) * width)] = part[(k * width)..<((k + 1) * width)] }
    }

    /// Rows `rows` of `all` [_, width] (starting at element `all.startIndex`), in that order.
    static func gather(_ all: ArraySlice<Float>, rows: [Int], width: Int) -> [Float] {
        var part = [Float]()
        part.reserveCapacity(rows.count * width)
        for row in rows { part += all[(all.startIndex + row * width)..<(all.startIndex + (row + 1) * width)] }
        return part
    }

    /// Whether the side's last forward ran here and kept its activations for `rows` rows.
    func keepsActivations(_ side: BiEncoder.Side, rows: Int) -> Bool {
        kept[side.rawValue].map { $0.reduce(0) { $0 + $1.count } == rows } ?? false
    }

    /// Forgets the side's kept forward (its next forward runs on the model's encoder).
    func dropKept(_ side: BiEncoder.Side) { kept[side.rawValue] = nil }

    /// Starts a side's backward: no thread buffer holds any of its gradients yet.
    func beginBackward(_ side: BiEncoder.Side) { used[side.rawValue] = [] }

    /// Backward of the side's kept forward: each replica back-propagates its rows of `dEmbeddings`.
    /// The gradients are in the model's buffer only after `finishBackward`.
    func backward(_ side: BiEncoder.Side, base: BertEncoder, dEmbeddings: [Float]) throws {
        guard let groups = kept[side.rawValue] else {
            throw ModelError.invalidInput("backward needs a forward with keepActivations first")
        }
        kept[side.rawValue] = nil
        for ids in keptTokenIds[side.rawValue].dropFirst() { touchedWords[side.rawValue].formUnion(ids) }
        let d = base.outputDim
        try runBackward(side, base: base, groups: groups) { t, encoder in
            try encoder.backward(Self.gather(dEmbeddings[...], rows: groups[t], width: d))
        }
    }

    /// Grad cache's step for one chunk: each replica re-encodes its rows of `chunk` (the same dropout
    /// masks) and back-propagates its rows of `dEmbeddings`, one thread each.
    func forwardBackward(_ side: BiEncoder.Side, base: BertEncoder, _ chunk: TokenBatch, groups: [[Int]],
                         dropout: DropoutContext?, labels: RowLabels, dEmbeddings: ArraySlice<Float>) throws {
        kept[side.rawValue] = nil
        for rows in groups.dropFirst() {
            for row in rows { touchedWords[side.rawValue].formUnion(chunk.inputIds[(row * chunk.seqLen)..<((row + 1) * chunk.seqLen)]) }
        }
        let d = base.outputDim
        try runBackward(side, base: base, groups: groups) { t, encoder in
            let rows = groups[t]
            _ = try encoder.forward(chunk.rows(rows), dropout: dropout, labels: labels.rows(rows), keepActivations: true)
            try encoder.backward(Self.gather(dEmbeddings, rows: rows, width: d))
        }
    }

    /// `run` for a backward. The thread buffers are zero between backwards (`finishBackward` zeroes
    /// them as it adds them), so nothing is cleared here — except the side's range of a buffer that
    /// a backward which threw left written, which its own thread zeroes first.
    private func runBackward(_ side: BiEncoder.Side, base: BertEncoder, groups: [[Int]],
                             _ body: (Int, BertEncoder) throws -> Void) throws {
        guard gradients.count == parameters.count else {
            throw ModelError.invalidInput("this encoder was loaded for inference (no gradient buffer): it has no backward")
        }
        let s = side.rawValue, range = base.layout.range
        _ = encoders(of: base, side: s, count: groups.count)
        let fresh = (1..<max(1, groups.count)).filter { !used[s].contains($0) }
        let stale = Set(fresh).intersection(dirty[s])
        used[s] += fresh
        dirty[s].formUnion(fresh)
        let buffers = threadGradients
        try run(groups, base: base, side: s) { t, encoder in
            if stale.contains(t) { (buffers[t - 1].pointer + range.lowerBound).update(repeating: 0, count: range.count) }
            try body(t, encoder)
        }
    }

    /// Adds the thread buffers' gradients of the side into the model's: gradient[i] += thread 1's,
    /// then thread 2's, … — a fixed order for every element, whichever thread sums which elements —
    /// and zeroes the thread buffers' elements in the same pass, block by block while they are in cache.
    /// Of the word-embedding table (half of a small BERT's parameters) only the rows of the tokens the
    /// threads saw are added: the other rows are zero in every thread buffer, and adding zero changes
    /// no value (at most the sign of a zero, which neither the norm nor AdamW can see).
    func finishBackward(_ side: BiEncoder.Side, base: BertEncoder, threads: Int) {
        let s = side.rawValue
        let sources = used[s].sorted().map { threadGradients[$0 - 1] }
        dirty[s].subtract(used[s])
        used[s] = []
        let words = touchedWords[s]
        touchedWords[s] = []
        guard !sources.isEmpty else { return }
        let spans = Self.spans(base.layout, hidden: base.config.hiddenSize, words: words)
        let total = spans.reduce(0) { $0 + $1.count }, target = gradients.pointer
        let blocks = max(1, min(threads, total / 65_536))
        DispatchQueue.concurrentPerform(iterations: blocks) { b in
            for share in ElementSpans.share(of: spans, part: b, of: blocks) {
                for start in stride(from: share.lowerBound, to: share.upperBound, by: Self.cacheBlock) {
                    let count = min(Self.cacheBlock, share.upperBound - start)
                    for source in sources {
                        srdpr_add(target + start, target + start, source.pointer + start, count)
                        (source.pointer + start).update(repeating: 0, count: count)
                    }
                }
            }
        }
    }

    /// The element ranges of `layout` that `finishBackward` sums: all of it but the word-embedding
    /// table, of which the rows of `words` only (ascending, adjacent rows merged).
    static func spans(_ layout: BertLayout, hidden width: Int, words: Set<Int32>) -> [Range<Int>] {
        let range = layout.range, table = layout.wordEmbeddingRange
        var spans: [Range<Int>] = []
        func append(_ r: Range<Int>) {
            guard !r.isEmpty else { return }
            if let last = spans.last, last.upperBound == r.lowerBound { spans[spans.count - 1] = last.lowerBound..<r.upperBound } else { spans.append(r) }
        }
        append(range.lowerBound..<table.lowerBound)
        for word in words.sorted() where word >= 0 && (Int(word) + 1) * width <= table.count {
            append((table.lowerBound + Int(word) * width)..<(table.lowerBound + (Int(word) + 1) * width))
        }
        append(table.upperBound..<range.upperBound)
        return spans
    }

    /// Elements summed and zeroed at a time in `finishBackward` (64 KB of each buffer).
    static let cacheBlock = 16_384
}
