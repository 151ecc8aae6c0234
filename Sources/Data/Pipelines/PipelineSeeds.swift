/// Offsets added to `seed` for each pipeline's index generator (the original's constants).
public enum PipelineSeeds {
    public static let inbatch = 123456789
    public static let pos = 234567891
    public static let poshard = 345678912
    /// Used by both of the hard pipeline's generators (hardneg and randneg).
    public static let hard = 456789123

    public static func offset(_ kind: PipelineKind) -> Int {
        switch kind {
        case .inbatch: return inbatch
        case .pos: return pos
        case .poshard: return poshard
        case .hard: return hard
        }
    }
}
