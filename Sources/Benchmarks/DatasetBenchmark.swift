import Data
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// User + system CPU time of this process: on a shared machine it measures the work done,
/// where wall time also counts the time other processes held the cores.
func processCPUSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// `srdpr bench dataset`: random-access reads per second on a ByteDataset and create-dataset
/// throughput, the two numbers Benchmarks/bench-dataset.sh puts beside the Python original's.
public enum DatasetBenchmark {
    /// Reads `reads` samples at pseudo-random indices (SplitMix64 from `seed`), best of `repeats` runs.
    ///
    /// The headline `reads_per_second` is the pipelines' read: `ByteDataset.readViews(at:into:)` on
    /// batches of `batchSize` indices (a pipeline step reads its batch this way), i.e. per sample
    /// one validating pass over the pickle (code-running opcodes refused, every text field checked
    /// to be UTF-8, token ids copied) into a reused `SampleView`, with the next samples' bytes
    /// prefetched; then the sample id and the list lengths the random choices need.
    /// `single_view_reads_per_second` is `readView(at:into:)` one index at a time (no look-ahead). `sample_reads_per_second` is the full `Sample` decode
    /// (`sample(at:)`: Strings and arrays for every field), for code that needs owned values.
    public static func randomReads(dataset path: String, reads: Int, seed: UInt64 = 1234, repeats: Int = 3,
                                   batchSize: Int = 64) throws -> [String: Any] {
        let dataset = try ByteDataset(directory: path)
        guard dataset.count > 0 else { return ["error": "empty dataset"] }
        var random = SplitMix64(seed: seed)
        var indices: [Int] = []
        indices.reserveCapacity(reads)
        for _ in 0..<reads { indices.append(Int(random.next() % UInt64(dataset.count))) }
        /// Best wall and CPU seconds of `repeats` runs of `body`, and its checksum.
        func timed(_ body: () throws -> Int) rethrows -> (wall: Double, cpu: Double, checksum: Int) {
            var best = Double.infinity, bestCPU = Double.infinity, checksum = 0
            for _ in 0..<repeats {
                let cpuStart = processCPUSeconds()
                let start = DispatchTime.now().uptimeNanoseconds
                checksum = try body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                bestCPU = min(bestCPU, processCPUSeconds() - cpuStart)
            }
            return (best, bestCPU, checksum)
        }
        // The pipelines' read: a batch of indices into a reused pool of views (readViews).
        var views: [SampleView] = []
        let viewRun = try timed {
            var checksum = 0
            var b = 0
            while b < indices.count {
                let batch = Array(indices[b..<min(b + batchSize, indices.count)])
                try dataset.readViews(at: batch, into: &views, startingAt: 0)
                for view in views.prefix(batch.count) { checksum &+= view.sampleID &+ view.questionCount &+ view.hardnegCount }
                b += batchSize
            }
            return checksum
        }
        // The same number of reads in file order: memory is streamed, so this is the decode cost.
        let sequentialRun = try timed {
            var checksum = 0
            var b = 0
            while b < indices.count {
                let batch = (b..<min(b + batchSize, indices.count)).map { $0 % dataset.count }
                try dataset.readViews(at: batch, into: &views, startingAt: 0)
                for view in views.prefix(batch.count) { checksum &+= view.sampleID }
                b += batchSize
            }
            return checksum
        }
        // One view at a time, without the batch's look-ahead.
        var view = SampleView()
        let singleRun = try timed {
            var checksum = 0
            for i in indices {
                try dataset.readView(at: i, into: &view)
                checksum &+= view.sampleID &+ view.questionCount &+ view.hardnegCount
            }
            return checksum
        }
        let sampleRun = try timed {
            var checksum = 0
            for i in indices {
                let sample = try dataset.sample(at: i)
                checksum &+= sample.sampleID &+ sample.questions.count &+ sample.hardnegContexts.count
            }
            return checksum
        }
        return ["bench": "dataset_random_reads", "samples": dataset.count, "reads": reads,
                "read_path": "pipeline read: ByteDataset.readViews, batches of \(batchSize) indices into reused SampleViews (validated pickle pass, every text field UTF-8-checked)",
                "batch_size": batchSize,
                "single_view_reads_per_second": Double(reads) / singleRun.wall,
                "sequential_view_reads_per_cpu_second": Double(reads) / sequentialRun.cpu,
                "single_view_reads_per_cpu_second": Double(reads) / singleRun.cpu, "single_view_checksum": singleRun.checksum,
                "reads_per_second": Double(reads) / viewRun.wall, "seconds": viewRun.wall,
                "reads_per_cpu_second": Double(reads) / viewRun.cpu, "cpu_seconds": viewRun.cpu, "checksum": viewRun.checksum,
                "sample_reads_per_second": Double(reads) / sampleRun.wall, "sample_seconds": sampleRun.wall,
                "sample_reads_per_cpu_second": Double(reads) / sampleRun.cpu, "sample_cpu_seconds": sampleRun.cpu,
                "sample_checksum": sampleRun.checksum]
    }

    /// Converts `jsonl` into `output` `repeats` times; returns input MB/s of the best run.
    public static func conversion(jsonl: String, output: String, repeats: Int = 3) throws -> [String: Any] {
        var best = Double.infinity
        var bestCPU = Double.infinity
        var summary: ConversionSummary?
        for _ in 0..<repeats {
            let cpuStart = processCPUSeconds()
            let start = DispatchTime.now().uptimeNanoseconds
            summary = try ByteDatasetConverter.convert(jsonlPath: jsonl, outputDirectory: output)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            bestCPU = min(bestCPU, processCPUSeconds() - cpuStart)
        }
        let bytes = summary?.inputBytes ?? 0
        return ["bench": "create_dataset", "samples": summary?.samples ?? 0, "input_bytes": bytes,
                "mb_per_second": Double(bytes) / 1e6 / best, "seconds": best,
                "mb_per_cpu_second": Double(bytes) / 1e6 / bestCPU, "cpu_seconds": bestCPU]
    }
}
