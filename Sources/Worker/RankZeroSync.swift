import Collectives
import Foundation

extension TrainingWorker {
    /// Makes every rank's weights (and, when `optimizerState` is set, AdamW's moments and step)
    /// equal to rank 0's: the others contribute zeros to a sum all-reduce, which adds nothing to
    /// rank 0's values, so they arrive bit for bit.
    public func synchronizeWithRankZero(optimizerState: Bool) throws {
        let isRoot = communicator.rank == 0
        if !isRoot { model.parameters.zero() }
        try communicator.allReduce(model.parameters.buffer, op: .sum)
        guard optimizerState else { return }
        let count = model.layout.totalCount
        var m = isRoot ? optimizer.m : [Float](repeating: 0, count: count)
        var v = isRoot ? optimizer.v : [Float](repeating: 0, count: count)
        try communicator.allReduce(&m, op: .sum)
        try communicator.allReduce(&v, op: .sum)
        let stepBytes = try communicator.broadcast(withUnsafeBytes(of: Int64(optimizer.step).littleEndian) { Array($0) }, root: 0)
        guard stepBytes.count == 8 else { throw WorkerError.malformedPayload(rank: 0, bytes: stepBytes.count, expected: 8) }
        let step = stepBytes.withUnsafeBytes { Int(Int64(littleEndian: $0.loadUnaligned(as: Int64.self))) }
        try optimizer.restore(step: step, m: m, v: v)
    }
}
