import XCTest
import Data

/// StatelessIndexGenerator keeps its permutation as UInt32 and refills it in place at each
/// epoch; the draws must stay those of `Random(seed + epoch).shuffle(range(N))`.
final class IndexGeneratorTests: XCTestCase {
    /// The original's permutation of epoch `epoch`, over Int as Python shuffles it.
    private func permutation(count: Int, seed: Int, epoch: Int) -> [Int] {
        var values = Array(0..<count)
        var rng = PythonRandom(seed: seed + epoch)
        rng.shuffle(&values)
        return values
    }

    func testDrawsFollowEachEpochsPermutation() throws {
        let count = 37, seed = 12345 + 234567891
        var generator = try StatelessIndexGenerator(count: count, shuffleSeed: seed)
        let draws = (0..<(3 * count + 5)).map { _ in generator.next() }
        let expected = (0..<4).flatMap { permutation(count: count, seed: seed, epoch: $0) }
        XCTAssertEqual(draws, Array(expected.prefix(draws.count)))
        XCTAssertEqual(generator.state, IndexGeneratorState(epoch: 3, iteration: 5))
    }

    func testPreviousAcrossAnEpochBoundaryThenOn() throws {
        let count = 10, seed = 7
        var generator = try StatelessIndexGenerator(count: count, shuffleSeed: seed)
        for _ in 0..<13 { _ = generator.next() }
        // Goes back into epoch 0 (the cached permutation is rebuilt for it), then on in epoch 1.
        let epoch0 = permutation(count: count, seed: seed, epoch: 0), epoch1 = permutation(count: count, seed: seed, epoch: 1)
        XCTAssertEqual(generator.previous(5), Array(epoch0[8...]) + Array(epoch1[..<3]))
        XCTAssertEqual(generator.next(), epoch1[3])
    }

    func testMoreSamplesThanUInt32AreRefused() {
        XCTAssertThrowsError(try StatelessIndexGenerator(count: Int(UInt32.max) + 1, shuffleSeed: 0, datasetName: "bytedataset.pos")) { error in
            XCTAssertEqual(error as? PipelineError, .invalidSetting(parameter: "bytedataset.pos", value: "4294967296 samples",
                                                                   reason: "at most 4294967295 samples are supported"))
        }
    }
}
