/// Saving and restoring AdamW's state in a checkpoint: the moments as two float sections in the
/// parameters' layout, the step and hyperparameters as JSON.
extension AdamW {
    struct SavedState: Codable, Equatable {
        var step: Int
        var beta1: Double
        var beta2: Double
        var eps: Double
        var weightDecays: [Double]
    }

    /// Adds `{prefix}.exp_avg`, `{prefix}.exp_avg_sq` and `{prefix}.state` to `writer`.
    public func save(to writer: inout CheckpointWriter, prefix: String = "optimizer") throws {
        try writer.addFloats("\(prefix).exp_avg", m)
        try writer.addFloats("\(prefix).exp_avg_sq", v)
        try writer.addJSON("\(prefix).state", SavedState(step: step, beta1: beta1, beta2: beta2, eps: eps,
                                                         weightDecays: groups.map(\.weightDecay)))
    }

    /// Restores the state saved by `save(to:prefix:)`; the moments must match this optimizer's
    /// parameter count. Hyperparameters stay as configured (a resumed run may change them).
    public func restore(from file: CheckpointFile, prefix: String = "optimizer") throws {
        let state = try file.json("\(prefix).state", as: SavedState.self)
        for name in ["\(prefix).exp_avg", "\(prefix).exp_avg_sq"] {
            let count = try file.floatCount(name)
            guard count == m.count else {
                throw CheckpointError.sizeMismatch(path: file.path, name: name, count: count, expected: m.count)
            }
        }
        try restore(step: state.step, m: try file.floats("\(prefix).exp_avg"), v: try file.floats("\(prefix).exp_avg_sq"))
    }
}
