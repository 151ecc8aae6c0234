import Foundation
import Data

/// Converts other projects' training data into the ByteDataset that `create-dataset` writes for
/// SR-DPR JSON lines (the same pickles as the equivalent SR-DPR lines). Samples are numbered
/// 0, 1, 2, ... in input order (`sample_id`); nothing is written under the final names unless the
/// whole input converts.
public enum TrainingDataImporter {
    public enum Format: String, CaseIterable, Sendable {
        case srdpr, dpr, tevatron, beir
    }

    public struct Summary: Sendable {
        public var samples = 0
        /// BEIR: queries whose relevant passages were all missing from the corpus (not written).
        public var skippedQueries = 0
        /// BEIR: relevant passage ids missing from the corpus.
        public var missingPassages = 0
        /// BEIR: query ids of the qrels missing from queries.jsonl.
        public var missingQueries = 0
        public var dataBytes = 0
    }

    /// DPR's training JSON (a list), streamed: `positive_ctxs` become positives,
    /// `hard_negative_ctxs` hard negatives; `negative_ctxs` (random negatives) are dropped.
    public static func importDPR(path: String, outputDirectory: String, progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        let file = try DPRTrainingFile(path: path)
        return try write(outputDirectory, emptyError: RetrievalError.cannotRead(path: path, reason: "the list holds no sample")) { writer in
            var count = 0
            try file.forEachElement { line, element, end in
                try writer.append(try DPRTrainingFile.sample(element, id: count, path: path, line: line))
                count += 1
                if let progress, count % 4096 == 0 { progress(end, file.byteCount) }
            }
        }
    }

    /// Tevatron's JSON lines `{"query_id", "query", "positive_passages": [{"docid", "title", "text"}],
    /// "negative_passages": [...]}`: negative passages become hard negatives.
    public static func importTevatron(path: String, outputDirectory: String, progress: ((Int, Int) -> Void)? = nil) throws -> Summary {
        try write(outputDirectory, emptyError: RetrievalError.cannotRead(path: path, reason: "no samples (the file is empty)")) { writer in
            var count = 0
            try JSONLines.forEachObject(path: path) { line, object in
                guard let query = JSONLines.string(object["query"]) else {
                    throw RetrievalError.badLine(path: path, line: line, reason: "field \"query\" is missing or not a string")
                }
                let sample = Sample(sampleID: count, questions: [.text(query)],
                                    positiveContexts: try DPRTrainingFile.passages(object, "positive_passages", required: true, path: path, line: line),
                                    hardnegContexts: try DPRTrainingFile.passages(object, "negative_passages", required: false, path: path, line: line))
                try writer.append(sample)
                count += 1
            }
        }
    }

    /// A BEIR directory: one sample per query of `qrels/<split>.tsv` with a relevant passage in the
    /// corpus (relevance > 0), its relevant passages as positives, no hard negatives (mine them).
    public static func importBEIR(directory: String, split: String, outputDirectory: String) throws -> Summary {
        let dataset = try BEIRDataset(directory: directory)
        let relevant = try dataset.relevant(split: split)
        let queries = try dataset.queries(ids: Set(relevant.map(\.queryID)))
        let passages = try dataset.passages(ids: Set(relevant.flatMap(\.passageIDs)))
        var summary = Summary()
        let written = try write(outputDirectory, emptyError: RetrievalError.cannotRead(path: dataset.qrelsPath(split: split), reason: "no query has a relevant passage in the corpus")) { writer in
            for (queryID, ids) in relevant {
                guard let question = queries[queryID] else { summary.missingQueries += 1; continue }
                let positives = ids.compactMap { passages[$0] }
                summary.missingPassages += ids.count - positives.count
                if positives.isEmpty { summary.skippedQueries += 1; continue }
                try writer.append(Sample(sampleID: writer.count, questions: [.text(question)],
                                         positiveContexts: positives.map { Passage(title: $0.title, text: $0.text) },
                                         hardnegContexts: []))
            }
        }
        summary.samples = written.samples
        summary.dataBytes = written.dataBytes
        return summary
    }

    private static func write(_ outputDirectory: String, emptyError: Error, _ body: (ByteDatasetWriter) throws -> Void) throws -> Summary {
        let writer = try ByteDatasetWriter(directory: outputDirectory)
        do {
            try body(writer)
            if writer.count == 0 { throw emptyError }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        var summary = Summary()
        summary.samples = writer.count
        summary.dataBytes = writer.dataByteCount
        return summary
    }
}
