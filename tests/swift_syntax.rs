//! Every `.swift` file in `swift-bindings/` (the generated bindings, the hand-written layer,
//! the example app and `Package.swift`) parses with tree-sitter-swift without an error or a
//! missing node, and the XCFramework script is valid bash. There is no Swift compiler on
//! Linux hosts; this catches the mistakes a parser can (unbalanced braces, a stray token,
//! a broken string interpolation) and names the file, line and column of each.
//!
//! Version conditions (`#if swift(>=5.8)`, `#if compiler(>=6)`) are resolved first, as the
//! compiler would for Swift 6: the grammar does not accept a condition around an attribute
//! alone, which UniFFI's generated code has two hundred of. Other conditions (`canImport`,
//! `os`) stay, and both their branches are parsed. Valid Swift the grammar does not know is
//! rewritten to its equivalent first ([`GRAMMAR_GAPS`]), each gap named.

use std::path::{Path, PathBuf};

fn swift_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        // A built XCFramework or SwiftPM's build folder holds no sources of ours.
        if name == ".build" || name.to_string_lossy().ends_with(".xcframework") {
            continue;
        }
        if path.is_dir() {
            swift_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "swift") {
            out.push(path);
        }
    }
}

/// The places in `tree` that are errors or missing nodes: (line, column, what).
fn problems(tree: &tree_sitter::Tree) -> Vec<(usize, usize, String)> {
    let mut found = Vec::new();
    let mut cursor = tree.walk();
    let mut visit = true;
    loop {
        let node = cursor.node();
        if visit && (node.is_error() || node.is_missing()) {
            let at = node.start_position();
            let what = if node.is_missing() {
                format!("missing {}", node.kind())
            } else {
                "syntax error".to_owned()
            };
            found.push((at.row + 1, at.column + 1, what));
        }
        if visit && node.has_error() && cursor.goto_first_child() {
            continue;
        }
        if cursor.goto_next_sibling() {
            visit = true;
            continue;
        }
        if !cursor.goto_parent() {
            break;
        }
        visit = false;
    }
    found
}

/// Valid Swift that tree-sitter-swift 0.7 rejects, and the equivalent it accepts.
const GRAMMAR_GAPS: &[(&str, &str)] = &[
    // A closure whose body is the empty tuple (UniFFI's `let writeReturn = { () }`).
    ("{ () }", "{ }"),
];

/// The Swift version the sources are checked as (Xcode 16's compiler).
const SWIFT: (u32, u32) = (6, 0);

/// Whether `line` is `#if swift(>=X.Y)` or `#if compiler(>=X.Y)`, and if so whether it holds
/// for [`SWIFT`].
fn version_condition(line: &str) -> Option<bool> {
    let rest = line.trim().strip_prefix("#if ")?.trim();
    let inner = rest
        .strip_prefix("swift(>=")
        .or_else(|| rest.strip_prefix("compiler(>="))?
        .strip_suffix(')')?;
    let mut parts = inner.split('.').map(|p| p.parse::<u32>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.ok())?;
    Some((major, minor) <= SWIFT)
}

/// `text` with version conditions resolved; removed lines become empty, so that line
/// numbers stay those of the file.
fn resolve_versions(text: &str) -> String {
    // One entry per open `#if`: None for a condition kept as is, Some(branch taken) for a
    // version condition (true while in its true branch).
    let mut open: Vec<Option<bool>> = Vec::new();
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let t = line.trim();
        let keep = if let Some(holds) = version_condition(t) {
            open.push(Some(holds));
            false
        } else if t.starts_with("#if") {
            open.push(None);
            true
        } else if t == "#else" && matches!(open.last(), Some(Some(_))) {
            if let Some(Some(branch)) = open.last_mut() {
                *branch = !*branch;
            }
            false
        } else if t == "#endif" {
            matches!(open.pop(), Some(None) | None)
        } else {
            // Inside every enclosing version condition's taken branch.
            open.iter().all(|c| c.unwrap_or(true))
        };
        if keep {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn parser() -> tree_sitter::Parser {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_swift::LANGUAGE.into())
        .expect("tree-sitter-swift matches the tree-sitter version");
    parser
}

#[test]
fn every_swift_file_parses_without_errors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../swift-bindings");
    let mut files = Vec::new();
    swift_files(&root, &mut files);
    files.sort();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("Sources/Tandem/Generated/Tandem.swift")),
        "the generated bindings are missing under {}; run cargo xtask swift",
        root.display()
    );
    let mut parser = parser();
    let mut report = Vec::new();
    for file in &files {
        let mut text = resolve_versions(&std::fs::read_to_string(file).expect("readable"));
        for (gap, same) in GRAMMAR_GAPS {
            text = text.replace(gap, same);
        }
        let tree = parser.parse(&text, None).expect("a tree");
        for (line, col, what) in problems(&tree) {
            report.push(format!("{}:{line}:{col}: {what}", file.display()));
        }
    }
    println!("{} Swift files parsed", files.len());
    assert!(
        report.is_empty(),
        "Swift syntax problems:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_check_finds_a_broken_file() {
    // A test that could not fail would prove nothing: an unclosed brace and a stray token
    // must be reported.
    let mut parser = parser();
    let good = parser
        .parse("func f(x: Int) -> Int { return x + 1 }\n", None)
        .expect("tree");
    assert!(problems(&good).is_empty());
    let bad = parser
        .parse("func f(x: Int) -> Int { return x + }\nlet = 3\n", None)
        .expect("tree");
    assert!(!problems(&bad).is_empty());
}

#[test]
fn version_conditions_keep_the_branch_swift_6_takes() {
    let src = "#if swift(>=5.8)\n@a\n#else\n@b\n#endif\n#if compiler(>=7)\nx\n#endif\n\
               #if canImport(Foo)\ny\n#endif\n";
    assert_eq!(
        resolve_versions(src),
        "\n@a\n\n\n\n\n\n\n#if canImport(Foo)\ny\n#endif\n"
    );
}

#[test]
fn the_xcframework_script_is_valid_bash() {
    // It runs only on a Mac; here `bash -n` at least reads all of it.
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../swift-bindings/build-xcframework.sh");
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
