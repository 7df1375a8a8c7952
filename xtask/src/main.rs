//! `cargo xtask <command>`: the project's set-up, demo and test entry points.
//!
//! - `setup`: installs the Debian packages the workspace and its tests need (as root, with
//!   apt-get), or names them when it cannot.
//! - `test`: setup, then format check, clippy with warnings denied, the fuzz harnesses'
//!   build, `swift --check`, every test of the workspace, and the FFI's pytest suite through
//!   UniFFI's Python bindings (release profile: the virtual-time target tests
//!   simulate minutes of streaming and are exact, not timed). Tests that need root, network
//!   namespaces or avahi-daemon start what they need themselves, and skip with a printed
//!   reason where they cannot.
//! - `demo`: setup, then builds `tandem-send` and `tandem-recv`, pairs them (keys in a
//!   scratch directory) and streams the test pattern from one to the other over loopback for
//!   10 s on the embedded defaults, sealed, with the receiver's live stats (in a window when
//!   a display exists).
//! - `swift [--check]`: regenerates the Swift bindings (`swift-bindings/Sources/Tandem/
//!   Generated/Tandem.swift`, `swift-bindings/Headers/`) from the Linux build of
//!   `tandem-ffi`; with `--check`, fails naming each committed file that differs from a
//!   fresh generation instead (the test command runs this).
//! - `bench`: the criterion benchmarks.
//! - `fuzz --seconds N`: every cargo-fuzz target for N seconds each (needs cargo-fuzz).
//! - `flood [--datagrams N]`: the hostile-flood tests (`tests/flood.rs`) with N datagrams
//!   per flood (default 1,000,000; `cargo xtask test` runs them with 60,000).
//! - `soak [--minutes N]`: the fault suite's soak (`tests/faults.rs`: sender and receiver
//!   at 60 fps, RSS, descriptors and threads sampled every second, their slopes printed and
//!   bounded) for N minutes (default 30; `cargo xtask test` runs it for 2).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Debian packages the workspace needs to build and run, with the reason for each.
const SYSTEM_PACKAGES: &[(&str, &str)] = &[
    ("pkg-config", "locates system libraries for -sys crates"),
    ("nasm", "assembles rav1e's and OpenH264's x86 kernels"),
    (
        "g++",
        "compiles OpenH264 (C++) from source for the openh264 crate",
    ),
    ("libaom-dev", "libaom, the realtime AV1 encoder (aom-sys)"),
    ("libdav1d-dev", "libdav1d 1.0, the AV1 decoder (dav1d-sys)"),
    (
        "libclang-dev",
        "libclang, loaded by bindgen when aom-sys generates its bindings",
    ),
];

/// Debian packages only the tests need.
const TEST_PACKAGES: &[(&str, &str)] = &[
    (
        "dav1d",
        "the dav1d command-line player, which a test uses to read our IVF files",
    ),
    (
        "iproute2",
        "`ip netns` and veth links for the two-host tests",
    ),
    ("dbus", "the system bus avahi-daemon registers on"),
    (
        "avahi-daemon",
        "a real mDNS responder for the discovery interop tests",
    ),
    (
        "avahi-utils",
        "avahi-browse and avahi-publish, the interop tests' other side",
    ),
    (
        "libavahi-compat-libdnssd1",
        "libdns_sd.so.1, the dns_sd.h API that the native DNS-SD backend loads on Linux",
    ),
    (
        "xvfb",
        "a virtual X server for tandem-recv's window test and tandem-capture's screen tests (neither needs a build-time package)",
    ),
    (
        "x11-apps",
        "xwd, which screenshots the virtual X server in the window test (far smaller than imagemagick)",
    ),
    (
        "x264",
        "the x264 command-line encoder: a foreign H.264 stream for the FFI's send_encoded test (test_h264.py)",
    ),
];

