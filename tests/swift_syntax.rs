//! Every `.swift` file in `swift-bindings/` (the generated bindings, the hand-written layer,
//! the example app and `Package.swift`) parses with tree-sitter-swift without an error or a
//! missing node, and the XCFramework script is valid bash. There is no Swift compiler on
//! Linux hosts; this catches the mistakes a parser can (unbalanced braces, a stray token,
//! a broken string interpolation) and names the file, line and column of each.
//!
//! And every call the hand-written Swift (the layer in `Sources/Tandem` and the demo) makes
//! into the generated bindings names a declaration there with labels it accepts: an
//! initializer `Type(…)`, a static member `Type.member(…)`, an enum case, a free function,
//! or a method of a name the generated API declares (checked against every declaration of
//! that name, the hand-written layer's own included, since a parser knows no types;
//! Apple's own calls of the same names are listed in [`APPLE_CALLS`]). Labels are matched
//! in order, a parameter left out must have a default, and a trailing closure takes the
//! last one. A renamed or relabelled Rust export thus fails here, not first in Xcode.
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

/// One declared function or initializer: its argument labels, in order, each with whether
/// it has a default value (`_` for an unlabeled argument).
#[derive(Debug, Clone)]
struct Signature {
    params: Vec<(String, bool)>,
}

impl Signature {
    /// Whether a call with these labels (and maybe a trailing closure) can call it.
    fn accepts(&self, labels: &[String], trailing_closure: bool) -> bool {
        let mut declared = self.params.iter().peekable();
        for label in labels {
            loop {
                match declared.next() {
                    Some((l, _)) if l == label => break,
                    // A parameter the call leaves out must have a default.
                    Some((_, true)) => continue,
                    _ => return false,
                }
            }
        }
        let rest: Vec<_> = declared.collect();
        let needed = rest.iter().filter(|(_, default)| !default).count();
        needed == 0 || (trailing_closure && needed == 1 && !rest.last().is_some_and(|p| p.1))
    }
}

/// What a file declares: free functions and types' members by name, and type names.
#[derive(Debug, Default)]
struct Declarations {
    /// (type, member) → signatures; free functions under type "".
    members: std::collections::BTreeMap<(String, String), Vec<Signature>>,
    types: std::collections::BTreeSet<String>,
}

impl Declarations {
    fn signatures_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Signature> + 'a {
        self.members
            .iter()
            .filter(move |((_, m), _)| m == name)
            .flat_map(|(_, s)| s.iter())
    }

    fn declares(&self, name: &str) -> bool {
        self.signatures_named(name).next().is_some()
    }
}

fn text<'a>(node: tree_sitter::Node<'_>, src: &'a str) -> &'a str {
    &src[node.byte_range()]
}

/// The signature of a `function_declaration`, `init_declaration` or protocol requirement.
fn signature(node: tree_sitter::Node<'_>, src: &str) -> Signature {
    let mut params = Vec::new();
    let mut cursor = node.walk();
    let children: Vec<_> = node.children(&mut cursor).collect();
    for (i, child) in children.iter().enumerate() {
        if child.kind() != "parameter" {
            continue;
        }
        let label = match child.child_by_field_name("external_name") {
            Some(e) => text(e, src).to_owned(),
            None => child
                .child_by_field_name("name")
                .map(|n| text(n, src).to_owned())
                .unwrap_or_default(),
        };
        let default = children.get(i + 1).is_some_and(|n| n.kind() == "=");
        params.push((label, default));
    }
    Signature { params }
}

