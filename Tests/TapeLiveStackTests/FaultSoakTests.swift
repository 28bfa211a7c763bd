import Foundation
import TapeTestSupport
import XCTest

/// The 2-minute fault soak (`SOAK_SECONDS=120 scripts/soak.sh`, docs/operations.md): the live stack at 15,000
/// messages/s against private PostgreSQL, Redis and tansu servers of its own, with a worker and `tape serve`
/// killed, PostgreSQL stopped `-m immediate`, Redis and the broker restarted, the feed dropped and garbled;
/// every check of scripts/soak_check.py must pass.
final class FaultSoakTests: XCTestCase {
    ///
    /// Not in `make test` yet (run it with TAPE_SOAK_TEST=1, or `make soak`): it fails on a crash in librdkafka
    /// 2.8.0 itself — after the broker restart tansu re-creates the topic with a new topic id, and both
    /// `tape work` members die of SIGSEGV in librdkafka's metadata cache (gdb: `rd_kafka_metadata_update_op` →
    /// `rd_kafka_metadata_cache_find` → `rd_avl_find` → `strcmp`, on librdkafka's main thread; upstream
    /// confluentinc/librdkafka#4964, a stale by-id entry after the same topic comes back with another id).
    /// The supervisor restarts them and the outputs stay exact, but a crash is a crash: the soak stays red
    /// until librdkafka is fixed here (docs/operations.md).
    func testTheTwoMinuteSoakLosesNothingAndEqualsTheReplay() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["TAPE_SOAK_TEST"] == "1",
                          "the 2-minute soak runs with TAPE_SOAK_TEST=1 or `make soak` (see above: a librdkafka 2.8.0 crash)")
        let root = packageRoot().path
        let tape = root + "/.build/release/tape"
        try requireOrSkip(FileManager.default.isExecutableFile(atPath: tape), "the built binary \(tape)")
        for tool in ["/usr/lib/postgresql/15/bin/initdb", "/usr/bin/redis-server", "/usr/bin/psql"] {
            try requireOrSkip(FileManager.default.isExecutableFile(atPath: tool), "\(tool) (scripts/setup.sh)")
        }
        _ = try PrivateServer.tansu()   // the soak starts its own; this checks that tansu is installed
        let folder = root + "/.tape/soak-test-\(getpid())"
        let output = NSTemporaryDirectory() + "tape-soak-\(getpid()).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let pid = try XCTUnwrap(spawnInBackground(
            ["/bin/bash", "-c", "cd '\(root)' && scripts/sample.sh > /dev/null && SOAK_SECONDS=120 SOAK_DIR='\(folder)' "
             + "TAPE='\(tape)' scripts/soak.sh"], stdout: output, stderr: output))
        var code = waitForExit(pid, seconds: 600)
        if code == nil {
            kill(pid, SIGTERM)
            code = waitForExit(pid)
        }
        let printout = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        print(printout)
        try requireOrSkip(!printout.contains("sample: ") || !printout.contains("not found"), "../shared/data (make sample)")
        XCTAssertEqual(code, 0, "scripts/soak.sh exit code (printout above; folder \(folder) kept)")
        XCTAssertTrue(printout.contains("soak: PASSED"), "the printout above says which check failed")
        XCTAssertFalse(printout.contains("FAIL "), "the printout above says which check failed")
        for fault in ["work_kill", "postgres_immediate_stop", "redis_restart", "serve_kill", "broker_restart"] {
            XCTAssertTrue(printout.contains("fault \(fault): recovered in "), "\(fault) injected and recovered")
            XCTAssertFalse(printout.contains("fault \(fault): recovered in timeout"), "\(fault) recovered in time")
        }
        XCTAssertTrue(printout.range(of: #"[1-9][0-9]* drops, [1-9][0-9]* garbled"#, options: .regularExpression) != nil,
                      "feed drops and garbled messages")
        if code == 0 { try? FileManager.default.removeItem(atPath: folder) }
    }
}