/// Fuzz targets of `crates/tandem-proto/fuzz`.
const FUZZ_TARGETS: &[&str] = &[
    "parse_datagram",
    "receiver_state",
    "handshake",
    "secure_receiver",
    "session",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Where cargo builds: `CARGO_TARGET_DIR` when set (relative to the root, where every
/// command here runs), else `target/` under the root.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root().join(dir),
        _ => root().join("target"),
    }
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

/// C libraries found through pkg-config: (pkg-config name, minimum version, Debian package,
/// Homebrew formula).
const PKG_CONFIG_LIBRARIES: &[(&str, &str, &str, &str)] = &[
    ("aom", "3.0.0", "libaom-dev", "aom"),
    ("dav1d", "1.0.0", "libdav1d-dev", "dav1d"),
];

/// Checks that pkg-config finds every C library, naming the package for each one it does
/// not. Cargo builds dav1d-sys (and may build aom-sys) before tandem-codec's own build
/// script can say this, and their failure names a `.pc` file, not a package.
fn check_libraries() -> Result<()> {
    let mut missing = Vec::new();
    for (name, min, deb, brew) in PKG_CONFIG_LIBRARIES {
        let found = Command::new("pkg-config")
            .args([&format!("--atleast-version={min}"), *name])
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(format!(
                "{name} >= {min} (Debian/Ubuntu: apt-get install {deb}; macOS: brew install {brew})"
            ));
        }
    }
    if !missing.is_empty() {
        bail!(
            "system libraries not found by pkg-config:\n  {}",
            missing.join("\n  ")
        );
    }
    Ok(())
}

/// Installs what is missing of `packages` (as root, with apt-get), or names it.
fn setup(packages: &[&[(&str, &str)]]) -> Result<()> {
    let wanted: Vec<(&str, &str)> = packages.iter().flat_map(|p| p.iter().copied()).collect();
    if !Path::new("/usr/bin/dpkg-query").exists() {
        eprintln!(
            "xtask: not a Debian system; make sure these are installed: {}",
            wanted
                .iter()
                .map(|(p, _)| *p)
                .collect::<Vec<_>>()
                .join(", ")
        );
        return check_libraries();
    }
    let missing: Vec<&str> = wanted
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| !installed(p))
        .collect();
    if missing.is_empty() {
        return check_libraries();
    }
    for (p, why) in wanted.iter().filter(|(p, _)| missing.contains(p)) {
        eprintln!("xtask: missing {p} ({why})");
    }
    if !is_root() {
        bail!(
            "missing system packages; run: sudo apt-get install -y {}",
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    check_libraries()
}

fn test() -> Result<()> {
    setup(&[SYSTEM_PACKAGES, TEST_PACKAGES])?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--release",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The fuzz crate is outside the workspace (it needs cargo-fuzz's flags to run); building
    // it here keeps the harnesses from rotting.
    run(cargo().args([
        "check",
        "--manifest-path",
        "crates/tandem-proto/fuzz/Cargo.toml",
        "--bins",
    ]))?;
    let generated = generate_bindings()?;
    check_swift(&generated)?;
    test_with_summary(cargo().args(["test", "--workspace", "--release"]))?;
    pytest(&generated)
}

/// Where `generate_bindings` writes.
struct Generated {
    swift: PathBuf,
    python: PathBuf,
}

/// The generated Swift files and where each is committed.
const SWIFT_OUTPUTS: &[(&str, &str)] = &[
    (
        "Tandem.swift",
        "swift-bindings/Sources/Tandem/Generated/Tandem.swift",
    ),
    ("TandemFFI.h", "swift-bindings/Headers/TandemFFI.h"),
    (
        "TandemFFI.modulemap",
        "swift-bindings/Headers/module.modulemap",
    ),
];

/// Builds `tandem-ffi` (the library and, from the same build, its `uniffi-bindgen`) and
/// generates the Swift and Python bindings from the library, into `uniffi/` under the
/// target directory.
fn generate_bindings() -> Result<Generated> {
    run(cargo().args([
        "build",
        "--release",
        "-p",
        "tandem-ffi",
        "--features",
        "bindgen",
    ]))?;
    let release = target_dir().join("release");
    let library = release.join(if cfg!(target_vendor = "apple") {
        "libtandem_ffi.dylib"
    } else {
        "libtandem_ffi.so"
    });
    let out = target_dir().join("uniffi");
    let generated = Generated {
        swift: out.join("swift"),
        python: out.join("python"),
    };
    for (language, dir) in [("swift", &generated.swift), ("python", &generated.python)] {
        let _ = std::fs::remove_dir_all(dir);
        run(Command::new(release.join("uniffi-bindgen"))
            .args(["generate", "--library"])
            .arg(&library)
            .args(["--language", language, "--no-format", "--out-dir"])
            .arg(dir))?;
    }
    // The Python module loads the library from its own directory.
    std::fs::copy(
        &library,
        generated
            .python
            .join(library.file_name().unwrap_or_default()),
    )
    .context("copying the library beside the Python bindings")?;
    Ok(generated)
}

/// Copies freshly generated Swift sources into `swift-bindings/`.
fn swift(check: bool) -> Result<()> {
    let generated = generate_bindings()?;
    if check {
        return check_swift(&generated);
    }
    for (name, committed) in SWIFT_OUTPUTS {
        let to = root().join(committed);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::copy(generated.swift.join(name), &to)
            .with_context(|| format!("writing {}", to.display()))?;
        eprintln!("xtask: wrote {committed}");
    }
    Ok(())
}

/// Fails naming each committed Swift file that differs from the fresh generation.
fn check_swift(generated: &Generated) -> Result<()> {
    let mut stale = Vec::new();
    for (name, committed) in SWIFT_OUTPUTS {
        let fresh = std::fs::read(generated.swift.join(name))
            .with_context(|| format!("reading the generated {name}"))?;
        if std::fs::read(root().join(committed)).ok().as_deref() != Some(&fresh[..]) {
            stale.push(*committed);
        }
    }
    if !stale.is_empty() {
        bail!(
            "the committed Swift bindings differ from a fresh generation: {}; run `cargo xtask \
             swift` and commit the result",
            stale.join(", ")
        );
    }
    eprintln!("xtask: the committed Swift bindings match a fresh generation");
    Ok(())
}

/// The FFI's pytest suite, through the generated Python bindings.
fn pytest(generated: &Generated) -> Result<()> {
    let has_pytest = Command::new("python3")
        .args(["-m", "pytest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_pytest {
        run(Command::new("python3").args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "pytest",
        ]))
        .context("installing pytest (python3 -m pip install pytest)")?;
    }
    run(Command::new("python3")
        .args([
            "-m",
            "pytest",
            "-q",
            "-rs",
            "crates/tandem-ffi/tests/python",
        ])
        .env("TANDEM_FFI_PYTHON", &generated.python))
}

