import Foundation

/// Locations the tests share: the package root, `../shared/fixtures`, and the built `srdpr`.
public enum Fixtures {
    /// The package root, found from this file's path (Sources/TestSupport/Fixtures.swift).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/fixtures` beside the checkout (SRDPR_FIXTURES overrides it).
    public static var root: URL {
        if let override = ProcessInfo.processInfo.environment["SRDPR_FIXTURES"] {
            return URL(fileURLWithPath: override)
        }
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }

    public static func url(_ relativePath: String) -> URL {
        root.appendingPathComponent(relativePath)
    }

    /// The fixture ByteDatasets (paths under `root`) that the sample readers are checked on: what
    /// the original wrote for each pipeline, and CPython's pickle protocols 2, 3 and 5.
    public static let sampleDatasets = [
        "pipelines/all.bytedataset", "pipelines/with_hardneg.bytedataset", "pipelines/without_hardneg.bytedataset",
        "pickle_protocols/protocol2.bytedataset", "pickle_protocols/protocol3.bytedataset",
        "pickle_protocols/protocol5.bytedataset",
    ]

    /// `../shared/data` (real FAQ data).
    public static var sharedData: URL {
        packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
    }

    /// A fresh temporary directory, removed by the caller (or left for inspection on failure).
    public static func temporaryDirectory(_ prefix: String = "srdpr-test") throws -> URL {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
