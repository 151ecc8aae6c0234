import Foundation
import Model
import TestSupport
import Worker
import XCTest

/// Benchmarks/scaling_model.py (README "How far it scales") on measurements made up from known
/// ring costs: its byte accounting must be the trainer's (the collectives of `GradientPlan` and
/// their payloads, counted here from the plan itself), its fit must recover the costs from the
/// unlimited-link points alone, and its predictions of the shaped-link points must follow the
/// documented formula (per byte the slowest of the link, one rank's ring and the shared cores).
final class ScalingModelScriptTests: XCTestCase {
    let alpha = 4.0e-4, alphaGather = 1.0e-4, cores = 2.0
    let kappaRank = ["fp32": 1.2e-9, "bf16": 1.5e-9], kappaCPU = ["fp32": 0.7e-9, "bf16": 1.0e-9]
    let links = ["1gbit": 119.0e6, "10gbit": 1.1e9]  // bytes/s
    let touched = (72, 679)

    /// Collectives of one update and the bytes they move, from the trainer's plan: every bucket is
    /// one all-reduce, a sparse (word-embedding) bucket two (the row flags in fp32, then the rows).
    func update(hidden: Int, layers: Int, intermediate: Int, wireBytes: Int) throws -> (collectives: Int, bytes: Int) {
        let config = BertConfig(hiddenSize: hidden, numLayers: layers, numHeads: 12, intermediateSize: intermediate)
        var layout = ParameterLayout()
        let question = BertLayout(config: config, prefix: "question_model.", into: &layout)
        let context = BertLayout(config: config, prefix: "ctx_model.", into: &layout)
        let plan = try XCTUnwrap(GradientPlan(question: question, context: context, totalCount: layout.totalCount, hiddenSize: hidden))
        var collectives = 0, bytes = 0, sparseSeen = 0
        for bucket in plan.buckets {
            if let width = bucket.sparseRowWidth {
                let rows = sparseSeen == 0 ? touched.0 : touched.1
                sparseSeen += 1
                collectives += 2
                bytes += bucket.range.count / width * 4 + rows * width * wireBytes
            } else {
                collectives += 1
                bytes += bucket.range.count * wireBytes
            }
        }
        XCTAssertEqual(sparseSeen, 2)
        return (collectives, bytes)
    }

