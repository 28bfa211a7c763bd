// swift-tools-version:6.0
// Tape: one deterministic market-data graph, driven by replayed recordings or live feeds.
// Data flows one way: sources (TapeRecordings, TapeFeeds) -> clock (TapeClock) -> graph (TapeGraph)
// -> sinks (TapeSinks). TapeReplay drives a replay; `tape` is the CLI that wires it all.
import PackageDescription

/// librdkafka 2.8, built from Debian trixie's source package by scripts/build_librdkafka.sh (called by
/// `make setup`) into this checkout's git-ignored .deps/librdkafka (docs/kafka.md). Linked by path, with an
/// rpath, so `tape` runs without LD_LIBRARY_PATH and no system librdkafka (bookworm's 2.0.2 cannot talk to
/// the local broker) is picked up. Only TapeKafka carries these flags; CRdKafka's header comes through its
/// shim by a relative path.
let librdkafkaLib = Context.packageDirectory + "/.deps/librdkafka/lib"
let librdkafkaLinking: [LinkerSetting] = [
    .unsafeFlags(["-L" + librdkafkaLib, "-Xlinker", "-rpath", "-Xlinker", librdkafkaLib]),
]

/// Modules written since the engine split use Swift 6 language mode (strict concurrency checking).
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]
// The clock and the graph run single-threaded on the hot path: every event touches class-held state
// (symbol slots, windows, timers), and Swift's dynamic exclusivity checks on those accesses cost about
// half of the graph's time (perf: swift_beginAccess + AccessSet::insert + TLS). Release builds of these
// modules (and the engine's and the merge's, which drive them per event) skip the dynamic checks; debug
// builds keep them (`swift test` in debug still checks).
let hotPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "Tape",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tape", targets: ["tape"]),
        // The input side (numbers, time, gzip, line reader, decoders, readers): what Fuzz/ links.
        .library(name: "TapeInputs", targets: ["TapeCore", "TapeIO", "TapeSources", "TapeFeeds", "TapeRecordings"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        // 1.16: `LogHandler.log(event:)`, which TapeLogging implements.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // `tape serve`'s and the pipeline processes' /metrics (Prometheus text): a registry passed around,
        // never a global MetricsSystem bootstrap. swift-metrics (2.13.0) comes with it, as its CoreMetrics; it is
        // not declared here because no target of ours imports it (SwiftPM warns about an unused dependency).
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Property-based tests (swift-testing `@Test` + `propertyCheck`) of the number and time parsers.
        .package(url: "https://github.com/x-sheep/swift-property-based.git", exact: "2.0.1"),
    ],
    targets: [
        // C libraries, each behind one small module (module map + header shim only).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLibPQ", path: "Sources/CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CXGBoost", path: "Sources/CXGBoost", providers: [.apt(["libxgboost-dev"])]),
        .systemLibrary(name: "CCurl", path: "Sources/CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CHiredis", path: "Sources/CHiredis", pkgConfig: "hiredis",
                       providers: [.apt(["libhiredis-dev"])]),
        // No pkgConfig: the header and library are this checkout's own build (.deps/librdkafka).
        .systemLibrary(name: "CRdKafka", path: "Sources/CRdKafka"),

        // Core: events, symbols and symbol naming, time, numbers, rejects. No I/O.
        .target(name: "TapeCore"),
        // What a long-running process tells its operator: swift-log's one handler (the human line, or JSON lines
        // with metadata; level and format from the command line) and its dependencies' states (`/ready`).
        .target(name: "TapeLogging", dependencies: ["TapeCore", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swift6),
        // Clock: the graph's only source of time (advanced by the stream), and receive-time stamping.
        .target(name: "TapeClock", dependencies: ["TapeCore"], swiftSettings: hotPathSettings),
        // I/O: gzip streams (the only code touching zlib), buffered files, line readers and writers.
        .target(name: "TapeIO", dependencies: ["TapeCore", "CZlib"], swiftSettings: swift6),
        // Sources: the EventSource protocol (event / idle / end), the merge, the validator. No I/O.
        .target(name: "TapeSources", dependencies: ["TapeCore"], swiftSettings: swift6 + hotPathSettings),
        // Wire decoders, shared by live connectors and raw-capture replay. No zlib.
        .target(name: "TapeFeeds", dependencies: ["TapeCore"]),
        // HTTP through libcurl (the only code touching it): blocking GET and POST on a reused handle.
        .target(name: "TapeHTTP", dependencies: ["CCurl"], swiftSettings: swift6),
        // REST polling connectors (Alpha Vantage, FMP): rate limits, backoff, HTTP through TapeHTTP.
        .target(name: "TapeREST", dependencies: ["TapeCore", "TapeFeeds", "TapeHTTP"], swiftSettings: swift6),
        // Recordings: format detection, file readers, the recorder.
        .target(name: "TapeRecordings", dependencies: ["TapeCore", "TapeSources", "TapeIO", "TapeFeeds"]),
        // Graph: bars, indicators, anomaly rules. No I/O, no wall clock.
        .target(name: "TapeGraph", dependencies: ["TapeCore", "TapeClock", "Yams"], swiftSettings: hotPathSettings),
        // Sinks: run folder CSVs, digests, reject log.
        .target(name: "TapeSinks", dependencies: ["TapeCore", "TapeGraph", "TapeIO",
                                                  .product(name: "Crypto", package: "swift-crypto")]),
        // The engine: source -> clock -> graph -> sinks, counters and summary. Shared by replay, live, workers.
        .target(name: "TapeEngine", dependencies: ["TapeCore", "TapeClock", "TapeIO", "TapeSources", "TapeGraph",
                                                 "TapeSinks"],
                swiftSettings: swift6 + hotPathSettings),
        // Backtesting: strategies, the simulated venue (fill rules, latency, fees, slippage), portfolio and PnL,
        // performance metrics. Pure: no I/O, no wall clock; driven by the stream and the graph's outputs.
        // docs/backtesting.md.
        .target(name: "TapeTrading", dependencies: ["TapeCore", "TapeClock", "TapeGraph"], swiftSettings: swift6 + hotPathSettings),
        // Backtest wiring: the trading node from the config's `trading:` section, and strategies in other
        // processes on the line protocol (the only trading code that does I/O: pipes to a child process).
        .target(name: "TapeBacktest", dependencies: ["TapeCore", "TapeGraph", "TapeTrading"], swiftSettings: swift6),
        // Gradient-boosted price model: features, training/evaluation, inference node. Only code touching XGBoost.
        .target(name: "TapeModel", dependencies: ["TapeCore", "TapeClock", "TapeGraph", "CXGBoost"]),
        // Replay driver: opens recordings, paces at N x, pause and progress; the engine does the rest.
        .target(name: "TapeReplay", dependencies: ["TapeLogging", "TapeCore", "TapeClock", "TapeIO", "TapeSources", "TapeRecordings",
                                                   "TapeGraph", "TapeSinks", "TapeEngine", "TapeMetrics"]),
        // Live: the stamped inbox, the live source (record, decode, validate), the live driver, `runLive`.
        .target(name: "TapeLive", dependencies: ["TapeLogging", "TapeCore", "TapeClock", "TapeIO", "TapeSources", "TapeFeeds",
                                                 "TapeRecordings", "TapeSinks", "TapeEngine", "TapeReplay", "TapeMetrics",
                                                 .product(name: "Histogram", package: "hdrhistogram-swift")],
                swiftSettings: swift6 + hotPathSettings),
        // Connectors: WebSocket (Binance, Polygon/Massive, Finage; the only code touching the WS client) and the
        // REST pollers (TapeREST) behind the one `FeedConnector` protocol.
        .target(name: "TapeConnectors", dependencies: ["TapeLogging",
            "TapeCore", "TapeFeeds", "TapeLive", "TapeREST",
            .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swift6),
        // Metrics: InfluxDB line protocol, the batching gzip writer (HTTP through TapeHTTP), the metrics sink.
        .target(name: "TapeMetrics", dependencies: ["TapeLogging", "TapeCore", "TapeClock", "TapeIO", "TapeHTTP", "TapeGraph",
                                                   "TapeSinks"],
                swiftSettings: swift6),
        // Stores: PostgreSQL through libpq (the only code touching it); InfluxDB: TapeMetrics; Redis: TapeRedis.
        .target(name: "TapeStore", dependencies: ["TapeLogging", "TapeCore", "TapeClock", "TapeIO", "TapeGraph", "TapeSinks", "CLibPQ",
                                                  .product(name: "Histogram", package: "hdrhistogram-swift")],
                swiftSettings: swift6),
        // Redis hot cache through hiredis (the only code touching it): latest state per symbol, capped bar
        // lists, the anomaly channel, a read-through helper. Runs on its own writer thread behind the engine.
        .target(name: "TapeRedis", dependencies: ["TapeLogging", "TapeCore", "TapeGraph", "TapeSinks", "CHiredis"],
                swiftSettings: swift6),
        // The Kafka bus's record format (`tick_data` values): no I/O, no librdkafka.
        .target(name: "TapeBus", dependencies: ["TapeCore"], swiftSettings: swift6),
        // `tape work`'s partitions: a graph per assigned partition, exactly once into PostgreSQL.
        .target(name: "TapeWork", dependencies: ["TapeLogging", "TapeCore", "TapeClock", "TapeGraph", "TapeSinks", "TapeEngine",
                                                 "TapeStore", "TapeBus", "TapeMetrics",
                                                 .product(name: "Histogram", package: "hdrhistogram-swift")],
                swiftSettings: swift6),
        // Kafka through librdkafka (the only code touching it): config, admin (topics, partition counts),
        // producer (idempotent, delivery reports counted, bounded queue), consumer (group with rebalance
        // events and starting offsets, or manual assignment). docs/kafka.md.
        .target(name: "TapeKafka", dependencies: ["CRdKafka", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swift6,
                linkerSettings: librdkafkaLinking),
        // The bus on Kafka: `tape ingest`'s publisher (resends what a broker restart held back) and
        // `tape work`'s consumer-group member (partitions assigned → PartitionWork).
        .target(name: "TapeKafkaBus", dependencies: ["TapeLogging", "TapeCore", "TapeClock", "TapeSinks", "TapeStore", "TapeWork", "TapeKafka",
                                                     .product(name: "Histogram", package: "hdrhistogram-swift")],
                swiftSettings: swift6),
        // The update hub of the WebSocket server: per-client subscriptions, snapshot then updates, bounded
        // queues (a slow client is closed, never waited for). No I/O.
        .target(name: "TapeUpdates", swiftSettings: swift6),
        // Alerts: anomalies and pipeline faults to Slack (webhook) and email (SMTP), both through TapeHTTP;
        // thresholds per rule, de-duplication, rate limits, retries, on a sender thread of their own.
        .target(name: "TapeAlerts", dependencies: ["TapeLogging", "TapeCore", "TapeClock", "TapeGraph", "TapeSinks", "TapeHTTP",
                                                   "TapeMetrics", "Yams"],
                swiftSettings: swift6),
        // Reports (HTML/CSV) and scenario regression tests.
        .target(name: "TapeReports", dependencies: ["TapeCore", "TapeIO", "TapeGraph", "TapeRecordings", "TapeSinks"]),
        // Run comparison (`tape diff`): two run folders, per symbol and kind, per-symbol digests first.
        .target(name: "TapeDiff", dependencies: ["TapeCore", "TapeSinks", "TapeEngine", "TapeReports"],
                swiftSettings: swift6),
        .target(name: "TapeScenarios", dependencies: ["TapeCore", "TapeIO", "TapeSources", "TapeGraph", "TapeReplay",
                                                      "TapeSinks", "TapeEngine", "TapeModel", "Yams", "TapeTrading", "TapeBacktest"]),
        // Feed simulator: serves recordings over loopback in vendors' own wire protocols (WebSocket and REST),
        // with pacing, time shift and fault injection, so live connectors can be tested against it.
        .target(name: "TapeFeedSim", dependencies: ["TapeLogging", "TapeCore", "TapeIO", "TapeSources", "TapeRecordings",
                                                    "TapeFeeds",
                                                    .product(name: "Hummingbird", package: "hummingbird"),
                                                    .product(name: "HummingbirdWebSocket",
                                                             package: "hummingbird-websocket"),
                                                    .product(name: "NIOCore", package: "swift-nio"),
                                                    .product(name: "NIOWebSocket", package: "swift-nio"),
                                                    .product(name: "Logging", package: "swift-log"),
                                                    .product(name: "ServiceLifecycle",
                                                             package: "swift-service-lifecycle")],
                swiftSettings: swift6),
        // `tape serve`: the REST API over the stores (PostgreSQL, Redis read-through), OpenAPI + Swagger UI,
        // problem+json errors, API keys and rate limits, /health /ready /metrics; and the Prometheus
        // exposition of the pipeline processes' metric points (`--metrics-listen`). docs/serving.md.
        .target(name: "TapeServe", dependencies: ["TapeLogging", "TapeCore", "TapeGraph", "TapeSinks", "TapeStore", "TapeRedis",
                                                  "TapeMetrics", "TapeUpdates", "TapeHTTP", "Yams",
                                                  .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                                                  .product(name: "Crypto", package: "swift-crypto"),
                                                  .product(name: "Hummingbird", package: "hummingbird"),
                                                  .product(name: "NIOCore", package: "swift-nio"),
                                                  .product(name: "NIOPosix", package: "swift-nio"),
                                                  .product(name: "Logging", package: "swift-log"),
                                                  .product(name: "Prometheus", package: "swift-prometheus"),
                                                  .product(name: "ServiceLifecycle",
                                                           package: "swift-service-lifecycle")],
                // The spec and the dashboard are compiled into the binary (`PackageResources.openapi_json`,
                // `PackageResources.dashboard_html`): found however `tape` is started.
                resources: [.embedInCode("Resources/openapi.json"), .embedInCode("Resources/dashboard.html")],
                swiftSettings: swift6),
        // The one executable.
        .executableTarget(name: "tape", dependencies: [
            "TapeCore", "TapeClock", "TapeIO", "TapeSources", "TapeRecordings", "TapeGraph", "TapeSinks", "TapeEngine",
            "TapeReplay", "TapeModel", "TapeReports", "TapeScenarios", "TapeDiff", "TapeLive", "TapeConnectors",
            "TapeREST", "TapeFeedSim", "TapeStore", "TapeMetrics", "TapeRedis", "TapeBus", "TapeWork", "TapeKafka",
            "TapeKafkaBus", "TapeAlerts", "TapeServe", "TapeTrading", "TapeBacktest", "TapeLogging", "Yams",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Histogram", package: "hdrhistogram-swift"),
        ]),

        // Test support shared by the test targets: requirements that skip locally and fail under CI=true,
        // processes, scratch PostgreSQL databases, servers of a test's own.
        .target(name: "TapeTestSupport", dependencies: ["TapeStore"], path: "Sources/TapeTestSupport",
                swiftSettings: swift6),

        .testTarget(name: "TapeCoreTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeClock",
                                                         .product(name: "PropertyBased", package: "swift-property-based")]),
        .testTarget(name: "TapeRecordingsTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeIO",
                                                                "TapeSources", "TapeFeeds", "TapeRecordings"],
                    exclude: ["bar_layouts.py"]),
        .testTarget(name: "TapeGraphTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeClock", "TapeGraph"]),
        .testTarget(name: "TapeSinksTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeIO", "TapeGraph",
                                                           "TapeRecordings", "TapeSinks",
                                                           .product(name: "Crypto", package: "swift-crypto")],
                    swiftSettings: swift6),
        .testTarget(name: "TapeModelTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeClock", "TapeIO",
                                                           "TapeSources", "TapeGraph", "TapeModel", "TapeReplay",
                                                           "TapeSinks", "TapeEngine"]),
        .testTarget(name: "TapeReportsTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeClock", "TapeIO", "TapeSources",
                                                             "TapeReports", "TapeReplay", "TapeSinks", "TapeEngine",
                                                             "TapeScenarios"]),
        .testTarget(name: "TapeScenariosTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeIO", "TapeSources",
                                                               "TapeScenarios", "TapeReplay", "TapeEngine"]),
        .testTarget(name: "TapeReplayTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeClock", "TapeIO",
                                                            "TapeSources", "TapeRecordings", "TapeGraph", "TapeSinks",
                                                            "TapeReplay", "TapeEngine",
                                                            .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "TapeStoreTests", dependencies: ["TapeTestSupport", "TapeLogging", "TapeStore", "TapeRedis", "TapeGraph",
                                                           "TapeCore", "TapeSinks", "TapeEngine", "TapeReplay",
                                                           "TapeBus", "TapeWork"],
                    swiftSettings: swift6),
        .testTarget(name: "TapeRedisTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeSources", "TapeGraph",
                                                           "TapeSinks", "TapeEngine", "TapeRecordings", "TapeRedis"],
                    swiftSettings: swift6),
        // Against the tansu broker of `make services`, with confluent-kafka (Python) as the independent client.
        .testTarget(name: "TapeKafkaTests", dependencies: ["TapeTestSupport", "TapeKafka"], swiftSettings: swift6),
        .testTarget(name: "TapeDiffTests", dependencies: ["TapeTestSupport", "TapeDiff"], swiftSettings: swift6),
        .testTarget(name: "TapeRESTTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeSources", "TapeFeeds",
                                                          "TapeRecordings", "TapeHTTP", "TapeREST"],
                    exclude: ["vendor_server.py"], swiftSettings: swift6),
        // Against the InfluxDB of `make services` (scripts/services.sh), with real captures from ../shared/data.
        .testTarget(name: "TapeMetricsTests", dependencies: ["TapeTestSupport", "TapeLogging", "TapeCore", "TapeIO", "TapeHTTP",
                                                             "TapeSources", "TapeRecordings", "TapeGraph",
                                                             "TapeSinks", "TapeEngine", "TapeMetrics"],
                    swiftSettings: swift6),
        // Runs the built `tape serve` against the PostgreSQL and Redis of `make services`, filled by `tape replay`.
        .testTarget(name: "TapeServeTests", dependencies: ["TapeTestSupport", "TapeStore", "TapeRedis", "TapeMetrics",
                                                           "TapeServe",
                                                           .product(name: "Prometheus", package: "swift-prometheus")],
                    swiftSettings: swift6),
        // Against vectorbt (scripts/vectorbt_reference.py) and numpy (scripts/metrics_reference.py) on the bar files.
        .testTarget(name: "TapeTradingTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeClock", "TapeSources",
                                                             "TapeRecordings", "TapeGraph", "TapeTrading", "TapeBacktest"],
                    swiftSettings: swift6),
        .testTarget(name: "TapeEngineTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeClock", "TapeSources",
                                                            "TapeGraph", "TapeSinks", "TapeEngine"],
                    swiftSettings: swift6),
        .testTarget(name: "TapeUpdatesTests", dependencies: ["TapeUpdates", "TapeRedis", "TapeGraph"],
                    swiftSettings: swift6),
        // Against real loopback receivers: a Python webhook server (alert_receiver.py) and aiosmtpd; real
        // captures replayed in-process; promtool on the monitoring config.
        .testTarget(name: "TapeAlertsTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeGraph", "TapeSinks",
                                                            "TapeEngine", "TapeReplay", "TapeLive", "TapeHTTP",
                                                            "TapeMetrics", "TapeAlerts", "Yams"],
                    exclude: ["alert_receiver.py"], swiftSettings: swift6),
        // Runs the built `tape feed-sim` over loopback with a WebSocket client and checks what it serves.
        .testTarget(name: "TapeFeedSimTests", dependencies: ["TapeTestSupport", "TapeCore", "TapeFeeds",
                                                             .product(name: "HummingbirdWSClient",
                                                                      package: "hummingbird-websocket"),
                                                             .product(name: "Logging", package: "swift-log")],
                    exclude: ["facts.py", "warmup_files.py"], swiftSettings: swift6),
        // The log handler (text and JSON lines, levels) and the readiness report, in-process.
        .testTarget(name: "TapeLoggingTests", dependencies: ["TapeLogging"], swiftSettings: swift6),
        // Runs `make live`'s scripts/live.sh (and the fault soak, scripts/soak.sh) with the built `tape`.
        .testTarget(name: "TapeLiveStackTests", dependencies: ["TapeTestSupport"], swiftSettings: swift6),
    ],
    // Swift 5 language mode for the modules that predate the engine split (the graph is single-threaded
    // by design); every new module opts into Swift 6 above.
    swiftLanguageModes: [.v5]
)
