import Foundation

/// Every `srdpr bench ...` prints its result as one JSON line on stdout (like the anchors in
/// ../shared/bench), so scripts can put our numbers and the anchors' side by side.
public enum BenchOutput {
    public static func printJSONLine(_ object: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}
