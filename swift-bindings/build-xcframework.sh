#!/usr/bin/env bash
# Builds swift-bindings/TandemFFI.xcframework: the Rust engine (crates/tandem-ffi) as a
# static library for iOS devices, the iOS simulator and macOS, with libdav1d and libaom
# linked in, plus the C header and module map that the generated Swift imports.
#
# Runs on a Mac with Xcode (not just the command line tools: the iOS SDKs come with Xcode)
# and rustup:
#
#   brew install meson ninja cmake nasm pkg-config
#   swift-bindings/build-xcframework.sh                # everything
#   swift-bindings/build-xcframework.sh --skip-codecs  # reuse dav1d/libaom built before
#
# The steps, each a function below:
#   1. rustup adds the five Rust targets.
#   2. Per target, dav1d (meson) and libaom (cmake) are built as static libraries into
#      build/<target>/prefix. The engine finds them through pkg-config, as on Linux.
#   3. Per target, cargo builds libtandem_ffi.a against them (and, for macOS, the dylib
#      that uniffi-bindgen reads).
#   4. The C libraries go into the Rust archive, unless rustc has bundled them already.
#   5. lipo joins the simulator slices (arm64 + x86_64) and the macOS slices.
#   6. uniffi-bindgen regenerates Tandem.swift, TandemFFI.h and the module map.
#   7. xcodebuild -create-xcframework writes TandemFFI.xcframework.
#
# Versions: the Rust `dav1d` crate 0.9 binds the libdav1d 1.0 API (it accepts 1.0 to 1.2),
# and `aom-sys` needs libaom 3; these pins match what Debian 12 ships, where the engine is
# developed and tested. Override with DAV1D_VERSION / AOM_VERSION.

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BUILD="$HERE/build"
OUTPUT="$HERE/TandemFFI.xcframework"

DAV1D_VERSION="${DAV1D_VERSION:-1.0.0}"
AOM_VERSION="${AOM_VERSION:-v3.6.1}"
IOS_MIN=16.0
MACOS_MIN=13.0
TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)

usage() {
    cat <<EOF
usage: $(basename "$0") [--skip-codecs] [--clean]

  --skip-codecs  reuse dav1d and libaom from an earlier run (build/<target>/prefix)
  --clean        remove build/ first
EOF
}

die() {
    echo "build-xcframework: $*" >&2
    exit 1
}

step() {
    echo
    echo "==> $*"
}

SKIP_CODECS=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --skip-codecs) SKIP_CODECS=1 ;;
        --clean) rm -rf "$BUILD" ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown option $1"
            ;;
    esac
    shift
done

[[ "$(uname -s)" == Darwin ]] || die "this needs macOS with Xcode (the iOS SDKs come with it)"
for tool in xcrun xcodebuild lipo libtool nm cargo rustup git meson ninja cmake nasm pkg-config; do
    command -v "$tool" >/dev/null || die "missing $tool (brew install meson ninja cmake nasm pkg-config; rustup from rustup.rs)"
done

# Sets, for Rust target $1: SDK (xcrun's name), SDK_PATH, TRIPLE (clang's target, with the
# minimum OS), ARCH (Apple's name), CPU (meson's cpu_family) and PREFIX (where its C
# libraries go).
slice() {
    case "$1" in
        aarch64-apple-ios)
            SDK=iphoneos TRIPLE="arm64-apple-ios$IOS_MIN" ARCH=arm64 CPU=aarch64 ;;
        aarch64-apple-ios-sim)
            SDK=iphonesimulator TRIPLE="arm64-apple-ios$IOS_MIN-simulator" ARCH=arm64 CPU=aarch64 ;;
        x86_64-apple-ios)
            SDK=iphonesimulator TRIPLE="x86_64-apple-ios$IOS_MIN-simulator" ARCH=x86_64 CPU=x86_64 ;;
        aarch64-apple-darwin)
            SDK=macosx TRIPLE="arm64-apple-macos$MACOS_MIN" ARCH=arm64 CPU=aarch64 ;;
        x86_64-apple-darwin)
            SDK=macosx TRIPLE="x86_64-apple-macos$MACOS_MIN" ARCH=x86_64 CPU=x86_64 ;;
        *) die "unknown target $1" ;;
    esac
    SDK_PATH="$(xcrun --sdk "$SDK" --show-sdk-path)"
    PREFIX="$BUILD/$1/prefix"
}

