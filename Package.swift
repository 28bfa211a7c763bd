// swift-tools-version:6.0
// Tape: one deterministic market-data graph, driven by replayed recordings or live feeds.
// Data flows one way: sources (TapeRecordings, TapeFeeds) -> clock (TapeClock) -> graph (TapeGraph)
// -> sinks (TapeSinks). TapeReplay drives a replay; `tape` is the CLI that wires it all.
import PackageDescription

// The clock and the graph run single-threaded on the hot path: every event touches class-held state
// (symbol slots, windows, timers), and Swift's dynamic exclusivity checks on those accesses cost about
// half of the graph's time (perf: swift_beginAccess + AccessSet::insert + TLS). Release builds of these
// two modules skip the dynamic checks; debug builds keep them (`swift test` in debug still checks).
let hotPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Tape",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tape", targets: ["tape"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        // C libraries, each behind one small module (module map + header shim only).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CXGBoost", path: "Sources/CXGBoost", providers: [.apt(["libxgboost-dev"])]),

        // Core: events, symbols, time, numbers. No I/O.
        .target(name: "TapeCore"),
        // Clock: the only source of time.
        .target(name: "TapeClock", dependencies: ["TapeCore"], swiftSettings: hotPathSettings),
        // Sources: wire decoders (shared by live connectors and raw-capture replay) ...
        .target(name: "TapeFeeds", dependencies: ["TapeCore"]),
        // ... and recordings: gzip streams, formats, merge, rejects, recorder. Only code touching zlib.
        .target(name: "TapeRecordings", dependencies: ["TapeCore", "TapeFeeds", "CZlib"]),
        // Graph: bars, indicators, anomaly rules. No I/O, no wall clock.
        .target(name: "TapeGraph", dependencies: ["TapeCore", "TapeClock", "Yams"], swiftSettings: hotPathSettings),
        // Sinks: run folder CSVs, digest, summary.
        .target(name: "TapeSinks", dependencies: ["TapeCore", "TapeGraph", "TapeRecordings",
                                                  .product(name: "Crypto", package: "swift-crypto")]),
        // Gradient-boosted price model: features, training/evaluation, inference node. Only code touching XGBoost.
        .target(name: "TapeModel", dependencies: ["TapeCore", "TapeClock", "TapeGraph", "CXGBoost"]),
        // Replay driver: merge -> simulated clock -> graph -> sinks, pacing at N x.
        .target(name: "TapeReplay", dependencies: ["TapeCore", "TapeClock", "TapeRecordings", "TapeGraph", "TapeSinks"]),
        // Reports (HTML/CSV) and scenario regression tests.
        .target(name: "TapeReports", dependencies: ["TapeCore"]),
        .target(name: "TapeScenarios", dependencies: ["TapeCore", "TapeGraph", "TapeReplay", "TapeSinks", "TapeModel", "Yams"]),
        // The one executable.
        .executableTarget(name: "tape", dependencies: [
            "TapeCore", "TapeClock", "TapeRecordings", "TapeGraph", "TapeSinks", "TapeReplay",
            "TapeModel", "TapeReports", "TapeScenarios",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "TapeCoreTests", dependencies: ["TapeCore", "TapeClock"]),
        .testTarget(name: "TapeRecordingsTests", dependencies: ["TapeCore", "TapeFeeds", "TapeRecordings"]),
        .testTarget(name: "TapeGraphTests", dependencies: ["TapeCore", "TapeClock", "TapeGraph"]),
        .testTarget(name: "TapeModelTests", dependencies: ["TapeCore", "TapeClock", "TapeGraph", "TapeModel", "TapeReplay", "TapeSinks"]),
        .testTarget(name: "TapeReportsTests", dependencies: ["TapeCore", "TapeReports", "TapeReplay", "TapeSinks"]),
        .testTarget(name: "TapeScenariosTests", dependencies: ["TapeCore", "TapeScenarios", "TapeReplay"]),
        .testTarget(name: "TapeReplayTests", dependencies: ["TapeCore", "TapeClock", "TapeRecordings", "TapeGraph", "TapeSinks", "TapeReplay"]),
    ],
    // Swift 5 language mode: the graph is single-threaded by design and C interop (stderr, zlib
    // streams) is simpler without strict-concurrency annotations everywhere.
    swiftLanguageModes: [.v5]
)
