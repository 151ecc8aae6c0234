import Collectives
import Foundation
import XCTest

/// Found by LeakSanitizer (scripts/sanitize.sh address): the background thread's closure held the
/// core and the core held the Thread, so a BucketedAllReduce never freed its core, its thread
/// object or its communicator; for a ZMQCommunicator that meant sockets and a libzmq context
/// that were never closed.
final class BucketedAllReduceLifetimeTests: XCTestCase {
    func testCommunicatorIsReleasedWithTheBucketedAllReduce() throws {
        weak var weakCommunicator: InProcessCommunicator?
        do {
            let communicator = InProcessCommunicator()
            weakCommunicator = communicator
            let bucketed = BucketedAllReduce(communicator: communicator)
            var gradients = [Float](repeating: 1, count: 8)
            try gradients.withUnsafeMutableBufferPointer { buffer in
                try bucketed.start(buffer, buckets: BucketedAllReduce.buckets(count: 8, bucketElements: 3), op: .sum)
                try bucketed.wait()
            }
            XCTAssertEqual(bucketed.reducedBuckets, 3)
        }
        // The thread lets go once it has seen the shutdown; give it a moment.
        let deadline = Date(timeIntervalSinceNow: 10)
        while weakCommunicator != nil && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertNil(weakCommunicator, "the communicator outlived its BucketedAllReduce (a retain cycle through the thread)")
    }
}