# Runs a command with the environment cargo needs for the current slice.
with_slice_env() {
    # Only this slice's .pc files: a Homebrew dav1d (a newer, incompatible version, and
    # built for the host) must never be found instead.
    # SYSTEM_DEPS_LINK=static makes system-deps (used by dav1d-sys and aom-sys) emit
    # static link lines; PKG_CONFIG_ALL_STATIC adds the libraries' private dependencies.
    # bindgen (aom-sys) parses libaom's headers for the target, not the host.
    env \
        PKG_CONFIG_ALLOW_CROSS=1 \
        PKG_CONFIG_ALL_STATIC=1 \
        PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig" \
        PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" \
        SYSTEM_DEPS_LINK=static \
        BINDGEN_EXTRA_CLANG_ARGS="--target=$TRIPLE -isysroot $SDK_PATH" \
        IPHONEOS_DEPLOYMENT_TARGET="$IOS_MIN" \
        MACOSX_DEPLOYMENT_TARGET="$MACOS_MIN" \
        "$@"
}

# 1.
add_rust_targets() {
    step "rustup targets"
    rustup target add "${TARGETS[@]}"
}

fetch_sources() {
    mkdir -p "$BUILD/src"
    if [[ ! -d "$BUILD/src/dav1d-$DAV1D_VERSION" ]]; then
        git clone --depth 1 --branch "$DAV1D_VERSION" \
            https://code.videolan.org/videolan/dav1d.git "$BUILD/src/dav1d-$DAV1D_VERSION"
    fi
    if [[ ! -d "$BUILD/src/aom-$AOM_VERSION" ]]; then
        git clone --depth 1 --branch "$AOM_VERSION" \
            https://aomedia.googlesource.com/aom "$BUILD/src/aom-$AOM_VERSION"
    fi
}

# 2a. dav1d, for the current slice.
build_dav1d() {
    local target=$1
    local dir="$BUILD/$target/dav1d"
    local cross="$BUILD/$target/meson-cross.ini"
    local cc ar strip nasm
    cc="$(xcrun --sdk "$SDK" --find clang)"
    ar="$(xcrun --sdk "$SDK" --find ar)"
    strip="$(xcrun --sdk "$SDK" --find strip)"
    nasm="$(command -v nasm)"
    mkdir -p "$BUILD/$target"
    # A cross file even for the host's own architecture: it pins the SDK and the minimum
    # OS version, which meson would otherwise take from the environment.
    cat >"$cross" <<EOF
[binaries]
c = '$cc'
ar = '$ar'
strip = '$strip'
nasm = '$nasm'

[built-in options]
c_args = ['-target', '$TRIPLE', '-isysroot', '$SDK_PATH']
c_link_args = ['-target', '$TRIPLE', '-isysroot', '$SDK_PATH']

[host_machine]
system = 'darwin'
cpu_family = '$CPU'
cpu = '$CPU'
endian = 'little'
EOF
    rm -rf "$dir"
    meson setup "$dir" "$BUILD/src/dav1d-$DAV1D_VERSION" \
        --cross-file "$cross" \
        --prefix "$PREFIX" \
        --libdir lib \
        --buildtype release \
        --default-library static \
        -Denable_tools=false \
        -Denable_tests=false \
        -Dbitdepths=8
    ninja -C "$dir"
    meson install -C "$dir"
}

