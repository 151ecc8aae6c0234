import Dispatch
import Foundation

/// Inference over many batches on several cores: each thread runs whole batches on its own
/// replica of an encoder (the same parameter buffer, activations of its own) with one-thread
/// sgemm, and takes the next batch when it finishes one. Batches come longest first
/// (LengthSortedBatches), so the threads finish close together.
///
/// Why not every thread on one batch (what training does): between the many small sgemm calls of
/// a forward, OpenBLAS's threads spin in `sched_yield` waiting for the next call — 11% of the
/// CPU samples of `srdpr index` at 2 threads — and a batch of short sequences does not split
/// well. Whole batches per thread have neither cost: 1,500 FAQ passages at max length 256 take
/// 34.6 s on 2 threads as one process, two one-thread processes side by side do 1,500 each in
/// 61.6 s (1.12x the throughput). It also makes the embeddings independent of the thread count:
/// every batch is computed by one thread, so `--threads 2` writes the bytes of `--threads 1`.
final class BatchParallelInference {
    private let base: BertEncoder
    private var replicas: [BertEncoder] = []
    private let sharedWeights = PackedLinearWeights()

    init(base: BertEncoder) { self.base = base }

    /// `count` encoders over `base`'s parameters for forward-only use (one thread each, the same
    /// pooling and packing), made once and reused call after call (their buffers with them).
    private func encoders(_ count: Int) -> [BertEncoder] {
        let parallelThreads = Parallel.threads
        while replicas.count < count {
            let replica = BertEncoder(config: base.config, layout: base.layout, parameters: base.parameters,
                                      gradients: FloatBuffer(count: 0))
            replica.threads = 1  // (sets Parallel.threads: restored below)
            replica.linearWeights = sharedWeights  // the model packed once, not once per thread
            replicas.append(replica)
        }
        Parallel.threads = parallelThreads
        for replica in replicas.prefix(count) {
            replica.pooling = base.pooling
            replica.packsSequences = base.packsSequences
            replica.prunesLastLayer = base.prunesLastLayer
        }
        return Array(replicas.prefix(count))
    }

    /// The embeddings of every batch, in the order of `batches`, computed on `threads` threads;
    /// `finished(k, embeddings)` is called (one call at a time) as batch k completes.
    func embed(_ batches: [TokenBatch], threads: Int, finished: ([Float], Int) -> Void) throws {
        let workers = encoders(max(1, min(threads, batches.count)))
        let lock = NSLock()
        var next = 0
        var failure: Error?
        // The parameters stay as they are for this call: the replicas pack the Linear weights once, together.
        for encoder in workers { encoder.parametersFixed = true }
        defer { for encoder in workers { encoder.parametersFixed = false } }
        // Every sgemm and elementwise loop of a replica runs on its own thread.
        Parallel.withOneThreadKernels {
            DispatchQueue.concurrentPerform(iterations: workers.count) { w in
                let encoder = workers[w]
                while true {
                    lock.lock()
                    let k = next
                    next += 1
                    let stop = failure != nil
                    lock.unlock()
                    if stop || k >= batches.count { return }
                    do {
                        let embeddings = try encoder.forward(batches[k], dropout: nil, labels: RowLabels(), keepActivations: false)
                        lock.lock()
                        finished(embeddings, k)
                        lock.unlock()
                    } catch {
                        lock.lock()
                        if failure == nil { failure = error }
                        lock.unlock()
                        return
                    }
                }
            }
        }
        if let failure { throw failure }
    }
}
