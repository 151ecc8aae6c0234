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

    /// Parses one JSON line: `{"question": s}`, `{"title": t, "text": s}` or `{"input_ids": [...]}`.
    public static func parse(jsonLine line: String, lineNumber: Int, file: String) throws -> EncodingInput {
        func bad(_ why: String) -> ModelError { .invalidInput("\(file):\(lineNumber): \(why)") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
            throw bad("not a JSON object")
        }
        if let q = object["question"] {
            guard let s = q as? String else { throw bad("\"question\" must be a string") }
            return .question(s)
        }
        if let ids = object["input_ids"] {
            guard let list = ids as? [Any], !list.isEmpty else { throw bad("\"input_ids\" must be a non-empty list of integers") }
            var out: [Int32] = []
            for v in list {
                guard let n = v as? Int, n >= 0, n <= Int(Int32.max) else { throw bad("\"input_ids\" must hold non-negative integers, found \(v)") }
                out.append(Int32(n))
            }
            return .tokenIDs(out)
        }
        if let text = object["text"] {
            guard let s = text as? String else { throw bad("\"text\" must be a string") }
            let title: Any = object["title"] ?? ""
            guard let t = title as? String else { throw bad("\"title\" must be a string") }
            return .passage(title: t, text: s)
        }
        throw bad("expected {\"question\": ...}, {\"title\": ..., \"text\": ...} or {\"input_ids\": [...]}")
    }
}

/// Embeds inputs with a bi-encoder (dropout off), in batches of consecutive inputs of the same
/// side, each padded to its longest sequence; results come back in input order.
public struct TextEncoder {
    public let model: BiEncoder
    public let tokenizer: BertTokenizer
    public var maxLength: Int
    public var batchSize: Int
    /// Questions get the original's normalisation (strip, drop one trailing `?`); false: as given.
    public var normalizeQuestions: Bool

    public init(model: BiEncoder, tokenizer: BertTokenizer, maxLength: Int = 256, batchSize: Int = 32,
                normalizeQuestions: Bool = true) {
        self.model = model
        self.tokenizer = tokenizer
        self.maxLength = maxLength
        self.batchSize = max(1, batchSize)
        self.normalizeQuestions = normalizeQuestions
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
        var out: [[Float]] = []
        out.reserveCapacity(inputs.count)
        var start = 0
        while start < inputs.count {
            let side = inputs[start].side
            var end = start + 1
            while end < inputs.count, end - start < batchSize, inputs[end].side == side { end += 1 }
            let batch = try TokenBatch(sequences: inputs[start..<end].map(tokenIDs), padId: tokenizer.padID)
            let emb = try model.encode(side, batch, train: false)
            let d = model.encoder(side).outputDim
            for r in 0..<batch.rows { out.append(Array(emb[(r * d)..<((r + 1) * d)])) }
            start = end
            progress(end)
        }
        return out
    }
}
