import ArgumentParser
import Foundation
import TapeLogging
import TapeEngine
import TapeFeedSim
import TapeRecordings

/// `tape feed-sim`: parsing and wiring only; the simulator is `TapeFeedSim.FeedSimServer`.
struct FeedSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feed-sim",
        abstract: "Serve recordings over loopback in a vendor's own protocol (Binance, Polygon, Finage WebSocket; "
            + "Alpha Vantage, FMP REST), paced, time-shifted, with injected faults.",
        discussion: """
            The first line on stdout is `listening HOST:PORT` (also written to --port-file). Events' times \
            move by (start wall time - first receive time) with --shift now, so the session looks live. \
            Faults: --drop-every/--drop-after-messages close the connection; --stall-every/--stall-for \
            stop sending and reading; --garble-every sends broken JSON; --http-429-every answers 429; \
            --api-key makes a wrong key fail as the vendor fails it. Exits 0 on SIGINT/SIGTERM or, with \
            --exit-when-done, once the recording was served; 4 when an input is unusable. See docs/feed-sim.md.
            """)

    @Argument(help: "Recordings (any format Tape reads; --protocol binance serves raw Binance captures verbatim).")
    var inputs: [String] = []

    @Option(name: .customLong("protocol"),
            help: "Vendor protocol: \(FeedProtocol.allCases.map(\.rawValue).joined(separator: ", ")).")
    var feedProtocol: String

    @Option(help: "Listen address (loopback by default).") var host: String = "127.0.0.1"
    @Option(help: "Port; 0 = any free port.") var port: Int = 0
    @Option(help: "Write the bound port to this file.") var portFile: String?
    @Option(help: "Pacing: N times real time, or max (as fast as the client reads).") var speed: String = "1"
    @Option(help: "now: move times so the session looks live; none: recorded times.") var shift: String = "now"
    @Option(help: "Instrument name for inputs that carry none (bar files).") var symbol: String?

    @Option(help: "Close each connection after this many seconds of simulated time.") var dropEvery: Double?
    @Option(help: "Close each connection after it was sent this many messages.") var dropAfterMessages: Int?
    @Option(help: "Stall each connection every this many seconds (wall time).") var stallEvery: Double?
    @Option(help: "Length of a stall, seconds.") var stallFor: Double = 5
    @Option(help: "Every Nth message sent is garbled JSON.") var garbleEvery: Int?
    @Option(name: .customLong("http-429-every"), help: "Every Nth REST request is answered HTTP 429.")
    var http429Every: Int?
    @Option(help: "Require this API key (token, apikey, auth params).") var apiKey: String?
    @Option(help: "At most this many WebSocket connections at once.") var maxConnections: Int?
    @Option(help: "REST: at most this many calls per minute (then the vendor's throttle answer).") var rateLimit: Int?
    @Option(help: "REST: at most this many calls per run (the vendor's daily-limit answer).") var dailyLimit: Int?

    @Option(help: "Statistics JSON, rewritten every second and at exit.") var stats: String?
    @Flag(help: "Exit once the whole recording was served to a connected client.") var exitWhenDone = false

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give the recordings to serve") }
        guard FeedProtocol(rawValue: feedProtocol) != nil else {
            throw ValidationError("--protocol \(feedProtocol): expected one of "
                                  + FeedProtocol.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard speed == "max" || (Double(speed).map { $0 > 0 && $0.isFinite } ?? false) else {
            throw ValidationError("--speed \(speed): expected a positive number or max")
        }
        guard TimeShift(rawValue: shift) != nil else { throw ValidationError("--shift \(shift): expected now or none") }
        guard (0...65_535).contains(port) else { throw ValidationError("--port \(port): expected 0…65535") }
        for (name, value) in [("--drop-every", dropEvery), ("--stall-every", stallEvery)] {
            if let value, !(value > 0 && value.isFinite) {
                throw ValidationError("\(name) \(value): expected seconds > 0")
            }
        }
        guard stallFor >= 0, stallFor.isFinite else {
            throw ValidationError("--stall-for \(stallFor): expected seconds ≥ 0")
        }
        let counts = [("--drop-after-messages", dropAfterMessages), ("--garble-every", garbleEvery),
                      ("--http-429-every", http429Every), ("--max-connections", maxConnections),
                      ("--rate-limit", rateLimit), ("--daily-limit", dailyLimit)]
        for (name, value) in counts {
            if let value, value <= 0 { throw ValidationError("\(name) \(value): expected a positive count") }
        }
    }

    @OptionGroup var logging: LoggingOptions

    func run() throws {
        logging.apply()
        var configuration = FeedSimConfiguration(inputs: inputs, feedProtocol: FeedProtocol(rawValue: feedProtocol)!)
        configuration.host = host
        configuration.port = port
        configuration.portFile = portFile
        configuration.speed = speed == "max" ? nil : Double(speed)
        configuration.shift = TimeShift(rawValue: shift)!
        configuration.symbol = symbol
        configuration.statsPath = stats
        configuration.exitWhenDone = exitWhenDone
        configuration.faults.dropEverySeconds = dropEvery
        configuration.faults.dropAfterMessages = dropAfterMessages
        configuration.faults.stallEverySeconds = stallEvery
        configuration.faults.stallForSeconds = stallFor
        configuration.faults.garbleEvery = garbleEvery
        configuration.faults.http429Every = http429Every
        configuration.faults.apiKey = apiKey
        configuration.faults.maxConnections = maxConnections
        configuration.faults.rateLimitPerMinute = rateLimit
        configuration.faults.dailyLimit = dailyLimit

        let server: FeedSimServer
        do { server = try FeedSimServer(configuration: configuration) } catch {
            tapeLogger.error("tape: \(error)", metadata: ["event": "exit", "error": "\(error)"])
            throw ArgumentParser.ExitCode(TapeExit.unusableInput)
        }
        let failure = waitForTask {
            try await server.run { address in
                FileHandle.standardOutput.write(Data("listening \(address)\n".utf8))
                tapeLogger.info("tape: feed-sim: listening on \(address)", metadata: ["event": "started", "address": .string(address)])
            }
        }
        if let message = failure {
            tapeLogger.error("tape: feed-sim: \(message)", metadata: ["event": "exit", "error": .string(message)])
            throw ArgumentParser.ExitCode(TapeExit.internalError)
        }
    }
}