    func json(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    func testTheFitRecoversTheRingCostsAndThePredictionsFollowTheFormula() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("scaling-model-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var lines = [try json(["kind": "machine", "cores": Int(cores)])]
        var expected: [String: Double] = [:]
        let shapes = ["minilm": (384, 6, 1536), "base": (768, 12, 3072)]
        for rate in ["none", "1gbit", "10gbit"] {
            let link = links[rate]
            lines.append(try json(["kind": "link", "rate": rate, "raw_tcp_gbps": (link ?? 3e9) * 8 / 1e9, "uptime": "made up"]))
            for (shape, (hidden, layers, intermediate)) in shapes {
                for n in 2...4 {
                    let share = max(1, Double(n) / cores)
                    for wire in ["fp32", "bf16"] {
                        let u = try update(hidden: hidden, layers: layers, intermediate: intermediate, wireBytes: wire == "fp32" ? 4 : 2)
                        func perByte(_ w: String) -> Double { max(link.map { 1 / $0 } ?? 0, kappaRank[w]!, Double(n) / cores * kappaCPU[w]!) }
                        let allReduce = Double(2 * (n - 1) * u.collectives) * alpha + 2 * Double(n - 1) / Double(n) * Double(u.bytes) * perByte(wire)
                        let cpu = kappaCPU[wire]! * Double(2 * (n - 1) * u.bytes)
                        let gatherBytes = Double(24 * hidden * 4)
                        // A step's all-gather (under 74 kB) fits in the tbf bucket (2 ms of traffic): not shaped.
                        let unshaped = max(kappaRank["fp32"]!, Double(n) / cores * kappaCPU["fp32"]!)
                        let allGather = Double(n - 1) * alphaGather + Double(n - 1) / Double(n) * gatherBytes * unshaped
                        expected["\(rate) \(shape) \(wire) \(n)"] = allReduce
                        for round in 1...2 {
                            lines.append(try json(["kind": "allreduce", "round": round, "rate": rate, "shape": shape, "wire": wire, "world": n,
                                                   "backward_s": rate == "none" ? 0 : 1.0 / Double(n),
                                                   "allreduce_times_s": [allReduce, allReduce], "exposed_times_s": [0.01, 0.01],
                                                   "allgather_times_s": [allGather, allGather], "allreduce_cpu_times_s": [cpu, cpu],
                                                   "loadavg_before": [0.5, 0.4, 0.3], "loadavg": [0.6, 0.4, 0.3]]))
                        }
                    }
                }
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("points.jsonl"), atomically: true, encoding: .utf8)
        try json(["touched_rows_question": touched.0, "touched_rows_context": touched.1])
            .write(to: dir.appendingPathComponent("touched-rows.json"), atomically: true, encoding: .utf8)
        for (shape, step) in [("minilm", 2.5), ("base", 12.0)] {
            try json(["step_times_s": [step], "backward_times_s": [step * 0.6]])
                .write(to: dir.appendingPathComponent("compute-\(shape).json"), atomically: true, encoding: .utf8)
        }

        let python = TRECEvalReference.python
        let script = Fixtures.packageRoot.appendingPathComponent("Benchmarks/scaling_model.py").path
        let result = try Command.run(python.executable, python.prefix + [script, dir.path, "--plot", dir.appendingPathComponent("plot.png").path])
        XCTAssertEqual(result.status, 0, "scaling_model.py failed (it needs numpy, scipy and matplotlib: scripts/setup.sh --test, "
                       + "SRDPR_PYTHON=.venv/bin/python): \(result.stderr.suffix(2000))")
        let model = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("model.json"))) as? [String: Any])
        XCTAssertEqual(try XCTUnwrap(model["alpha_s"] as? Double), alpha, accuracy: alpha * 1e-4)
        XCTAssertEqual(try XCTUnwrap(model["alpha_gather_s"] as? Double), alphaGather, accuracy: alphaGather * 1e-4)
        let fitted = try XCTUnwrap(model["kappa_rank_s_per_byte"] as? [String: Double])
        for (wire, value) in kappaRank { XCTAssertEqual(try XCTUnwrap(fitted[wire]), value, accuracy: value * 1e-4, wire) }
        let measured = try XCTUnwrap(model["kappa_cpu_s_per_byte"] as? [String: Double])
        for (wire, value) in kappaCPU { XCTAssertEqual(try XCTUnwrap(measured[wire]), value, accuracy: value * 1e-9, wire) }
        let rows = try XCTUnwrap(model["measured_vs_predicted"] as? [[String: Any]])
        XCTAssertEqual(rows.count, 36)
        for row in rows {
            let key = "\(row["rate"]!) \(row["shape"]!) \(row["wire"]!) \(row["N"]!)"
            let predicted = try XCTUnwrap(row["allreduce_predicted_s"] as? Double)
            XCTAssertEqual(predicted, try XCTUnwrap(expected[key]), accuracy: expected[key]! * 1e-4, key)
            XCTAssertEqual(try XCTUnwrap(row["allgather_dev"] as? Double), 0, accuracy: 1e-4, key)
        }
        // 1 Gbit/s is the link's limit at every N; at 10 Gbit/s one rank's ring (2 ranks) or the
        // 2 shared cores (4 ranks; fp32 at 3 ranks is still the rank's: 1.5 x 0.7 < 1.2 ns).
        func bound(_ rate: String, _ wire: String, _ n: Int) -> String? {
            rows.first { $0["rate"] as? String == rate && $0["wire"] as? String == wire && $0["N"] as? Int == n }?["bound"] as? String
        }
        XCTAssertTrue(rows.filter { $0["rate"] as? String == "1gbit" }.allSatisfy { $0["bound"] as? String == "link" })
        XCTAssertEqual(bound("10gbit", "fp32", 2), "rank")
        XCTAssertEqual(bound("10gbit", "fp32", 3), "rank")
        XCTAssertEqual(bound("10gbit", "fp32", 4), "cores")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("plot.png").path))
        XCTAssertTrue(try String(contentsOf: dir.appendingPathComponent("table.md"), encoding: .utf8)
            .contains("Predicted (not fitted) all-reduce times within 20% of the measured median: 24 of 24"))
    }
}