# 2b. libaom, for the current slice.
build_aom() {
    local target=$1
    local dir="$BUILD/$target/aom"
    local args=(
        -G Ninja
        -DCMAKE_BUILD_TYPE=Release
        -DCMAKE_INSTALL_PREFIX="$PREFIX"
        -DCMAKE_INSTALL_LIBDIR=lib
        -DCMAKE_OSX_SYSROOT="$SDK_PATH"
        -DCMAKE_OSX_ARCHITECTURES="$ARCH"
        -DAOM_TARGET_CPU="$ARCH"
        -DBUILD_SHARED_LIBS=0
        -DENABLE_TESTS=0
        -DENABLE_EXAMPLES=0
        -DENABLE_DOCS=0
        -DENABLE_TOOLS=0
        -DENABLE_TESTDATA=0
        # The engine decodes with dav1d; only the encoder is used.
        -DCONFIG_AV1_DECODER=0
    )
    if [[ "$SDK" == macosx ]]; then
        args+=(-DCMAKE_OSX_DEPLOYMENT_TARGET="$MACOS_MIN")
    else
        # Not CMAKE_SYSTEM_NAME=iOS: libaom's build logic (assembler object format, OS
        # support) knows Apple systems only as "Darwin", and its own iOS toolchain files
        # keep that name and switch the SDK, as here. CMake then takes the iOS or
        # simulator minimum-version flag from the SDK path.
        args+=(-DCMAKE_SYSTEM_NAME=Darwin -DCMAKE_OSX_DEPLOYMENT_TARGET="$IOS_MIN")
    fi
    if [[ "$ARCH" == arm64 ]]; then
        # NEON is always there on arm64, so nothing to detect.
        args+=(-DCONFIG_RUNTIME_CPU_DETECT=0)
    else
        # With detection off, libaom would call its AVX2 code unconditionally, and the
        # x86_64 simulator may run under Rosetta, which lacks AVX2 before macOS 15.
        args+=(-DCONFIG_RUNTIME_CPU_DETECT=1 -DENABLE_NASM=1)
    fi
    rm -rf "$dir"
    cmake -S "$BUILD/src/aom-$AOM_VERSION" -B "$dir" "${args[@]}"
    cmake --build "$dir"
    cmake --install "$dir"
}

build_codecs() {
    if [[ $SKIP_CODECS == 1 ]]; then
        for target in "${TARGETS[@]}"; do
            slice "$target"
            [[ -f "$PREFIX/lib/pkgconfig/dav1d.pc" && -f "$PREFIX/lib/pkgconfig/aom.pc" ]] ||
                die "--skip-codecs: no dav1d/libaom for $target in $PREFIX; run without it once"
        done
        return
    fi
    fetch_sources
    for target in "${TARGETS[@]}"; do
        step "dav1d $DAV1D_VERSION and libaom $AOM_VERSION for $target"
        slice "$target"
        rm -rf "$PREFIX"
        build_dav1d "$target"
        build_aom "$target"
    done
}

# Whether archive $1 defines symbol $2. The whole listing is read, so that pipefail does
# not see nm killed by an early-exiting reader.
defines() {
    { nm -gU "$1" 2>/dev/null || true; } | awk -v sym="$2" '$NF == sym { found = 1 } END { exit !found }'
}

