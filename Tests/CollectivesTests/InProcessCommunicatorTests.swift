import XCTest
import Collectives

final class InProcessCommunicatorTests: XCTestCase {
    func testWorldOfOneLeavesDataUnchanged() throws {
        let comm = InProcessCommunicator()
        XCTAssertEqual(comm.rank, 0)
        XCTAssertEqual(comm.worldSize, 1)
        var values: [Float] = [1, -2, 3.5]
        try values.withUnsafeMutableBufferPointer { try comm.allReduce($0, op: .mean) }
        XCTAssertEqual(values, [1, -2, 3.5])
        XCTAssertEqual(try comm.allGather([1, 2, 3]), [[1, 2, 3]])
        XCTAssertEqual(try comm.broadcast([9], root: 0), [9])
    }
}