/// The labels of an enum case's associated values, from `(label: Type, Type)`.
fn enum_labels(params: &str) -> Vec<(String, bool)> {
    // Without comments (the generated code documents each value).
    let mut clean = String::new();
    let mut rest = params;
    while let Some(i) = rest.find("/*") {
        clean.push_str(&rest[..i]);
        rest = rest[i..].split_once("*/").map_or("", |(_, after)| after);
    }
    clean.push_str(rest);
    let clean: String = clean
        .lines()
        .map(|l| l.split_once("//").map_or(l, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    let inner = clean.trim().trim_start_matches('(').trim_end_matches(')');
    let mut pieces = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '(' | '[' | '<' => depth += 1,
            ')' | ']' | '>' => depth -= 1,
            ',' if depth == 0 => {
                pieces.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&inner[start..]);
    pieces
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| match p.split_once(':') {
            Some((label, _)) => (label.trim().to_owned(), false),
            None => ("_".to_owned(), false),
        })
        .collect()
}

/// The declarations in `src` (public ones only when `public_only`: the generated API).
fn declarations(tree: &tree_sitter::Tree, src: &str, public_only: bool) -> Declarations {
    let mut out = Declarations::default();
    let mut stack = vec![(tree.root_node(), String::new())];
    while let Some((node, owner)) = stack.pop() {
        let kind = node.kind();
        let mut owner_here = owner.clone();
        if matches!(kind, "class_declaration" | "protocol_declaration")
            && let Some(name) = node.child_by_field_name("name")
        {
            let name = text(name, src).to_owned();
            // An extension names an existing type; it declares none.
            let mut c = node.walk();
            if !node.children(&mut c).any(|n| n.kind() == "extension") {
                out.types.insert(name.clone());
            }
            owner_here = name;
        }
        let public = || {
            let mut c = node.walk();
            let modifiers = node
                .children(&mut c)
                .find(|n| n.kind() == "modifiers")
                .map(|m| text(m, src).to_owned())
                .unwrap_or_default();
            modifiers.contains("public") || modifiers.contains("open")
        };
        if kind == "enum_entry" {
            // `case name(label: Type, …)`: its constructor's labels.
            let mut c = node.walk();
            let params = node
                .children(&mut c)
                .find(|n| n.kind() == "enum_type_parameters")
                .map(|p| enum_labels(text(p, src)))
                .unwrap_or_default();
            if let Some(name) = node.child_by_field_name("name") {
                out.members
                    .entry((owner_here.clone(), text(name, src).to_owned()))
                    .or_default()
                    .push(Signature { params });
            }
        }
        let member = match kind {
            "function_declaration" | "protocol_function_declaration" => node
                .child_by_field_name("name")
                .map(|n| text(n, src).to_owned()),
            "init_declaration" => Some("init".to_owned()),
            _ => None,
        };
        if let Some(name) = member
            && (!public_only || kind == "protocol_function_declaration" || public())
        {
            out.members
                .entry((owner_here.clone(), name))
                .or_default()
                .push(signature(node, src));
        }
        let mut c = node.walk();
        for child in node.children(&mut c) {
            stack.push((child, owner_here.clone()));
        }
    }
    out
}

/// A call in hand-written code: what it calls, its argument labels, where it is.
#[derive(Debug)]
struct Call {
    /// `Type` for `Type(…)`, `Type.member` for `Type.member(…)`, `.member` for a method.
    callee: String,
    labels: Vec<String>,
    trailing_closure: bool,
    line: usize,
}

fn calls(tree: &tree_sitter::Tree, src: &str) -> Vec<Call> {
    let mut out = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        let mut c = node.walk();
        stack.extend(node.children(&mut c));
        if node.kind() != "call_expression" {
            continue;
        }
        let mut c = node.walk();
        let parts: Vec<_> = node.children(&mut c).collect();
        let (Some(callee), Some(suffix)) = (parts.first(), parts.get(1)) else {
            continue;
        };
        if suffix.kind() != "call_suffix" {
            continue;
        }
        let callee = match callee.kind() {
            "simple_identifier" => text(*callee, src).to_owned(),
            "navigation_expression" => {
                let member = callee
                    .child_by_field_name("suffix")
                    .and_then(|s| s.child_by_field_name("suffix"))
                    .map(|s| text(s, src).to_owned())
                    .unwrap_or_default();
                let target = callee
                    .child_by_field_name("target")
                    .map(|t| text(t, src).to_owned())
                    .unwrap_or_default();
                if target.chars().all(|ch| ch.is_alphanumeric() || ch == '_')
                    && target.starts_with(|ch: char| ch.is_uppercase())
                {
                    format!("{target}.{member}")
                } else {
                    format!(".{member}")
                }
            }
            _ => continue,
        };
        let mut labels = Vec::new();
        let mut trailing_closure = false;
        let mut c = suffix.walk();
        for part in suffix.children(&mut c) {
            match part.kind() {
                "value_arguments" => {
                    let mut c = part.walk();
                    for arg in part
                        .children(&mut c)
                        .filter(|a| a.kind() == "value_argument")
                    {
                        labels.push(
                            arg.child_by_field_name("name")
                                .map(|l| text(l, src).trim_end_matches(':').trim().to_owned())
                                .unwrap_or_else(|| "_".to_owned()),
                        );
                    }
                }
                "lambda_literal" => trailing_closure = true,
                _ => {}
            }
        }
        out.push(Call {
            callee,
            labels,
            trailing_closure,
            line: node.start_position().row + 1,
        });
    }
    out
}

