/// One training sample, as the original SR-DPR stores it (SPEC §1).
///
/// Strings may be replaced by token-id lists in pre-tokenized datasets; `TextField` keeps
/// whichever form the file had so that nothing is lost on a round trip.
public struct Sample: Equatable, Sendable {
    public var sampleID: Int
    public var questions: [TextField]
    public var positiveContexts: [Passage]
    public var hardnegContexts: [Passage]

    public init(sampleID: Int, questions: [TextField], positiveContexts: [Passage], hardnegContexts: [Passage]) {
        self.sampleID = sampleID
        self.questions = questions
        self.positiveContexts = positiveContexts
        self.hardnegContexts = hardnegContexts
    }
}

/// A passage: `{"title": ..., "text": ...}`.
public struct Passage: Equatable, Sendable {
    public var title: TextField
    public var text: TextField

    public init(title: TextField, text: TextField) {
        self.title = title
        self.text = text
    }

    public init(title: String, text: String) {
        self.init(title: .text(title), text: .text(text))
    }
}

/// A question, title or passage text: plain text, or token ids when the dataset is pre-tokenized.
public enum TextField: Equatable, Sendable {
    case text(String)
    case tokenIDs([Int])
}

/// Random access to samples by index; implemented by `ByteDataset` and by in-memory arrays (tests).
public protocol SampleSource {
    var count: Int { get }
    func sample(at index: Int) throws -> Sample
    /// Refills `view` with sample `index` (ByteDataset: zero-copy; others: a copy of `sample(at:)`).
    func readView(at index: Int, into view: inout SampleView) throws
    /// Refills `views[first...]` with samples `indices`, appending views as needed.
    func readViews(at indices: [Int], into views: inout [SampleView], startingAt first: Int) throws
}

extension SampleSource {
    public func readView(at index: Int, into view: inout SampleView) throws {
        view = SampleView(try sample(at: index))
    }

    public func readViews(at indices: [Int], into views: inout [SampleView], startingAt first: Int) throws {
        while views.count < first + indices.count { views.append(SampleView()) }
        for (k, index) in indices.enumerated() { try readView(at: index, into: &views[first + k]) }
    }
}

extension Array: SampleSource where Element == Sample {
    public func sample(at index: Int) throws -> Sample { self[index] }
}
