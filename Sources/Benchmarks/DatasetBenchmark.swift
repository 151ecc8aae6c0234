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

/// `srdpr bench-dataset`: random-access reads per second on a ByteDataset and create-dataset
/// throughput, the two numbers Benchmarks/bench-dataset.sh puts beside the Python original's.
public enum DatasetBenchmark {
    /// Reads `reads` samples at pseudo-random indices (SplitMix64 from `seed`), decoding each into
    /// a `Sample`; returns reads per second of the best of `repeats` runs.
    public static func randomReads(dataset path: String, reads: Int, seed: UInt64 = 1234, repeats: Int = 3) throws -> [String: Any] {
        let dataset = try ByteDataset(directory: path)
        guard dataset.count > 0 else { return ["error": "empty dataset"] }
        var state = seed
        var indices: [Int] = []
        indices.reserveCapacity(reads)
        for _ in 0..<reads {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            indices.append(Int(z % UInt64(dataset.count)))
        }
        var best = Double.infinity
        var bestCPU = Double.infinity
        var checksum = 0
        for _ in 0..<repeats {
            checksum = 0
            let cpuStart = processCPUSeconds()
            let start = DispatchTime.now().uptimeNanoseconds
            for i in indices {
                let sample = try dataset.sample(at: i)
                checksum &+= sample.sampleID &+ sample.questions.count &+ sample.hardnegContexts.count
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            best = min(best, seconds)
            bestCPU = min(bestCPU, processCPUSeconds() - cpuStart)
        }
        return ["bench": "dataset_random_reads", "samples": dataset.count, "reads": reads,
                "reads_per_second": Double(reads) / best, "seconds": best,
                "reads_per_cpu_second": Double(reads) / bestCPU, "cpu_seconds": bestCPU, "checksum": checksum]
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
