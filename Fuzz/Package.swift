// swift-tools-version:6.0
// Tape's fuzz targets: one libFuzzer executable (`tape-fuzz`, target chosen by TAPE_FUZZ_TARGET) over the
// readers and decoders of the main package. A package of its own so that the main package's
// `swift build` / `swift test` never need the sanitizer flags: scripts/fuzz.sh builds this one with
// `--sanitize=fuzzer --sanitize=address` (every module, the project's included, is instrumented).
import PackageDescription

/// The main package is the folder above; its identity is that folder's name (a worktree, a CI clone…).
let mainPackageIdentity = String(Context.packageDirectory.split(separator: "/").dropLast().last ?? "Tape")

let package = Package(
    name: "TapeFuzz",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(path: ".."),
    ],
    targets: [
        .executableTarget(
            name: "tape-fuzz",
            dependencies: [.product(name: "TapeInputs", package: mainPackageIdentity)],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
