import Foundation

/// A worker's rank and world size as its launcher gives them in the environment, so that
/// `srdpr worker` without `--rank` runs under srun, mpirun (Open MPI, MPICH/Hydra) or a
/// torchrun-style launcher. The most specific launcher wins: mpirun started inside a Slurm
/// allocation inherits the batch script's SLURM_PROCID, which is not the process's rank.
public struct LaunchEnvironment: Equatable, Sendable {
    /// A launcher's pair of variables.
    public struct Convention: Equatable, Sendable {
        public let launcher: String
        public let rankVariable: String
        public let worldVariable: String
    }

    /// In the order they are consulted.
    public static let conventions: [Convention] = [
        Convention(launcher: "Open MPI mpirun", rankVariable: "OMPI_COMM_WORLD_RANK", worldVariable: "OMPI_COMM_WORLD_SIZE"),
        Convention(launcher: "PMI (MPICH, Intel MPI, srun --mpi=pmi2)", rankVariable: "PMI_RANK", worldVariable: "PMI_SIZE"),
        Convention(launcher: "Slurm srun", rankVariable: "SLURM_PROCID", worldVariable: "SLURM_NTASKS"),
        Convention(launcher: "torchrun-style", rankVariable: "RANK", worldVariable: "WORLD_SIZE"),
    ]

    public let rank: Int
    /// The number of processes the launcher started (nil when its variable is not set).
    public let worldSize: Int?
    /// Where they came from.
    public let convention: Convention

    /// One line for the log: which variables were used.
    public var description: String {
        "rank \(rank) from \(convention.rankVariable)"
            + (worldSize.map { ", world size \($0) from \(convention.worldVariable)" } ?? " (\(convention.worldVariable) is not set)")
            + " (\(convention.launcher))"
    }

    /// Reads the first convention whose rank variable is set; a malformed or out-of-range value
    /// is an error naming the variable, never skipped in favour of the next launcher's.
    public static func resolve(_ environment: [String: String]) throws -> LaunchEnvironment {
        guard let convention = conventions.first(where: { environment[$0.rankVariable] != nil }) else {
            throw LaunchEnvironmentError.noRank(variables: conventions.map(\.rankVariable))
        }
        let rankText = environment[convention.rankVariable]!.trimmingCharacters(in: .whitespaces)
        guard let rank = Int(rankText) else {
            throw LaunchEnvironmentError.notANumber(variable: convention.rankVariable, value: rankText)
        }
        var worldSize: Int?
        if let worldText = environment[convention.worldVariable]?.trimmingCharacters(in: .whitespaces) {
            guard let value = Int(worldText), value >= 1 else {
                throw LaunchEnvironmentError.notANumber(variable: convention.worldVariable, value: worldText)
            }
            worldSize = value
        }
        guard rank >= 0, rank < (worldSize ?? Int.max) else {
            throw LaunchEnvironmentError.rankOutOfRange(variable: convention.rankVariable, rank: rank,
                                                        worldVariable: convention.worldVariable, worldSize: worldSize)
        }
        return LaunchEnvironment(rank: rank, worldSize: worldSize, convention: convention)
    }
}

public enum LaunchEnvironmentError: Error, CustomStringConvertible, Equatable {
    case noRank(variables: [String])
    case notANumber(variable: String, value: String)
    case rankOutOfRange(variable: String, rank: Int, worldVariable: String, worldSize: Int?)

    public var description: String {
        switch self {
        case .noRank(let variables):
            return "no rank: pass --rank R, or start the worker with a launcher that sets one of "
                + variables.joined(separator: ", ") + " (srun, mpirun, torchrun); none is set"
        case let .notANumber(variable, value):
            return "\(variable)='\(value)' is not a number (the launcher's rank and world size must be integers)"
        case let .rankOutOfRange(variable, rank, worldVariable, worldSize):
            if let worldSize {
                return "\(variable)=\(rank) is outside the launcher's world of \(worldSize) process(es) "
                    + "(\(worldVariable)=\(worldSize)): ranks are 0...\(worldSize - 1)"
            }
            return "\(variable)=\(rank) is negative"
        }
    }
}