/// Runs `cargo test`, echoing its output, and closes with one line totalling every test
/// binary's result: cargo's own last line is the last binary's (often doc-tests with
/// nothing to run), which says nothing about the run as a whole.
fn test_with_summary(cmd: &mut Command) -> Result<()> {
    use std::io::{BufRead, BufReader};
    eprintln!("xtask: running {cmd:?}");
    let mut child = cmd
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.context("reading cargo test output")?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                for part in rest.split(';') {
                    let mut words = part.split_whitespace().rev();
                    let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                        continue;
                    };
                    let n: u64 = n.parse().unwrap_or(0);
                    match kind {
                        "passed" => passed += n,
                        "failed" => failed += n,
                        "ignored" => ignored += n,
                        _ => {}
                    }
                }
            }
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    println!("{passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Seconds the demo streams.
const DEMO_SECONDS: u32 = 10;

fn demo() -> Result<()> {
    setup(&[SYSTEM_PACKAGES])?;
    run(cargo().args([
        "build",
        "--release",
        "-q",
        "-p",
        "tandem-send",
        "-p",
        "tandem-recv",
    ]))?;
    let bin = target_dir().join("release");
    // A free loopback port (released at once: a race only another program started in the
    // same instant could lose us).
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .context("finding a free UDP port")?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let display =
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
    eprintln!(
        "xtask: streaming the test pattern (640x360@60, libaom) from tandem-send to tandem-recv \
         over loopback for {DEMO_SECONDS} s{}; receiver stats below",
        if display {
            ", in a window"
        } else {
            " (no display: headless)"
        }
    );
    // Pair the two first, with keys of their own in a scratch directory: the stream is
    // then authenticated and encrypted, as every real one is.
    let keys = std::env::temp_dir().join(format!("tandem-demo-{}", std::process::id()));
    let (recv_keys, send_keys) = (keys.join("recv"), keys.join("send"));
    let code = "246810";
    let mut shower = Command::new(bin.join("tandem-recv"))
        .arg("--keys")
        .arg(&recv_keys)
        .args(["--pair", "--listen", &listen, "--code", code])
        .spawn()
        .context("starting tandem-recv --pair")?;
    std::thread::sleep(std::time::Duration::from_millis(500));
    run(Command::new(bin.join("tandem-send"))
        .arg("--keys")
        .arg(&send_keys)
        .args(["--pair", "--peer", &listen, "--code", code]))?;
    let paired = shower.wait().context("waiting for tandem-recv --pair")?;
    if !paired.success() {
        bail!("pairing failed ({paired})");
    }
    let mut recv = Command::new(bin.join("tandem-recv"));
    recv.arg("--keys").arg(&recv_keys).args([
        "--listen",
        &listen,
        "--seconds",
        &(DEMO_SECONDS + 1).to_string(),
    ]);
    if !display {
        recv.arg("--headless");
    }
    let mut receiver = recv.spawn().context("starting tandem-recv")?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The sender's stats go to a pipe: one live line on the terminal is enough.
    let sender = Command::new(bin.join("tandem-send"))
        .arg("--keys")
        .arg(&send_keys)
        .args([
            "--peer",
            &listen,
            "--seconds",
            &DEMO_SECONDS.to_string(),
            "--json-stats",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting tandem-send")?;
    let out = sender
        .wait_with_output()
        .context("waiting for tandem-send")?;
    let recv_status = receiver.wait().context("waiting for tandem-recv")?;
    let last = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    eprintln!("xtask: the sender's last stats: {last}");
    let _ = std::fs::remove_dir_all(&keys);
    if !out.status.success() || !recv_status.success() {
        bail!(
            "the demo failed (sender {}, receiver {recv_status})",
            out.status
        );
    }
    Ok(())
}

fn fuzz(seconds: u64) -> Result<()> {
    let has_fuzz = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        bail!("cargo-fuzz is not installed; run: cargo install cargo-fuzz");
    }
    for t in FUZZ_TARGETS {
        run(cargo()
            .args([
                "fuzz",
                "run",
                "--fuzz-dir",
                "crates/tandem-proto/fuzz",
                t,
                "--",
            ])
            .arg(format!("-max_total_time={seconds}"))
            // cargo-fuzz needs nightly flags; the stable toolchain accepts them this way.
            .env("RUSTC_BOOTSTRAP", "1"))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("setup") => setup(&[SYSTEM_PACKAGES, TEST_PACKAGES]),
        Some("test") => test(),
        Some("demo") => demo(),
        Some("bench") => run(cargo().args(["bench", "-p", "tandem-benches"])),
        Some("swift") => match args.get(1).map(String::as_str) {
            None => swift(false),
            Some("--check") => swift(true),
            Some(other) => bail!("unknown argument {other:?} for swift; expected --check"),
        },
        Some("flood") => {
            let datagrams: u64 = match args.get(1).map(String::as_str) {
                Some("--datagrams") => args
                    .get(2)
                    .and_then(|s| s.parse().ok())
                    .context("--datagrams needs a whole number")?,
                None => 1_000_000,
                Some(other) => {
                    bail!("unknown argument {other:?} for flood; expected --datagrams N")
                }
            };
            run(cargo()
                .args(["test", "--release", "-p", "tandem-tests", "--test", "flood"])
                .args(["--", "--nocapture", "--test-threads", "1"])
                .env("TANDEM_FLOOD_DATAGRAMS", datagrams.to_string()))
        }
        Some("soak") => {
            let minutes: u64 = match args.get(1).map(String::as_str) {
                Some("--minutes") => args
                    .get(2)
                    .and_then(|s| s.parse().ok())
                    .context("--minutes needs a whole number")?,
                None => 30,
                Some(other) => bail!("unknown argument {other:?} for soak; expected --minutes N"),
            };
            run(cargo()
                .args([
                    "test",
                    "--release",
                    "-p",
                    "tandem-tests",
                    "--test",
                    "faults",
                ])
                .args(["soak", "--", "--nocapture"])
                .env("TANDEM_SOAK_SECONDS", (minutes * 60).to_string()))
        }
        Some("fuzz") => {
            let seconds = match args.get(1).map(String::as_str) {
                Some("--seconds") => args
                    .get(2)
                    .and_then(|s| s.parse().ok())
                    .context("--seconds needs a whole number of seconds")?,
                None => 60,
                Some(other) => bail!("unknown argument {other:?} for fuzz; expected --seconds N"),
            };
            fuzz(seconds)
        }
        Some(other) => {
            bail!(
                "unknown command {other:?}; expected setup, test, demo, swift, bench, fuzz, flood or soak"
            )
        }
        None => {
            bail!(
                "usage: cargo xtask <setup|test|demo|swift [--check]|bench|fuzz [--seconds N]|flood [--datagrams N]|soak [--minutes N]>"
            )
        }
    }
}