/// Calls of Apple's frameworks, by name and labels, that the hand-written layer makes with
/// a name the generated API also uses: those calls are not into the bindings.
const APPLE_CALLS: &[(&str, &[&str])] = &[
    // NWListener, NWConnection, NWBrowser and NWPathMonitor: `start(queue:)`.
    ("start", &["queue"]),
    // NWConnection: `send(content:completion:)`.
    ("send", &["content", "completion"]),
    // A UIView/NSView subclass's `super.init(frame:)`.
    ("init", &["frame"]),
];

/// What is wrong with `calls` against the generated declarations `generated` and the
/// hand-written ones `own` (extensions and helpers): one line per call that matches no
/// declaration; and how many calls into the bindings were checked.
fn check_calls(
    calls: &[Call],
    generated: &Declarations,
    own: &Declarations,
    file: &str,
) -> (Vec<String>, usize) {
    let mut wrong = Vec::new();
    let mut checked = 0;
    // A generated type's member, and what the hand-written layer's extensions add to it.
    let members_of = |ty: &str, member: &str| -> Vec<&Signature> {
        let key = (ty.to_owned(), member.to_owned());
        generated
            .members
            .get(&key)
            .into_iter()
            .chain(own.members.get(&key))
            .flatten()
            .collect()
    };
    let any_accepts = |sigs: Vec<&Signature>, call: &Call| {
        sigs.iter()
            .any(|s| s.accepts(&call.labels, call.trailing_closure))
    };
    for call in calls {
        let sigs: Vec<&Signature> = if let Some(member) = call.callee.strip_prefix('.') {
            // A method on a value whose type the parser cannot know: checked when the
            // generated API has a method of that name, against it and any of the
            // hand-written layer's own of that name (a transport's `start(inbox:)`).
            let apple = APPLE_CALLS
                .iter()
                .any(|(name, labels)| *name == member && call.labels == *labels);
            if !generated.declares(member) || apple {
                continue;
            }
            generated
                .signatures_named(member)
                .chain(own.signatures_named(member))
                .collect()
        } else if let Some((ty, member)) = call.callee.split_once('.') {
            if !generated.types.contains(ty) {
                continue;
            }
            members_of(ty, member)
        } else if generated.types.contains(&call.callee) {
            members_of(&call.callee, "init")
        } else {
            let key = (String::new(), call.callee.clone());
            match generated.members.get(&key) {
                Some(s) if !own.members.contains_key(&key) => s.iter().collect(),
                _ => continue,
            }
        };
        checked += 1;
        if !any_accepts(sigs.clone(), call) {
            wrong.push(format!(
                "{file}:{}: {}({}) matches no declaration in the generated bindings{}",
                call.line,
                call.callee,
                call.labels
                    .iter()
                    .map(|l| format!("{l}:"))
                    .collect::<String>(),
                if sigs.is_empty() {
                    " (no such member)".to_owned()
                } else {
                    format!(
                        " (declared: {})",
                        sigs.iter()
                            .map(|s| s
                                .params
                                .iter()
                                .map(|p| format!("{}:", p.0))
                                .collect::<String>())
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )
                }
            ));
        }
    }
    (wrong, checked)
}

