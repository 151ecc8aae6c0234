// swift-tools-version:6.0
import PackageDescription

// Layout follows DESIGN.md: system-library shims for OpenBLAS and libzmq, one library per layer,
// and the `srdpr` executable that only wires subcommands to the libraries.
let package = Package(
    name: "srdpr-swift",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "srdpr", targets: ["SRDPR"]),
        .library(name: "Model", targets: ["Model"]),
        .library(name: "Data", targets: ["Data"]),
        .library(name: "Collectives", targets: ["Collectives"]),
        .library(name: "JobContracts", targets: ["JobContracts"]),
        .library(name: "Worker", targets: ["Worker"]),
        .library(name: "Retrieval", targets: ["Retrieval"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // No pkgConfig: libzmq.pc adds -isystem flags SwiftPM refuses; zmq.h is in /usr/include.
        .systemLibrary(name: "CZMQ", path: "Sources/CZMQ",
                       providers: [.apt(["libzmq3-dev"])]),

        // Cache prefetch for ByteDataset's batched random reads (__builtin_prefetch has no Swift spelling).
        .target(name: "CPrefetch", path: "Sources/CPrefetch"),
        .target(name: "Data", dependencies: ["CPrefetch", .product(name: "Logging", package: "swift-log"),
                                             .product(name: "Yams", package: "Yams")]),
        // The model layers' elementwise and row-wise kernels (GELU, softmax, LayerNorm, dropout, AdamW),
        // vectorised in C: AVX-512, AVX2+FMA and baseline builds, chosen at run time.
        .target(name: "CKernels", path: "Sources/CKernels", exclude: ["kernels-body.h", "attention-body.h", "gemm-body.h"]),
        .target(name: "Model", dependencies: ["CBLAS", "CKernels", "Data"]),
        // Atomics and futexes on memory shared by ring neighbours on one host.
        .target(name: "CSharedMemory", path: "Sources/CSharedMemory"),
        .target(name: "Collectives", dependencies: ["CZMQ", "CSharedMemory", "Data", .product(name: "Logging", package: "swift-log")]),
        // What the training loop and the ranks share: checkpoint format and state, control messages,
        // the step-executor interface. Neither side imports the other.
        .target(name: "JobContracts", dependencies: ["Data", "Model"]),
        // The training loop of every world size and the remote ranks' coordinator; never Worker.
        .target(name: "Coordinator", dependencies: ["Data", "Model", "Collectives", "JobContracts", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Worker", dependencies: ["Data", "Model", "Collectives", "JobContracts", .product(name: "Logging", package: "swift-log")]),
        // Passage index, exact maximum-inner-product search and retrieval metrics (evaluate); no Collectives.
        // Models are loaded by Model's InferenceModel, so not through the training's JobContracts.
        .target(name: "Retrieval", dependencies: ["CBLAS", "Data", "Model"]),
        // `srdpr index` and `srdpr encode` across processes and hosts: the coordinator hands out row-range shards over
        // the control channel, `srdpr index-worker`s send the embeddings back.
        .target(name: "DistributedIndex", dependencies: ["Collectives", "Data", "JobContracts", "Model", "Retrieval"]),
        // Benchmark drivers behind `srdpr bench ...`; the anchor comparisons live in Benchmarks/.
        .target(name: "Benchmarks", dependencies: ["CBLAS", "CKernels", "Data", "Model", "Collectives", "JobContracts", "Worker", "Retrieval"]),
        .executableTarget(
            name: "SRDPR",
            dependencies: [
                "Data", "Model", "Collectives", "JobContracts", "Coordinator", "Worker", "Retrieval", "DistributedIndex", "Benchmarks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),

        // Shared by the test targets only: fixture paths, float comparison, running the binary.
        .target(name: "TestSupport", dependencies: ["Data"], path: "Sources/TestSupport"),
        .testTarget(name: "DataTests", dependencies: ["Data", "TestSupport"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "CKernels", "Data", "TestSupport"]),
        .testTarget(name: "CollectivesTests", dependencies: ["Collectives", "CZMQ", "TestSupport"]),
        .testTarget(name: "CoordinatorTests", dependencies: ["Coordinator", "JobContracts", "Data", "Model", "TestSupport"]),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "JobContracts", "Model", "Data", "Collectives", "TestSupport"]),
        .testTarget(name: "RetrievalTests", dependencies: ["Retrieval", "DistributedIndex", "Data", "Model", "TestSupport"]),
        .testTarget(name: "EndToEndTests", dependencies: ["TestSupport", "Coordinator", "JobContracts", "Collectives", "Model", "Data"]),
    ],
    swiftLanguageModes: [.v5]
)