# 3 and 4.
build_rust() {
    for target in "${TARGETS[@]}"; do
        step "libtandem_ffi.a for $target"
        slice "$target"
        # cargo rustc to choose the crate types: iOS gets the archive only (a dylib would
        # need a full link against the iOS SDK for nothing); macOS also gets the dylib
        # that uniffi-bindgen reads in step 6. The printed native-static-libs line is what
        # an app must link besides the archive (Package.swift's linkerSettings).
        local types=staticlib
        [[ "$SDK" == macosx ]] && types=staticlib,cdylib
        (cd "$ROOT" && with_slice_env cargo rustc --release -p tandem-ffi --lib \
            --target "$target" --crate-type "$types" -- --print native-static-libs)

        local built="$ROOT/target/$target/release/libtandem_ffi.a"
        local out="$BUILD/$target/libtandem_ffi.a"
        local missing=()
        defines "$built" _dav1d_open || missing+=("$PREFIX/lib/libdav1d.a")
        defines "$built" _aom_codec_enc_init_ver || missing+=("$PREFIX/lib/libaom.a")
        if [[ ${#missing[@]} -gt 0 ]]; then
            libtool -static -no_warning_for_no_symbols -o "$out" "$built" "${missing[@]}"
        else
            # rustc bundles `static=` native libraries into a staticlib itself.
            cp "$built" "$out"
        fi
        if ! defines "$out" _dav1d_open || ! defines "$out" _aom_codec_enc_init_ver; then
            die "$out lacks dav1d or libaom symbols"
        fi
    done
}

# 5.
join_slices() {
    step "lipo"
    mkdir -p "$BUILD/universal/ios" "$BUILD/universal/ios-simulator" "$BUILD/universal/macos"
    cp "$BUILD/aarch64-apple-ios/libtandem_ffi.a" "$BUILD/universal/ios/"
    lipo -create \
        "$BUILD/aarch64-apple-ios-sim/libtandem_ffi.a" \
        "$BUILD/x86_64-apple-ios/libtandem_ffi.a" \
        -output "$BUILD/universal/ios-simulator/libtandem_ffi.a"
    lipo -create \
        "$BUILD/aarch64-apple-darwin/libtandem_ffi.a" \
        "$BUILD/x86_64-apple-darwin/libtandem_ffi.a" \
        -output "$BUILD/universal/macos/libtandem_ffi.a"
}

# 6.
generate_bindings() {
    step "uniffi-bindgen"
    local host
    case "$(uname -m)" in
        arm64) host=aarch64-apple-darwin ;;
        x86_64) host=x86_64-apple-darwin ;;
        *) die "unexpected host architecture $(uname -m)" ;;
    esac
    slice "$host"
    local generated="$BUILD/generated"
    rm -rf "$generated"
    mkdir -p "$generated"
    # Library mode reads the metadata the scaffolding embedded in the library, so the
    # bindings describe exactly the code in the archives. The generator itself is a host
    # program linking the engine, hence the host slice's codecs (and its target directory,
    # whose dependencies step 3 has built already).
    (cd "$ROOT" && with_slice_env cargo run --release -p tandem-ffi --features bindgen \
        --target "$host" --bin uniffi-bindgen -- generate \
        --library "$ROOT/target/$host/release/libtandem_ffi.dylib" \
        --language swift --out-dir "$generated")

    # Keep the checked-in copies in step with the library (they should already be equal:
    # `cargo xtask swift` makes them from the same sources on Linux).
    cp "$generated/Tandem.swift" "$HERE/Sources/Tandem/Generated/Tandem.swift"
    cp "$generated/TandemFFI.h" "$HERE/Headers/TandemFFI.h"
    cp "$generated/TandemFFI.modulemap" "$HERE/Headers/module.modulemap"
    if ! git -C "$ROOT" diff --quiet -- swift-bindings/Sources/Tandem/Generated swift-bindings/Headers; then
        echo "note: the generated bindings changed; commit them with the Rust change that caused it"
    fi

    # An XCFramework's headers directory holds the header and a module map named
    # module.modulemap, which is what makes `import TandemFFI` resolve.
    rm -rf "$BUILD/headers"
    mkdir -p "$BUILD/headers"
    cp "$HERE/Headers/TandemFFI.h" "$HERE/Headers/module.modulemap" "$BUILD/headers/"
}

# 7.
create_xcframework() {
    step "TandemFFI.xcframework"
    rm -rf "$OUTPUT"
    xcodebuild -create-xcframework \
        -library "$BUILD/universal/ios/libtandem_ffi.a" -headers "$BUILD/headers" \
        -library "$BUILD/universal/ios-simulator/libtandem_ffi.a" -headers "$BUILD/headers" \
        -library "$BUILD/universal/macos/libtandem_ffi.a" -headers "$BUILD/headers" \
        -output "$OUTPUT"
    echo
    echo "built $OUTPUT"
}

add_rust_targets
build_codecs
build_rust
join_slices
generate_bindings
create_xcframework
