import Foundation

/// Which pipeline trains at each step (SPEC §4): steps cycle through the pipelines of `train_mode`
/// in the order inbatch, pos, poshard, hard, with `regulate_factor` r consecutive steps of pos (or
/// inbatch), then one of poshard, then one of hard. With both inbatch and pos, inbatch gets r // 2
/// steps and pos r - r // 2.
public struct PipelineSchedule: Codable, Equatable, Sendable {
    /// One period of the schedule; step s trains `cycle[s % cycle.count]`.
    public let cycle: [PipelineKind]
    /// The pipelines present, in canonical order.
    public let pipelines: [PipelineKind]

    public init(trainMode: String, regulateFactor: Int) throws {
        let present = try Self.parseTrainMode(trainMode)
        guard regulateFactor >= 1 else {
            throw PipelineError.invalidSetting(parameter: "regulate_factor", value: String(regulateFactor), reason: "must be at least 1")
        }
        let both = present.contains(.inbatch) && present.contains(.pos)
        if both && regulateFactor < 2 {
            throw PipelineError.invalidSetting(parameter: "regulate_factor", value: String(regulateFactor),
                reason: "with both inbatch and pos in train_mode, inbatch gets regulate_factor // 2 steps per cycle; use at least 2 so it trains at all")
        }
        var cycle: [PipelineKind] = []
        for kind in present {
            switch kind {
            case .inbatch: cycle += repeatElement(.inbatch, count: both ? regulateFactor / 2 : regulateFactor)
            case .pos: cycle += repeatElement(.pos, count: both ? regulateFactor - regulateFactor / 2 : regulateFactor)
            case .poshard, .hard: cycle.append(kind)
            }
        }
        self.cycle = cycle
        pipelines = present
    }

    /// The pipeline of step `step` (0-based).
    public func pipeline(atStep step: Int) -> PipelineKind { cycle[((step % cycle.count) + cycle.count) % cycle.count] }

    /// `pos+poshard+hard` -> [.pos, .poshard, .hard] (canonical order; unknown or repeated names are errors).
    public static func parseTrainMode(_ trainMode: String) throws -> [PipelineKind] {
        var seen: Set<PipelineKind> = []
        for part in trainMode.split(separator: "+", omittingEmptySubsequences: false) {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let kind = PipelineKind(rawValue: name) else {
                throw PipelineError.invalidSetting(parameter: "train_mode", value: trainMode,
                    reason: "'\(name)' is not a pipeline; use names from inbatch, pos, poshard, hard joined by '+'")
            }
            guard seen.insert(kind).inserted else {
                throw PipelineError.invalidSetting(parameter: "train_mode", value: trainMode, reason: "'\(name)' appears twice")
            }
        }
        return PipelineKind.allCases.filter(seen.contains)
    }
}
