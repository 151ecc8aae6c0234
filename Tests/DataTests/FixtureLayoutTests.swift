import XCTest
import TestSupport

/// The parity tests read ../shared/fixtures; fail loudly (not skip) when it is not there.
final class FixtureLayoutTests: XCTestCase {
    func testSharedFixturesAreBesideTheCheckout() {
        for path in ["tiny-bert/vocab.txt", "pipelines/all.jsonl", "pipelines/config.json",
                     "model_forward_backward.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: Fixtures.url(path).path),
                          "missing fixture \(Fixtures.url(path).path): the tests expect ../shared beside the checkout")
        }
    }
}
