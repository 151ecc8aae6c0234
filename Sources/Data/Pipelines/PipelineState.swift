/// What a checkpoint needs to resume a pipeline with exactly its next batch (SPEC §7): the index
/// generator's epoch and iteration, for windowed pipelines (pos, hard) the number of indices still
/// in the window (`shiftBack`, re-read on restore), and for hard with random negatives the randneg
/// generator's state.
public struct PipelineState: Codable, Equatable, Sendable {
    public var epoch: Int
    public var iteration: Int
    public var shiftBack: Int?
    public var randneg: IndexGeneratorState?

    public init(epoch: Int, iteration: Int, shiftBack: Int? = nil, randneg: IndexGeneratorState? = nil) {
        self.epoch = epoch
        self.iteration = iteration
        self.shiftBack = shiftBack
        self.randneg = randneg
    }

    /// The state as the original logs it (`{"epoch", "iteration", "shift_back"}`, for hard with
    /// randneg `{"hardneg": {...}, "randneg": {...}}`).
    public func originalJSON() -> OrderedJSON {
        var main: [(String, OrderedJSON)] = [("epoch", .int(epoch)), ("iteration", .int(iteration))]
        if let shiftBack { main.append(("shift_back", .int(shiftBack))) }
        guard let randneg else { return .object(main) }
        return .object([("hardneg", .object(main)),
                        ("randneg", .object([("epoch", .int(randneg.epoch)), ("iteration", .int(randneg.iteration))]))])
    }
}

/// A source of training batches whose position can be saved and restored.
public protocol BatchPipeline: AnyObject {
    var kind: PipelineKind { get }
    /// Draws the next batch's samples and sampling choices, advancing the pipeline.
    func nextPlan() throws -> BatchPlan
    /// The datasets a plan's `TextRef.source` indexes, and their parameter names for errors.
    var sources: [any SampleSource] { get }
    var sourceNames: [String] { get }
    /// Tokenizes plans; nil for a pipeline that only plans (the coordinator's).
    var materializer: BatchMaterializer? { get }
    /// The position after the last batch returned.
    var state: PipelineState { get }
    /// Moves to `state`, so the next batch is the one that followed it when it was saved.
    func restore(_ state: PipelineState) throws
}

extension BatchPipeline {
    /// Builds the next batch (plan, then tokens), advancing the pipeline.
    public func nextBatch() throws -> Batch {
        guard let materializer else { preconditionFailure("the \(kind) pipeline was built without a tokenizer: it only plans") }
        return try materializer.batch(nextPlan(), sources: sources, sourceNames: sourceNames)
    }
}
