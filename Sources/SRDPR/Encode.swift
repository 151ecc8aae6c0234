import ArgumentParser
import Data
import Foundation
import Model

/// `srdpr encode`: embeddings of questions and passages.
struct Encode: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed questions and passages (one JSON line in, one {\"embedding\": [...]} line out, in order).",
        discussion: """
            Input lines: {"question": s} (question encoder), {"title": t, "text": s} (context encoder) \
            or {"input_ids": [...]} (context encoder, no tokenisation). A model scored with cosine \
            similarity gives unit-length embeddings (as sentence-transformers' Normalize does).
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Input JSON-lines file.")
    var input: String
    @Option(help: "Output JSON-lines file.")
    var output: String

    func run() throws {
        guard let text = try? String(contentsOfFile: input, encoding: .utf8) else {
            throw CLIError("cannot read --input \(input) (missing or not UTF-8)")
        }
        var inputs: [EncodingInput] = []
        // Lines split on the scalar "\n" so that CRLF files work ("\r\n" is one Character).
        for (i, line) in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let lineText = String(String.UnicodeScalarView(line))
            if lineText.allSatisfy({ $0.isWhitespace }) { continue }
            inputs.append(try EncodingInput.parse(jsonLine: lineText, lineNumber: i + 1, file: input))
        }
        let model = try modelOptions.load()
        let bar = ProgressBar(label: "encode", total: inputs.count, unit: "inputs")
        let embeddings = try model.encode(inputs, normalized: model.similarity == .cosine, progress: { bar.update(done: $0) })
        bar.finish()
        var out = ""
        for e in embeddings {
            out += "{\"embedding\": [" + e.map { "\($0)" }.joined(separator: ", ") + "]}\n"
        }
        do { try out.write(toFile: output, atomically: true, encoding: .utf8) } catch {
            throw CLIError("cannot write --output \(output): \(error.localizedDescription)")
        }
    }
}
