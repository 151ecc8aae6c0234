import Foundation
import Data
import Retrieval

/// `srdpr bench mine`: BM25 index build time, search throughput and peak memory on a generated
/// corpus (compare `Benchmarks/bm25_anchor.py` through `Benchmarks/bench-mine.sh`).
public enum MineBench {
    public struct Options {
        public var passages: Int
        public var queries: Int
        public var k: Int
        public var threads: Int
        public var directory: String
        public init(passages: Int, queries: Int, k: Int, threads: Int, directory: String) {
            self.passages = passages
            self.queries = queries
            self.k = k
            self.threads = threads
            self.directory = directory
        }
    }

    /// A Zipf-distributed vocabulary of pronounceable made-up words (seeded, so every run and the
    /// Python anchor read the same files).
    struct WordSource {
        var random: PythonRandom
        let words: [String]
        let cumulative: [Double]

        init(seed: Int, vocabulary: Int = 200_000) {
            random = PythonRandom(seed: seed)
            let consonants = Array("bcdfghjklmnprstvwz"), vowels = Array("aeiou")
            var words: [String] = []
            words.reserveCapacity(vocabulary)
            for rank in 0..<vocabulary {
                var n = rank, word = ""
                repeat {
                    word.append(consonants[n % consonants.count]); n /= consonants.count
                    word.append(vowels[n % vowels.count]); n /= vowels.count
                } while n > 0
                words.append(word)
            }
            self.words = words
            var total = 0.0
            cumulative = (0..<vocabulary).map { rank in total += 1 / Double(rank + 1); return total }
        }

        mutating func word() -> String {
            let target = random.random() * cumulative[cumulative.count - 1]
            var low = 0, high = cumulative.count - 1
            while low < high {
                let mid = (low + high) / 2
                if cumulative[mid] < target { low = mid + 1 } else { high = mid }
            }
            return words[low]
        }

        mutating func words(_ count: Int) -> String {
            (0..<count).map { _ in word() }.joined(separator: " ")
        }
    }

    /// Writes `corpus.jsonl` (titles of 2-6 words, texts of 40-120) and `queries.jsonl`
    /// (`{"question"}` of 3-8 words) unless they already exist with this many passages.
    public static func generate(_ options: Options, log: (String) -> Void) throws -> (corpus: String, queries: String) {
        let corpus = options.directory + "/corpus.jsonl", queries = options.directory + "/queries.jsonl"
        let stamp = options.directory + "/generated"
        let expected = "\(options.passages) \(options.queries)"
        if (try? String(contentsOfFile: stamp, encoding: .utf8)) == expected { return (corpus, queries) }
        try FileManager.default.createDirectory(atPath: options.directory, withIntermediateDirectories: true)
        log("generating \(options.passages) passages in \(corpus)")
        var source = WordSource(seed: 2024)
        let out = try AtomicOutputFile(path: corpus)
        var chunk = ""
        for i in 0..<options.passages {
            let title = source.words(2 + source.random.randbelow(5)), text = source.words(40 + source.random.randbelow(81))
            chunk += "{\"id\": \"doc\(i)\", \"title\": \"\(title)\", \"text\": \"\(text)\"}\n"
            if chunk.utf8.count > 1 << 20 { try out.write(chunk); chunk = "" }
        }
        try out.write(chunk)
        try out.commit()
        let q = try AtomicOutputFile(path: queries)
        for _ in 0..<options.queries { try q.write("{\"question\": \"\(source.words(3 + source.random.randbelow(6)))\"}\n") }
        try q.commit()
        try expected.write(toFile: stamp, atomically: true, encoding: .utf8)
        return (corpus, queries)
    }

    /// Resident memory of this process from /proc/self/status, in MiB: peak, anonymous, file-backed.
    static func memory() -> (peak: Double, anonymous: Double, file: Double) {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        func value(_ key: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key + ":") }) else { return -1 }
            return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? -1) / 1024
        }
        return (value("VmHWM"), value("RssAnon"), value("RssFile"))
    }

    /// Resets the peak RSS (VmHWM) so the next phase's peak is its own.
    static func resetPeak() {
        try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }

    public static func run(_ options: Options, log: (String) -> Void) throws -> [String: Any] {
        let (corpus, queriesPath) = try generate(options, log: log)
        let indexDirectory = options.directory + "/bm25-index"
        try? FileManager.default.removeItem(atPath: indexDirectory)
        resetPeak()
        let buildStart = Date()
        try BM25IndexBuilder.build(corpusPath: corpus, directory: indexDirectory, analyzer: try .named("english"))
        let buildSeconds = Date().timeIntervalSince(buildStart)
        let buildMemory = memory()
        log(String(format: "built the BM25 index of %d passages in %.1f s, peak RSS %.0f MiB", options.passages, buildSeconds, buildMemory.peak))

        let index = try BM25Index(directory: indexDirectory)
        var questions: [[String]] = []
        try JSONLinesFile(path: queriesPath).forEachObject { _, object in
            questions.append(index.analyzer.terms(object["question"]?.stringValue ?? ""))
        }
        resetPeak()
        let before = memory()
        let searchStart = Date()
        let hits = index.search(questions: questions, k: options.k, parameters: BM25Parameters(), threads: options.threads)
        let searchSeconds = Date().timeIntervalSince(searchStart)
        let searchMemory = memory()
        let indexBytes = (try FileManager.default.contentsOfDirectory(atPath: indexDirectory)).reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: indexDirectory + "/" + name)[.size] as? Int) ?? 0)
        }
        let corpusBytes = (try FileManager.default.attributesOfItem(atPath: corpus)[.size] as? Int) ?? 0
        log(String(format: "searched %d queries (top-%d) in %.2f s: %.1f queries/s, peak RSS %.0f MiB (%.0f anonymous, %.0f file-backed)",
                   questions.count, options.k, searchSeconds, Double(questions.count) / searchSeconds,
                   searchMemory.peak, searchMemory.anonymous, searchMemory.file))
        return [
            "benchmark": "bm25", "implementation": "srdpr", "passages": index.passageCount, "queries": questions.count,
            "k": options.k, "threads": options.threads, "corpus_mib": Double(corpusBytes) / 1048576,
            "index_mib": Double(indexBytes) / 1048576, "vocabulary": index.meta.vocabulary, "postings": index.meta.postings,
            "build_seconds": buildSeconds, "build_peak_rss_mib": buildMemory.peak,
            "search_seconds": searchSeconds, "queries_per_second": Double(questions.count) / searchSeconds,
            "search_peak_rss_mib": searchMemory.peak, "search_rss_anonymous_mib": searchMemory.anonymous,
            "search_rss_file_mib": searchMemory.file, "rss_before_search_mib": before.peak,
            "mean_hits": Double(hits.reduce(0) { $0 + $1.count }) / Double(max(1, hits.count)),
        ]
    }
}
