import Worker
import XCTest

/// `srdpr worker` without --rank: the rank and world size from the launcher's variables.
final class LaunchEnvironmentTests: XCTestCase {
    func testEachLauncherConventionIsRead() throws {
        let cases: [([String: String], Int, Int?, String)] = [
            (["SLURM_PROCID": "2", "SLURM_NTASKS": "3"], 2, 3, "SLURM_PROCID"),
            (["OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4"], 1, 4, "OMPI_COMM_WORLD_RANK"),
            (["PMI_RANK": "0", "PMI_SIZE": "2"], 0, 2, "PMI_RANK"),
            (["RANK": "5", "WORLD_SIZE": "8"], 5, 8, "RANK"),
            (["RANK": "5"], 5, nil, "RANK"),
        ]
        for (environment, rank, world, variable) in cases {
            let launch = try LaunchEnvironment.resolve(environment)
            XCTAssertEqual(launch.rank, rank, "\(environment)")
            XCTAssertEqual(launch.worldSize, world, "\(environment)")
            XCTAssertEqual(launch.convention.rankVariable, variable)
            XCTAssertTrue(launch.description.contains("rank \(rank) from \(variable)"), launch.description)
        }
    }

    /// mpirun inside a Slurm allocation inherits the batch script's SLURM_PROCID: mpirun's own rank wins.
    func testTheMostSpecificLauncherWins() throws {
        let launch = try LaunchEnvironment.resolve(["SLURM_PROCID": "0", "SLURM_NTASKS": "1",
                                                    "OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3"])
        XCTAssertEqual(launch.rank, 2)
        XCTAssertEqual(launch.worldSize, 3)
        XCTAssertEqual(launch.convention.rankVariable, "OMPI_COMM_WORLD_RANK")
    }

    func testMissingMalformedAndOutOfRangeRanksAreNamed() {
        func message(_ environment: [String: String]) -> String {
            do { _ = try LaunchEnvironment.resolve(environment); return "no error" } catch { return "\(error)" }
        }
        let none = message(["HOME": "/root"])
        for variable in ["--rank", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "RANK"] {
            XCTAssertTrue(none.contains(variable), none)
        }
        XCTAssertTrue(message(["RANK": "abc"]).contains("RANK='abc' is not a number"))
        XCTAssertTrue(message(["SLURM_PROCID": "1", "SLURM_NTASKS": "x"]).contains("SLURM_NTASKS='x' is not a number"))
        XCTAssertTrue(message(["SLURM_PROCID": "3", "SLURM_NTASKS": "3"])
            .contains("SLURM_PROCID=3 is outside the launcher's world of 3 process(es) (SLURM_NTASKS=3): ranks are 0...2"))
        XCTAssertTrue(message(["PMI_RANK": "-1"]).contains("PMI_RANK=-1 is negative"))
        XCTAssertTrue(message(["RANK": "0", "WORLD_SIZE": "0"]).contains("WORLD_SIZE='0'"))
    }
}
