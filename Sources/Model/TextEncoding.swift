import Data
import Foundation

/// What `srdpr encode` embeds: a question (question encoder), a titled passage (context encoder),
/// or already tokenized ids (context encoder, used as they are).
public enum EncodingInput {
    case question(String)
    case passage(title: String, text: String)
    case tokenIDs([Int32])

    var side: BiEncoder.Side {
        if case .question = self { return .question }
        return .context
    }

    /// The input of one JSON line, parsed by `JSONLinesFile.object`: `{"question": s}`,
    /// `{"title": t, "text": s}` or `{"input_ids": [...]}`; errors name `file` and `lineNumber`.
    /// `vocabularySize`: token ids must be below it (the context encoder's vocab_size).
    static func parse(object: JSONValue, lineNumber: Int, file: String, vocabularySize: Int? = nil) throws -> EncodingInput {
        func bad(_ why: String) -> ModelError { .invalidInput("\(file):\(lineNumber): \(why)") }
        if let question = object["question"] {
            guard let s = question.stringValue else { throw bad("\"question\" must be a string") }
            return .question(s)
        }
        if let ids = object["input_ids"] {
            guard case .array(let list) = ids, !list.isEmpty else { throw bad("\"input_ids\" must be a non-empty list of integers") }
            var out: [Int32] = []
            out.reserveCapacity(list.count)
            for value in list {
                guard case .int(let n) = value, n >= 0, n <= Int(Int32.max) else {
                    throw bad("\"input_ids\" must hold non-negative integers, found \(value.jsonText)")
                }
                if let vocabularySize, n >= vocabularySize {
                    throw bad("input id \(n) is outside the vocabulary of the context encoder (vocab_size \(vocabularySize))")
                }
                out.append(Int32(n))
            }
            return .tokenIDs(out)
        }
        if let text = object["text"] {
            guard let s = text.stringValue else { throw bad("\"text\" must be a string") }
            let title = object["title"] ?? .string([])
            guard let t = title.stringValue else { throw bad("\"title\" must be a string") }
            return .passage(title: t, text: s)
        }
        throw bad("expected {\"question\": ...}, {\"title\": ..., \"text\": ...} or {\"input_ids\": [...]}")
    }
}

/// Embeds inputs with a bi-encoder for inference (forward only, dropout off): questions through
/// the question encoder, passages and token ids through the context encoder, each side in
/// length-sorted batches (`LengthSortedBatches`); results come back in input order. The batches
/// run side by side on the model's `threads`, one thread each (`BatchParallelInference`): the
/// embeddings are the same bytes whatever the thread count.
public struct TextEncoder {
    public let model: BiEncoder
    public let tokenizer: BertTokenizer
    public var maxLength: Int
    public var batchSize: Int
    /// At most this many tokens per batch (sequences × the batch's longest; LengthSortedBatches).
    public var batchTokens: Int
    /// Questions get the original's normalisation (strip, drop one trailing `?`); false: as given.
    public var normalizeQuestions: Bool
    private let parallel: [BatchParallelInference]

    /// The default `batchTokens`: 8 passages of 128 tokens, 4 of 256, 32 questions (LengthSortedBatches).
    public static let defaultBatchTokens = 1024

    public init(model: BiEncoder, tokenizer: BertTokenizer, maxLength: Int = 256, batchSize: Int = 32,
                batchTokens: Int = TextEncoder.defaultBatchTokens, normalizeQuestions: Bool = true) {
        self.model = model
        self.tokenizer = tokenizer
        self.maxLength = maxLength
        self.batchSize = max(1, batchSize)
        self.batchTokens = max(1, batchTokens)
        self.normalizeQuestions = normalizeQuestions
        // One encoder's replicas serve both sides when they are one set of parameters (a single
        // encoder directory): a second set would hold a second copy of the activations.
        let questions = BatchParallelInference(base: model.question)
        parallel = [questions, model.sidesShareParameters ? questions : BatchParallelInference(base: model.context)]
    }

    public func tokenIDs(_ input: EncodingInput) -> [Int32] {
        switch input {
        case .question(let q):
            return tokenizer.encode(normalizeQuestions ? BertTokenizer.normalizeQuestion(q) : q, maxLength: maxLength)
        case .passage(let title, let text):
            return tokenizer.encode(title.trimmingCharacters(in: .whitespacesAndNewlines),
                                    textPair: text.trimmingCharacters(in: .whitespacesAndNewlines), maxLength: maxLength)
        case .tokenIDs(let ids):
            return tokenizer.truncate(ids, maxLength)
        }
    }

    /// One embedding per input, in order; `progress(n)` after each batch, n inputs done.
    public func encode(_ inputs: [EncodingInput], progress: (Int) -> Void = { _ in }) throws -> [[Float]] {
        var out = [[Float]](repeating: [], count: inputs.count)
        var done = 0
        for side in [BiEncoder.Side.question, .context] {
            let positions = inputs.indices.filter { inputs[$0].side == side }
            if positions.isEmpty { continue }
            let sequences = positions.map { tokenIDs(inputs[$0]) }
            let d = model.encoder(side).outputDim
            let batches = LengthSortedBatches(lengths: sequences.map(\.count), batchSize: batchSize, maxTokens: batchTokens).batches
            func place(_ embeddings: [Float], _ batch: [Int]) {
                for (row, k) in batch.enumerated() { out[positions[k]] = Array(embeddings[(row * d)..<((row + 1) * d)]) }
                done += batch.count
                progress(done)
            }
            let tokens = try batches.map { try TokenBatch(sequences: $0.map { sequences[$0] }, padId: tokenizer.padID) }
            try parallel[side.rawValue].embed(tokens, threads: max(1, model.threads)) { embeddings, k in place(embeddings, batches[k]) }
        }
        return out
    }
}
