//! Checks that the system libraries are installed and names the package for a missing one.
//!
//! Cargo runs dav1d-sys's build script before this one (it declares `links`), so when
//! libdav1d itself is missing, dav1d-sys's pkg-config error comes first; and aom-sys's may
//! race this one. `cargo xtask setup` (run by both README commands) makes the same check
//! before anything builds; this script covers builds that skip it.

use std::process::Command;

/// (pkg-config name, minimum version, Debian package, Homebrew formula)
const LIBRARIES: &[(&str, &str, &str, &str)] = &[
    ("aom", "3.0.0", "libaom-dev", "aom"),
    ("dav1d", "1.0.0", "libdav1d-dev", "dav1d"),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=PKG_CONFIG_PATH");
    let pkg_config = std::env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into());
    if Command::new(&pkg_config).arg("--version").output().is_err() {
        panic!(
            "tandem-codec: `{pkg_config}` was not found. Install it: `apt-get install \
             pkg-config` (Debian/Ubuntu) or `brew install pkg-config` (macOS)."
        );
    }
    let mut missing = Vec::new();
    for (name, min, deb, brew) in LIBRARIES {
        let ok = Command::new(&pkg_config)
            .args([&format!("--atleast-version={min}"), *name])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing.push(format!(
                "{name} >= {min}: `apt-get install {deb}` (Debian/Ubuntu) or `brew install {brew}` \
                 (macOS)"
            ));
        }
    }
    // libclang is what aom-sys's bindgen loads; it has no pkg-config file, so name it only.
    if !missing.is_empty() {
        panic!(
            "tandem-codec: system libraries missing or too old:\n  {}\n\
             aom-sys also needs libclang to generate its bindings: `apt-get install \
             libclang-dev` (Debian/Ubuntu); Xcode's command-line tools provide it on macOS. \
             `cargo xtask setup` installs all of these on Debian as root.",
            missing.join("\n  ")
        );
    }
}
