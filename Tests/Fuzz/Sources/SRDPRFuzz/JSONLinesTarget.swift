import Data

/// JSON-lines sample files as `create-dataset` and the tests read them. Every line that is a
/// valid sample must survive what the converter does with it: the pickle it writes decodes
/// to the same sample, and the sample's own JSON line parses back to it.
enum JSONLinesTarget {
    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        _ = try? JSONLinesFile.samples(in: bytes, file: "fuzz.jsonl")
        JSONLinesFile.forEachLine(in: bytes) { _, line, _ in
            guard let value = try? JSONParser.parse(line), (try? SampleJSON.validate(value)) != nil else { return }
            let pickle = PickleWriter.dumps(json: value)
            let decoded: Sample
            do {
                decoded = try pickle.withUnsafeBufferPointer { try Sample.decode(pickle: $0) }
            } catch SamplePickleError.notASample(let message) where message.contains("64-bit") {
                return  // a sample_id beyond Int64 is refused on both sides
            } catch {
                violated("the pickle written for a valid line does not decode: \(error)")
            }
            guard let sample = try? SampleJSON.sample(from: value) else {
                violated("a line that validates is not a sample, but its pickle decodes to \(decoded)")
            }
            if decoded != sample { violated("pickled \(decoded), parsed \(sample)") }
            let again = SampleJSON.line(for: sample)
            guard let reparsed = try? JSONParser.parse(again), let back = try? SampleJSON.sample(from: reparsed) else {
                violated("SampleJSON.line wrote a line that does not parse back: \(again)")
            }
            if back != sample { violated("line round trip changed \(sample) into \(back)") }
        }
    }
}
