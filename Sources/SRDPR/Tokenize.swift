import ArgumentParser
import Data
import Foundation

/// `srdpr tokenize`: JSON lines `{"text": ..., "text_pair": ...}` on stdin -> `{"tokens": [...], "ids": [...]}`.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tokenize JSON lines from stdin with a BERT vocab.txt, like Hugging Face BertTokenizer.",
        discussion: """
            Each input line is {"text": "...", "text_pair": "..." (optional)}; each output line is \
            {"tokens": [...], "ids": [...]}: tokens are the WordPiece tokens of text (then text_pair) \
            without special tokens, ids the full encoding [CLS] text [SEP] (text_pair [SEP]).
            """)

    @Option(help: "Path of vocab.txt (one token a line).")
    var vocab: String

    @Option(name: .customLong("do-lower-case"), help: "Lower-case and strip accents (true|false).")
    var doLowerCase: String = "true"

    @Option(name: .customLong("max-length"), help: "Truncate ids to this length, keeping [SEP] last (default: no limit).")
    var maxLength: Int?

    func run() throws {
        let lower: Bool
        switch doLowerCase.lowercased() {
        case "true", "1", "yes": lower = true
        case "false", "0", "no": lower = false
        default: throw ValidationError("--do-lower-case must be true or false, not '\(doLowerCase)'")
        }
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be at least 2") }
        let tokenizer = try BertTokenizer(vocabFile: URL(fileURLWithPath: vocab), doLowerCase: lower)
        var lineNumber = 0
        var out = ""
        while let line = readLine(strippingNewline: true) {
            lineNumber += 1
            if line.allSatisfy({ $0.isWhitespace }) { continue }
            let value: JSONValue
            do { value = try JSONParser.parse(line) } catch {
                throw CLIError("stdin line \(lineNumber): not valid JSON: \(error)")
            }
            guard let text = value["text"]?.stringValue else {
                throw CLIError("stdin line \(lineNumber): expected an object with a string \"text\" (and optional \"text_pair\")")
            }
            var tokens = tokenizer.tokenize(text)
            let ids: [Int32]
            if let pairValue = value["text_pair"], pairValue != .null {
                guard let pair = pairValue.stringValue else {
                    throw CLIError("stdin line \(lineNumber): \"text_pair\" must be a string or null")
                }
                tokens += tokenizer.tokenize(pair)
                ids = tokenizer.encode(text, textPair: pair, maxLength: maxLength)
            } else {
                ids = tokenizer.encode(text, maxLength: maxLength)
            }
            OrderedJSON.object([("tokens", .array(tokens.map { .string($0) })),
                                ("ids", .array(ids.map { .int(Int($0)) }))]).write(to: &out)
            out += "\n"
            if out.utf8.count > 1 << 16 { FileHandle.standardOutput.write(Data(out.utf8)); out = "" }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
    }
}
