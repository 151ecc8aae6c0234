import XCTest
import Model
import TestSupport

/// AdamW with two parameter groups, the warmup/decay schedule and global-norm clipping against
/// PyTorch (fixtures/adamw.safetensors, adamw.json): every step's pre-clip norm, learning rate and
/// parameters after the update.
final class AdamWTests: XCTestCase {
    struct Config: Decodable {
        var lr: Double
        var eps: Double
        var betas: [Double]
        var weight_decay: Double
        var no_decay: [String]
        var warmup_steps: Int
        var total_updates: Int
        var max_grad_norm: Float
        var lr_used_at_step: [Double]
    }

    let names = ["encoder.dense.weight", "encoder.dense.bias", "encoder.LayerNorm.weight"]
    var fixture: SafeTensorsFile!
    var config: Config!
    var layout = ParameterLayout()

    override func setUpWithError() throws {
        fixture = try SafeTensorsFile(url: Fixtures.url("adamw.safetensors"))
        config = try JSONDecoder().decode(Config.self, from: Data(contentsOf: Fixtures.url("adamw.json")))
        layout = ParameterLayout()
        for name in names { layout.append(name, shape: try fixture.info("init." + name).shape) }
    }

    func gather(_ prefix: String) throws -> [Float] {
        try names.flatMap { try fixture.floats(prefix + $0) }
    }

    func makeOptimizer() -> AdamW {
        let groups = ParameterGroup.standardGroups(layout: layout, weightDecay: config.weight_decay, noDecay: config.no_decay)
        return AdamW(parameterCount: layout.totalCount, groups: groups,
                     betas: (config.betas[0], config.betas[1]), eps: config.eps)
    }

    var schedule: LinearWarmupSchedule {
        LinearWarmupSchedule(baseLearningRate: config.lr, warmupSteps: config.warmup_steps, totalUpdates: config.total_updates)
    }

    /// Runs fixture steps `steps` on `params` with `optimizer`, checking each against PyTorch.
    func runSteps(_ steps: Range<Int>, _ params: inout [Float], _ optimizer: AdamW) throws {
        for s in steps {
            var grads = try gather("step\(s).grad.")
            let norm = grads.withUnsafeMutableBufferPointer { GradClip.clip($0, maxNorm: config.max_grad_norm) }
            let expectedNorm = try fixture.floats("step\(s).total_norm")[0]
            XCTAssertEqual(norm, expectedNorm, accuracy: 1e-6 * expectedNorm, "pre-clip norm of step \(s)")
            let lr = schedule.learningRate(atStep: s)
            XCTAssertEqual(lr, config.lr_used_at_step[s], accuracy: 1e-12, "learning rate of step \(s)")
            params.withUnsafeMutableBufferPointer { p in
                grads.withUnsafeBufferPointer { g in optimizer.update(parameters: p, gradients: g, learningRate: lr) }
            }
            let expected = try gather("step\(s).after.")
            let d = deviation(params, expected)
            XCTAssertLessThanOrEqual(d.maxAbs, 1e-6, "parameters after step \(s): \(d)")
        }
    }

    func testEveryStepMatchesPyTorch() throws {
        var params = try gather("init.")
        let optimizer = makeOptimizer()
        try runSteps(0..<4, &params, optimizer)
        XCTAssertEqual(optimizer.step, 4)
        // The run must have moved the weights, so the comparison above is not vacuous.
        XCTAssertGreaterThan(deviation(params, try gather("init.")).maxAbs, 1e-2)
    }

    func testGroupsFollowParameterNames() {
        let groups = ParameterGroup.standardGroups(layout: layout, weightDecay: 0.01)
        let weight = layout["encoder.dense.weight"]!, bias = layout["encoder.dense.bias"]!
        let norm = layout["encoder.LayerNorm.weight"]!
        XCTAssertEqual(groups[0], ParameterGroup(ranges: [weight.range], weightDecay: 0.01))
        // bias and LayerNorm.weight are adjacent, so they merge into one range.
        XCTAssertEqual(groups[1], ParameterGroup(ranges: [bias.offset..<norm.range.upperBound], weightDecay: 0))
        let frozen = ParameterGroup.standardGroups(layout: layout, weightDecay: 0.01,
                                                   isFrozen: { $0.name.hasSuffix("bias") })
        XCTAssertEqual(frozen[1].ranges, [norm.range])
    }

