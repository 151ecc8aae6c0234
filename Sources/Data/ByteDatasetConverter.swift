/// What `create-dataset` did.
public struct ConversionSummary: Sendable {
    public var samples: Int
    public var inputBytes: Int
    public var dataBytes: Int
}

/// JSON-lines to ByteDataset, as the original `create_dataset` (one `pickle.dump` per line,
/// protocol 4), but validating each sample and failing with the line number.
public enum ByteDatasetConverter {
    /// Converts `jsonlPath` into a ByteDataset in `outputDirectory` (created if missing).
    /// `progress(bytesDone, bytesTotal)` is called every few thousand lines.
    /// Throws `SampleJSONError` for bad input and `ByteDatasetWriteError` for output failures;
    /// on any error no `data.pkl`/`idxs.pkl` is left behind.
    public static func convert(jsonlPath: String, outputDirectory: String, protocol version: Int = 4,
                               progress: ((Int, Int) -> Void)? = nil) throws -> ConversionSummary {
        let input = try JSONLinesFile(path: jsonlPath)
        let writer = try ByteDatasetWriter(directory: outputDirectory, protocol: version)
        do {
            try input.forEachLine { number, line, end in
                let value: JSONValue
                do { value = try JSONParser.parse(line) } catch let e as JSONSyntaxError {
                    throw SampleJSONError.syntax(file: jsonlPath, line: number, e)
                }
                do { try SampleJSON.validate(value) } catch let error as SampleFieldError {
                    throw SampleJSONError.invalidSample(file: jsonlPath, line: number, message: error.message)
                }
                try writer.append(json: value)
                if let progress, number % 4096 == 0 { progress(end, input.byteCount) }
            }
            if writer.count == 0 { throw SampleJSONError.empty(file: jsonlPath) }
            try writer.finish()
        } catch {
            writer.abandon()
            throw error
        }
        progress?(input.byteCount, input.byteCount)
        return ConversionSummary(samples: writer.count, inputBytes: input.byteCount, dataBytes: writer.dataByteCount)
    }
}
