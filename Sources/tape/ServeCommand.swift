import ArgumentParser
import Foundation
import TapeLogging
import TapeCore
import TapeEngine
import TapeServe
import TapeStore

/// `tape serve`: the REST API over the stores, with OpenAPI docs, health, readiness and metrics
/// (docs/serving.md). `tape serve hash-key` prints the hash of an API key for config/serve.yaml.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the REST API (/api/v1), /openapi.json, Swagger UI at /docs, /health, /ready, /metrics.",
        subcommands: [ServeRunCommand.self, ServeHashKeyCommand.self],
        defaultSubcommand: ServeRunCommand.self)
}

struct ServeRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Serve until SIGINT/SIGTERM (the default of tape serve).",
        discussion: """
            The first line on stdout is `listening HOST:PORT`. PostgreSQL and Redis calls run on --store-threads \
            threads, never on the event loop; a store that is away answers 503 problem+json and the server keeps \
            running. Keys, read access and rate limits: --config (docs/serving.md).
            """)

    @Option(help: "Address to listen on, HOST:PORT (port 0: any free one).")
    var listen: String = "127.0.0.1:8000"

    @Option(help: "PostgreSQL store: postgres://user@host:port/db (required).")
    var store: String

    @Option(help: "Redis read-through cache: redis://host:port[/db] (optional).")
    var redis: String?

    @Option(help: "Key prefix in Redis (as the sink's).")
    var redisPrefix: String = "tape:"

    @Option(help: "Auth and rate limits (YAML). Default: config/serve.yaml if present, else open reads, no keys.")
    var config: String?

    @Option(help: "Folder with Swagger UI's static files (scripts/setup.sh copies them there).")
    var swaggerUI: String = ".tape/swagger-ui"

    @Option(help: "Folder of run folders listed at /api/v1/run-folders (each sub-folder with a summary.json).")
    var runsDir: String = "reports"

    @Option(help: "Threads (and connections per store) for PostgreSQL and Redis calls.")
    var storeThreads: Int = 4

    @Option(help: "Messages a WebSocket client (/ws) may have waiting before it is closed as too slow (code 4008).")
    var wsQueue: Int = 4096

    @Option(help: "A pipeline process's Prometheus endpoint (tape live|ingest|work --metrics-listen), read by /api/v1/pipeline and the dashboard (repeatable), e.g. http://127.0.0.1:9101/metrics.")
    var pipelineMetrics: [String] = []

    @Option(help: "Also serve /ws on this address, HOST:PORT (e.g. 127.0.0.1:8001); /ws stays on --listen too.")
    var wsListen: String?

    @OptionGroup var logging: LoggingOptions

    mutating func run() throws {
        logging.apply()
        guard let (host, port) = MetricsEndpoint.parse(listen: listen) else {
            throw ValidationError("--listen '\(listen)': expected HOST:PORT")
        }
        guard ["postgres", "postgresql"].contains(StoreURL.scheme(of: store)) else {
            throw ValidationError("--store '\(StoreURL.redacted(store))': expected postgres://…")
        }
        if let redis, StoreURL.scheme(of: redis) != "redis" {
            throw ValidationError("--redis '\(StoreURL.redacted(redis))': expected redis://host:port[/db]")
        }
        guard (1...64).contains(storeThreads) else { throw ValidationError("--store-threads: expected 1 ... 64") }
        guard (1...1_000_000).contains(wsQueue) else { throw ValidationError("--ws-queue: expected 1 ... 1000000") }
        var serveConfig = ServeConfig()
        let defaultConfig = "config/serve.yaml"
        let configPath = config ?? (FileManager.default.fileExists(atPath: defaultConfig) ? defaultConfig : nil)
        if let configPath {
            do { serveConfig = try ServeConfig.load(path: configPath) }
            catch { fail("\(configPath): \(error)", code: TapeExit.unusableInput) }
        }
        var storeSettings = Stores.Settings(postgresURL: store, redisURL: redis)
        storeSettings.redisPrefix = redisPrefix
        storeSettings.threadCount = storeThreads
        var settings = ServeServer.Settings(stores: storeSettings)
        settings.host = host
        settings.port = port
        settings.config = serveConfig
        settings.swaggerUIDirectory = swaggerUI
        settings.runsDirectory = runsDir
        settings.webSocketQueueCapacity = wsQueue
        for url in pipelineMetrics where !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
            throw ValidationError("--pipeline-metrics '\(url)': expected http://HOST:PORT/metrics")
        }
        settings.pipelineMetricsURLs = pipelineMetrics
        if let wsListen {
            guard let address = MetricsEndpoint.parse(listen: wsListen) else {
                throw ValidationError("--ws-listen '\(wsListen)': expected HOST:PORT")
            }
            guard redis != nil else { throw ValidationError("--ws-listen needs --redis (the updates come through Redis)") }
            settings.webSocketListen = address
        }
        let server: ServeServer
        do { server = try ServeServer(settings: settings) } catch { fail("\(error)", code: TapeExit.unusableInput) }
        if !FileManager.default.fileExists(atPath: swaggerUI + "/swagger-ui-bundle.js") {
            tapeLogger.warning(.text("tape: serve: no Swagger UI in \(swaggerUI) (run scripts/setup.sh); "
                               + "/docs answers 503, the API is unaffected"), metadata: ["event": "no_swagger_ui"])
        }
        let failure = waitForTask {
            try await server.run(onListening: { address in
                FileHandle.standardOutput.write(Data("listening \(address)\n".utf8))
                tapeLogger.info("tape: serve: listening on \(address)", metadata: ["event": "started", "address": .string(address)])
            }, onWebSocketListening: { address in
                FileHandle.standardOutput.write(Data("websocket listening \(address)\n".utf8))
            })
        }
        if let message = failure { fail("serve: \(message)", code: TapeExit.internalError) }
        tapeLogger.info("tape: serve: stopped", metadata: ["event": "stopped"])
    }
}

struct ServeHashKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-key",
        abstract: "Print the SHA-256 hash of an API key, for auth.keys[].sha256 in config/serve.yaml.",
        discussion: """
            KEY `-` reads the key from the first line of stdin (keeps it out of shell history). --generate makes a \
            random key and prints both.
            """)

    @Argument(help: "The key (or - for stdin).")
    var key: String?

    @Flag(help: "Generate a random 32-byte key (hex) and print `KEY HASH`.")
    var generate = false

    mutating func run() throws {
        if generate {
            var bytes = [UInt8](repeating: 0, count: 32)
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
            let key = bytes.map { String(format: "%02x", $0) }.joined()
            print("\(key) \(ServeConfig.hash(key: key))")
            return
        }
        guard var key else { throw ValidationError("give a KEY (or - for stdin, or --generate)") }
        if key == "-" { key = readLine(strippingNewline: true) ?? "" }
        guard !key.isEmpty else { throw ValidationError("the key is empty") }
        print(ServeConfig.hash(key: key))
    }
}