    /// Saving the state after two steps and restoring it in a fresh optimizer continues bit-identically.
    func testRestoredStateContinuesExactly() throws {
        var straight = try gather("init.")
        let a = makeOptimizer()
        try runSteps(0..<4, &straight, a)

        var resumed = try gather("init.")
        let b = makeOptimizer()
        try runSteps(0..<2, &resumed, b)
        let c = makeOptimizer()
        try c.restore(step: b.step, m: b.m, v: b.v)
        try runSteps(2..<4, &resumed, c)
        XCTAssertEqual(resumed, straight)
        XCTAssertEqual(c.m, a.m)
        XCTAssertEqual(c.v, a.v)

        XCTAssertThrowsError(try c.restore(step: 1, m: [1, 2], v: b.v)) { error in
            XCTAssertEqual(error as? AdamWError, .stateSizeMismatch(what: "m", count: 2, expected: layout.totalCount))
        }
        XCTAssertThrowsError(try c.restore(step: -1, m: b.m, v: b.v))
    }

    func testScheduleShape() {
        let s = LinearWarmupSchedule(baseLearningRate: 1e-3, warmupSteps: 10, totalUpdates: 110)
        XCTAssertEqual(s.learningRate(atStep: 0), 0)
        XCTAssertEqual(s.learningRate(atStep: 5), 5e-4, accuracy: 1e-15)
        XCTAssertEqual(s.learningRate(atStep: 10), 1e-3, accuracy: 1e-15)
        XCTAssertEqual(s.learningRate(atStep: 60), 5e-4, accuracy: 1e-15)
        XCTAssertEqual(s.learningRate(atStep: 110), 0)
        XCTAssertEqual(s.learningRate(atStep: 500), 0)
        // No warmup: full rate from the first step.
        XCTAssertEqual(LinearWarmupSchedule(baseLearningRate: 1, warmupSteps: 0, totalUpdates: 4).learningRate(atStep: 0), 1)
    }

    func testClipOnlyScalesDownAndReportsThePreClipNorm() {
        var g: [Float] = [3, 4, 0, 12]   // norm 13
        let norm = g.withUnsafeMutableBufferPointer { GradClip.clip($0, maxNorm: 26) }
        XCTAssertEqual(norm, 13)
        XCTAssertEqual(g, [3, 4, 0, 12], "a norm under max_norm leaves gradients alone")
        let clipped = g.withUnsafeMutableBufferPointer { GradClip.clip($0, maxNorm: 1.3, ranges: [0..<2, 3..<4]) }
        XCTAssertEqual(clipped, 13)
        let coefficient: Float = 1.3 / (13 + 1e-6)
        XCTAssertEqual(g, [3 * coefficient, 4 * coefficient, 0, 12 * coefficient])
        var nan: [Float] = [.nan, 1]
        XCTAssertTrue(nan.withUnsafeMutableBufferPointer { GradClip.clip($0, maxNorm: 1) }.isNaN)
    }

    /// The update is split into pieces that threads share; any split gives bit-identical results.
    func testThreadedUpdateIsBitIdentical() {
        var layout = ParameterLayout()
        layout.append("big.weight", shape: [700_001])
        layout.append("big.bias", shape: [300_003])
        let groups = ParameterGroup.standardGroups(layout: layout, weightDecay: 0.1)
        let grads = (0..<layout.totalCount).map { Float(($0 * 7919) % 2001) * 1e-3 - 1 }
        var results: [[Float]] = []
        for threads in [1, 2, 4] {
            let optimizer = AdamW(parameterCount: layout.totalCount, groups: groups)
            optimizer.threads = threads
            var params = (0..<layout.totalCount).map { Float($0 % 97) * 0.01 }
            for _ in 0..<2 {
                params.withUnsafeMutableBufferPointer { p in grads.withUnsafeBufferPointer { optimizer.update(parameters: p, gradients: $0, learningRate: 1e-3) } }
            }
            results.append(params)
        }
        XCTAssertEqual(results[0], results[1])
        XCTAssertEqual(results[0], results[2])
        XCTAssertNotEqual(results[0][0], 0)
    }

