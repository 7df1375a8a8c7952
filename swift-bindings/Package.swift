// swift-tools-version: 5.9
// The Swift package for Tandem. `TandemFFI.xcframework` is not checked in: build it with
// `./build-xcframework.sh` (on a Mac with Xcode and rustup) before resolving the package.

import PackageDescription

let package = Package(
    name: "Tandem",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "Tandem", targets: ["Tandem"]),
    ],
    targets: [
        // The Rust engine as a static library with its C header and module map; libdav1d
        // and libaom are linked into it.
        .binaryTarget(name: "TandemFFI", path: "TandemFFI.xcframework"),
        .target(
            name: "Tandem",
            dependencies: ["TandemFFI"],
            path: "Sources/Tandem",
            linkerSettings: [
                // The Rust library itself needs only libSystem (sockets, dns_sd, getifaddrs,
                // the random source), which every app links. These are for the Swift layer.
                .linkedFramework("CoreMedia"),
                .linkedFramework("CoreVideo"),
                .linkedFramework("VideoToolbox"),
                .linkedFramework("Network"),
            ]
        ),
    ]
)