fn parse(path: &Path) -> (String, tree_sitter::Tree) {
    let raw = std::fs::read_to_string(path).expect("readable");
    let mut src = resolve_versions(&raw);
    for (gap, equivalent) in GRAMMAR_GAPS {
        src = src.replace(gap, equivalent);
    }
    let tree = parser().parse(&src, None).expect("parsed");
    (src, tree)
}

/// The generated API's declarations, and the hand-written files with theirs.
fn bindings_and_callers() -> (
    Declarations,
    Vec<(PathBuf, String, tree_sitter::Tree)>,
    Declarations,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../swift-bindings");
    let mut files = Vec::new();
    swift_files(&root, &mut files);
    files.sort();
    let mut generated = Declarations::default();
    let mut own = Declarations::default();
    let mut callers = Vec::new();
    for path in files {
        let (src, tree) = parse(&path);
        if path.components().any(|c| c.as_os_str() == "Generated") {
            let d = declarations(&tree, &src, true);
            generated.types.extend(d.types);
            for (k, v) in d.members {
                generated.members.entry(k).or_default().extend(v);
            }
        } else if path.file_name().is_some_and(|n| n != "Package.swift") {
            let d = declarations(&tree, &src, false);
            own.types.extend(d.types);
            for (k, v) in d.members {
                own.members.entry(k).or_default().extend(v);
            }
            callers.push((path, src, tree));
        }
    }
    (generated, callers, own)
}

#[test]
fn every_call_into_the_generated_bindings_matches_a_declaration() {
    let (generated, callers, own) = bindings_and_callers();
    assert!(
        generated.types.contains("Sender") && generated.declares("overTransport"),
        "the generated API was read: {:?}",
        generated.types
    );
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (path, src, tree) in &callers {
        let name = path.display().to_string();
        let (w, n) = check_calls(&calls(tree, src), &generated, &own, &name);
        wrong.extend(w);
        checked += n;
    }
    eprintln!(
        "{checked} calls into the generated bindings checked in {} hand-written files",
        callers.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Enough calls are recognised that the check means something.
    assert!(checked >= 40, "only {checked} calls recognised");
}

#[test]
fn the_call_check_finds_a_wrong_label_and_a_missing_member() {
    let (generated, _, own) = bindings_and_callers();
    let src = "let s = try Sender.overTransport(config: c, transport: t, initator: true)\n\
               let r = try Receiver.overTransport(config: c, transport: t, initiator: false, delegate: d)\n\
               inbox.deliver(datagram: d)\n\
               inbox.deliver(bytes: d)\n\
               let x = Sender.noSuchThing(a: 1)\n\
               listener.start(queue: q)\n";
    let tree = parser().parse(src, None).expect("parsed");
    // The right `Receiver.overTransport` and `deliver(datagram:)` pass; `start(queue:)` is
    // Apple's, not checked.
    let (wrong, checked) = check_calls(&calls(&tree, src), &generated, &own, "snippet");
    assert_eq!(checked, 5, "{wrong:?}");
    assert_eq!(wrong.len(), 3, "{wrong:#?}");
    assert!(wrong.iter().any(|w| w.contains("initator")), "{wrong:#?}");
    assert!(
        wrong.iter().any(|w| w.contains("deliver(bytes:)")),
        "{wrong:#?}"
    );
    assert!(
        wrong.iter().any(|w| w.contains("no such member")),
        "{wrong:#?}"
    );
}