    /// The global norm summed on several threads is the bytes of the one-thread sum: Float partial
    /// sums over 256-element blocks of every range, added in order in Double.
    func testThreadedNormIsBitIdentical() {
        let count = 1_000_003
        let grads = (0..<count).map { Float(($0 * 7919) % 2001) * 1e-3 - 1 }
        let ranges = [0..<10, 37..<700_001, 700_500..<count]
        var reference: Double = 0
        for range in ranges {
            for start in stride(from: range.lowerBound, to: range.upperBound, by: 256) {
                var partial: Float = 0
                for i in start..<min(start + 256, range.upperBound) { partial += grads[i] * grads[i] }
                reference += Double(partial)
            }
        }
        for threads in [1, 2, 4] {
            grads.withUnsafeBufferPointer { g in
                XCTAssertEqual(GradClip.globalNorm(g, ranges: ranges, threads: threads), Float(reference.squareRoot()), "threads \(threads)")
                XCTAssertEqual(GradClip.globalNorm(g, threads: threads), GradClip.globalNorm(g), "threads \(threads), whole buffer")
            }
        }
    }

    /// A training step clips inside AdamW's pass (`clipAndUpdate`): the parameters and the
    /// (clipped) gradients are the bytes of clip followed by the update, also for a frozen slot
    /// outside the groups, on any number of threads.
    func testClipInsideTheUpdateIsClipThenUpdate() {
        var layout = ParameterLayout()
        layout.append("a.weight", shape: [300_001])
        layout.append("frozen.weight", shape: [5_003])
        layout.append("a.bias", shape: [400_007])
        let groups = ParameterGroup.standardGroups(layout: layout, weightDecay: 0.1, isFrozen: { $0.name.hasPrefix("frozen.") })
        let grads = (0..<layout.totalCount).map { Float(($0 * 7919) % 2001) * 1e-3 - 1 }
        let start = (0..<layout.totalCount).map { Float($0 % 97) * 0.01 }
        for maxNorm: Float in [1, 1e9, 0] {
            let separate = AdamW(parameterCount: layout.totalCount, groups: groups)
            var expectedParams = start, expectedGrads = grads
            let norm = expectedGrads.withUnsafeMutableBufferPointer { GradClip.clip($0, maxNorm: maxNorm) }
            expectedParams.withUnsafeMutableBufferPointer { p in
                expectedGrads.withUnsafeBufferPointer { separate.update(parameters: p, gradients: $0, learningRate: 1e-3) }
            }
            for threads in [1, 2] {
                let fused = AdamW(parameterCount: layout.totalCount, groups: groups)
                fused.threads = threads
                var params = start, g = grads
                let fusedNorm = params.withUnsafeMutableBufferPointer { p in
                    g.withUnsafeMutableBufferPointer { fused.clipAndUpdate(parameters: p, gradients: $0, maxNorm: maxNorm, learningRate: 1e-3) }
                }
                XCTAssertEqual(fusedNorm, norm)
                XCTAssertEqual(params, expectedParams, "parameters, max_norm \(maxNorm), threads \(threads)")
                XCTAssertEqual(g, expectedGrads, "gradients, max_norm \(maxNorm), threads \(threads)")
                XCTAssertEqual(fused.m, separate.m)
                XCTAssertEqual(fused.v, separate.v)
            }
            if maxNorm == 1 { XCTAssertNotEqual(expectedGrads[300_010], grads[300_010], "the frozen slot is clipped too") }
        }
        // A non-finite norm is reported and changes nothing.
        let optimizer = AdamW(parameterCount: layout.totalCount, groups: groups)
        var params = start, g = grads
        g[12] = .nan
        let nanNorm = params.withUnsafeMutableBufferPointer { p in
            g.withUnsafeMutableBufferPointer { optimizer.clipAndUpdate(parameters: p, gradients: $0, maxNorm: 1, learningRate: 1e-3) }
        }
        XCTAssertTrue(nanNorm.isNaN)
        XCTAssertEqual(params, start)
        XCTAssertEqual(optimizer.step, 0)
    }
}
