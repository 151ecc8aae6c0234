import ArgumentParser
import Data
import Foundation
import Model

/// `srdpr encode`: embeddings of questions and passages with a Hugging Face BERT directory.
struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed questions and passages (one JSON line in, one {\"embedding\": [...]} line out, in order).",
        discussion: """
            Input lines: {"question": s} (question encoder), {"title": t, "text": s} (context encoder) \
            or {"input_ids": [...]} (context encoder, no tokenisation). --model is a Hugging Face \
            directory (config.json, vocab.txt, model.safetensors or pytorch_model.bin); both encoders \
            start from it.
            """)

    @Option(help: "Hugging Face model directory.")
    var model: String
    @Option(help: "Input JSON-lines file.")
    var input: String
    @Option(help: "Output JSON-lines file.")
    var output: String
    @Option(name: .customLong("max-length"), help: "Longest sequence in tokens, [CLS] and [SEP] included.")
    var maxLength: Int = 256
    @Option(name: .customLong("do-lower-case"), help: "true|false (default: tokenizer_config.json's, else true).")
    var doLowerCase: String?
    @Option(name: .customLong("batch-size"), help: "Sequences per forward pass.")
    var batchSize: Int = 32
    @Option(help: "Threads for OpenBLAS and the other loops.")
    var threads: Int = 2

    func run() throws {
        guard maxLength >= 2 else { throw ValidationError("--max-length must be at least 2") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        let dir = URL(fileURLWithPath: model)
        let lower = try resolveLowerCase(dir)
        let biEncoder = try BiEncoder.load(directory: dir)
        BLASThreads.set(threads)
        biEncoder.threads = threads
        let tokenizer = try BertTokenizer(vocabFile: dir.appendingPathComponent("vocab.txt"), doLowerCase: lower)
        let encoder = TextEncoder(model: biEncoder, tokenizer: tokenizer, maxLength: maxLength, batchSize: batchSize)

        guard let text = try? String(contentsOfFile: input, encoding: .utf8) else {
            throw CLIError("cannot read --input \(input) (missing or not UTF-8)")
        }
        var inputs: [EncodingInput] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy({ $0.isWhitespace }) {
            inputs.append(try EncodingInput.parse(jsonLine: String(line), lineNumber: i + 1, file: input))
        }
        let embeddings = try encoder.encode(inputs)
        var out = ""
        for e in embeddings {
            out += "{\"embedding\": [" + e.map { "\($0)" }.joined(separator: ", ") + "]}\n"
        }
        do { try out.write(toFile: output, atomically: true, encoding: .utf8) } catch {
            throw CLIError("cannot write --output \(output): \(error.localizedDescription)")
        }
    }

    func resolveLowerCase(_ dir: URL) throws -> Bool {
        if let doLowerCase {
            switch doLowerCase.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw ValidationError("--do-lower-case must be true or false, not '\(doLowerCase)'")
            }
        }
        let url = dir.appendingPathComponent("tokenizer_config.json")
        if let data = try? Data(contentsOf: url),
           let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
           let value = json["do_lower_case"] as? Bool {
            return value
        }
        return true
    }
}
