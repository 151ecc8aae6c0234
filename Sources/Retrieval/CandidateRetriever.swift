import Foundation
import Data

/// What the hard-negative miner needs from a retriever: ranked candidates for questions, the
/// passages behind them, and the score a given passage would get (to compare candidates with the
/// question's positives).
public protocol CandidateRetriever {
    /// Names the retriever in the report.
    var name: String { get }
    var passageCount: Int { get }
    /// The best `k` rows for each question, best first, with their scores.
    func retrieve(questions: [String], k: Int) throws -> [[Hit<Double>]]
    /// The passage at `row`.
    func passage(row: Int) throws -> CorpusRecord
    /// Calls `body(row, passage)` for every passage in corpus order.
    func forEachPassage(_ body: (Int, CorpusRecord) throws -> Void) throws
    /// The score of each of `passages` for `question`, as `retrieve` would give it.
    func scores(question: String, passages: [Passage]) throws -> [Double]
}

/// BM25 candidates from a `BM25Index`.
public struct BM25Retriever: CandidateRetriever {
    public let index: BM25Index
    public let parameters: BM25Parameters
    public let threads: Int

    public init(index: BM25Index, parameters: BM25Parameters, threads: Int) {
        self.index = index
        self.parameters = parameters
        self.threads = threads
    }

    public var name: String { "bm25 k1=\(parameters.k1) b=\(parameters.b) stopwords=\(index.meta.stopWords)" }
    public var passageCount: Int { index.passageCount }

    public func retrieve(questions: [String], k: Int) throws -> [[Hit<Double>]] {
        index.search(questions: questions.map { index.analyzer.terms($0) }, k: k, parameters: parameters, threads: threads)
    }

    public func passage(row: Int) throws -> CorpusRecord { try index.passage(row: row) }

    public func forEachPassage(_ body: (Int, CorpusRecord) throws -> Void) throws {
        var row = 0
        try JSONLinesFile.forEachLine(in: index.corpus.bytes) { line, bytes, _ in
            try body(row, try CorpusRecord.parse(bytes, path: index.meta.corpusPath, line: line))
            row += 1
        }
    }

    public func scores(question: String, passages: [Passage]) throws -> [Double] {
        let terms = index.analyzer.terms(question)
        return try passages.map { passage in
            guard case .text(let title) = passage.title, case .text(let text) = passage.text else {
                throw RetrievalError.invalidArgument(name: "--input", reason: "pre-tokenized passages (lists of token ids) cannot be scored by BM25")
            }
            return index.score(question: terms, passageTerms: index.analyzer.terms(title: title, text: text), parameters: parameters)
        }
    }
}

/// Dense candidates: the corpus encoded into a `PassageIndex` with the model and searched exactly,
/// the same path as `srdpr index` + `srdpr search`.
public struct DenseRetriever: CandidateRetriever {
    public let encoder: PassageEncoder
    public let corpus: Corpus
    public let index: PassageIndex
    public let search: ExactSearch

    public init(encoder: PassageEncoder, corpus: Corpus, index: PassageIndex, search: ExactSearch) {
        self.encoder = encoder
        self.corpus = corpus
        self.index = index
        self.search = search
    }

    public var name: String { "dense model=\(encoder.modelName) similarity=\(index.meta.similarity.rawValue)" }
    public var passageCount: Int { index.meta.encodedRows }

    public func retrieve(questions: [String], k: Int) throws -> [[Hit<Double>]] {
        let vectors = try encoder.encodeQuestions(questions)
        let hits = vectors.withUnsafeBufferPointer { q in
            search.search(queries: q, queryCount: questions.count, passages: index.embeddings,
                          passageCount: index.meta.encodedRows, dimension: index.meta.dimension,
                          k: k, similarity: index.meta.similarity)
        }
        // Ties in the order `srdpr search` writes them (RankedHit.ranksBefore: trec_eval's), so the
        // candidates are exactly search's.
        let ids = index.ids
        return hits.map { list in
            list.sorted { RankedHit.ranksBefore(RankedHit(id: ids[$0.row], score: $0.score), RankedHit(id: ids[$1.row], score: $1.score)) }
                .map { Hit(row: $0.row, score: Double($0.score)) }
        }
    }

    public func passage(row: Int) throws -> CorpusRecord {
        guard case .text(let title) = corpus.passages[row].title, case .text(let text) = corpus.passages[row].text else {
            return CorpusRecord(id: corpus.ids[row], title: "", text: "")
        }
        return CorpusRecord(id: corpus.ids[row], title: title, text: text)
    }

    public func forEachPassage(_ body: (Int, CorpusRecord) throws -> Void) throws {
        for row in corpus.ids.indices { try body(row, try passage(row: row)) }
    }

    public func scores(question: String, passages: [Passage]) throws -> [Double] {
        guard !passages.isEmpty else { return [] }
        let q = try encoder.encodeQuestions([question])
        let p = try encoder.encodePassages(passages)
        let dimension = encoder.dimension
        return (0..<passages.count).map { i in
            var dot: Float = 0, qq: Float = 0, pp: Float = 0
            for j in 0..<dimension {
                dot += q[j] * p[i * dimension + j]
                qq += q[j] * q[j]
                pp += p[i * dimension + j] * p[i * dimension + j]
            }
            if index.meta.similarity == .cosine {
                return qq > 0 && pp > 0 ? Double(dot / (qq.squareRoot() * pp.squareRoot())) : 0
            }
            return Double(dot)
        }
    }
}
