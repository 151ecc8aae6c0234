// swift-tools-version:6.0
import Foundation
import PackageDescription

// The libFuzzer harness of srdpr (README.md here). A package of its own so that the main
// package's build and CI never see the fuzzer flags; `run.sh` builds it with
// `--sanitize fuzzer -Xswiftc -sanitize=fuzzer,address`, which instruments the project's modules too.
//
// SwiftPM names a path dependency after its directory, and the checkout may be called
// srdpr-swift, main, wt-fuzz...: the name is read off this file's path.
let projectRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let project = projectRoot.lastPathComponent

let package = Package(
    name: "srdpr-fuzz",
    dependencies: [.package(path: projectRoot.path)],
    targets: [
        // One binary for every target; SRDPR_FUZZ_TARGET picks one (Targets.swift lists them).
        .executableTarget(
            name: "SRDPRFuzz",
            dependencies: [
                .product(name: "Data", package: project),
                .product(name: "Model", package: project),
                .product(name: "Collectives", package: project),
                .product(name: "JobContracts", package: project),
            ],
            // No main: libFuzzer brings its own and calls LLVMFuzzerTestOneInput.
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]),
    ],
    swiftLanguageModes: [.v5]
)
