//! The module graph of the library (issue 13): a module imports only from its
//! own or a lower layer, and no two modules import each other, directly or
//! round a longer loop. Read from the source, so a new `use` that breaks the
//! layering fails here naming the file and line, before any review.
//!
//! Every `crate::x` path counts (in `use` lines and inline in code, tests
//! included), and every `super::` path that climbs to the crate root.
//! Comments and string literals are skipped. `main.rs` and `src/bin/` are
//! their own crates on top of the library and are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. `only`: the modules it may import at all, where
/// the layer rule alone would allow more.
struct Layer {
    module: &'static str,
    layer: u8,
    only: Option<&'static [&'static str]>,
}

const fn layer(module: &'static str, layer: u8) -> Layer {
    Layer {
        module,
        layer,
        only: None,
    }
}

const fn only(module: &'static str, layer: u8, may: &'static [&'static str]) -> Layer {
    Layer {
        module,
        layer,
        only: Some(may),
    }
}

const LAYERS: &[Layer] = &[
    // 0: plain values and the process-wide plumbing every layer may use
    only("base", 0, &[]),
    only("metrics", 0, &["base"]),
    only("worker", 0, &["base", "metrics"]),
    // 1: the typed configuration and the file, TLS and HTTPS-client formats
    only("config", 1, &["base"]),
    layer("part10", 1),
    layer("tls", 1),
    layer("http_client", 1),
    // 2: what is stored and recorded
    layer("store", 2),
    layer("journal", 2),
    layer("capacity", 2),
    layer("queue", 2),
    // 3: what is made of stored instances
    layer("ingest", 3),
    layer("pixels", 3),
    layer("package", 3),
    // 4: every access decision
    layer("authz", 4),
    // who staff are (OIDC, local accounts); what they may do is authz's
    layer("accounts", 4),
    // 5: the protocols and the jobs
    layer("dimse", 5),
    layer("relay", 5),
    layer("retention", 5),
    // 6: the HTTP edge
    layer("web", 6),
    // the department's console, on its own listener, built on web's
    layer("console", 6),
    // 7: what puts it all together
    layer("daemon", 7),
    layer("cli", 7),
];

/// Imports between modules of one layer that are refused all the same.
const FORBIDDEN: &[(&str, &str, &str)] = &[(
    "pixels",
    "ingest",
    "pixels reads stored files through part10, not intake",
)];

/// Edges allowed for now against the table, each with why and who
/// removes it. None: the journal has its own record shapes (journal no
/// longer imports authz).
const ALLOWED: &[(&str, &str, &str)] = &[];

#[derive(Debug, Clone)]
struct Site {
    file: String,
    line: usize,
}

#[test]
fn no_module_imports_a_higher_layer_and_the_graph_has_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files: Vec<(PathBuf, String)> = rust_files(&src)
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).expect("read source");
            (
                file.strip_prefix(&src).expect("under src").to_path_buf(),
                text,
            )
        })
        .collect();
    let problems = check(&files);
    assert!(
        problems.is_empty(),
        "the module graph breaks the layers of tests/layers.rs:\n{}",
        problems.join("\n")
    );
}

/// What is wrong with these files (path under src/, text) against the table.
fn check(files: &[(PathBuf, String)]) -> Vec<String> {
    let table: BTreeMap<&str, &Layer> = LAYERS.iter().map(|l| (l.module, l)).collect();
    let mut problems = Vec::new();
    // every import site of an edge between two top modules
    let mut edges: BTreeMap<(String, String), Vec<Site>> = BTreeMap::new();

    for (rel, text) in files {
        let Some(module_path) = module_path(rel) else {
            continue;
        };
        let name = format!("src/{}", rel.display());
        let from = module_path[0].clone();
        if !table.contains_key(from.as_str()) {
            problems.push(format!(
                "{name}: module `{from}` is not in the layer table of tests/layers.rs"
            ));
            continue;
        }
        for (to, line) in imports(text, &module_path) {
            if to == from {
                continue;
            }
            edges.entry((from.clone(), to)).or_default().push(Site {
                file: name.clone(),
                line,
            });
        }
    }

    for ((from, to), sites) in &edges {
        if ALLOWED.iter().any(|(f, t, _)| f == from && t == to) {
            continue;
        }
        let Some(target) = table.get(to.as_str()) else {
            for s in sites {
                problems.push(format!(
                    "{}:{}: `crate::{to}` is not a module in the layer table of tests/layers.rs",
                    s.file, s.line
                ));
            }
            continue;
        };
        let source = table[from.as_str()];
        let why = if target.layer > source.layer {
            Some(format!(
                "`{from}` (layer {}) imports `{to}` (layer {}), a higher layer",
                source.layer, target.layer
            ))
        } else if source.only.is_some_and(|may| !may.contains(&to.as_str())) {
            Some(format!(
                "`{from}` may import only {:?}, not `{to}`",
                source.only.unwrap_or_default()
            ))
        } else {
            FORBIDDEN
                .iter()
                .find(|(f, t, _)| f == from && t == to)
                .map(|(_, _, why)| format!("`{from}` must not import `{to}`: {why}"))
        };
        if let Some(why) = why {
            for s in sites {
                problems.push(format!("{}:{}: {why}", s.file, s.line));
            }
        }
    }

    let graph: BTreeMap<&str, BTreeSet<&str>> = edges
        .keys()
        .filter(|(f, t)| !ALLOWED.iter().any(|(af, at, _)| af == f && at == t))
        .fold(BTreeMap::new(), |mut g, (f, t)| {
            g.entry(f.as_str()).or_default().insert(t.as_str());
            g
        });
    for cycle in cycles(&graph) {
        let mut text = format!("cycle {}:", cycle.join(" -> "));
        for pair in cycle.windows(2) {
            let s = &edges[&(pair[0].to_string(), pair[1].to_string())][0];
            text.push_str(&format!(
                "\n    {} -> {} at {}:{}",
                pair[0], pair[1], s.file, s.line
            ));
        }
        problems.push(text);
    }
    problems
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read src dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module path of a library file (`web/dicomweb/mod.rs` -> web, dicomweb);
/// None for the crate roots and the binaries.
fn module_path(rel: &Path) -> Option<Vec<String>> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.len() == 1 && matches!(parts[0].as_str(), "lib.rs" | "main.rs") {
        return None;
    }
    if parts[0] == "bin" {
        return None;
    }
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    Some(parts)
}

#[derive(Debug, PartialEq)]
enum Tok {
    Ident(String),
    Path,
    Open,
    Close,
    Comma,
    Other,
}

/// The top modules a file imports, with the line of each import.
fn imports(text: &str, module_path: &[String]) -> Vec<(String, usize)> {
    let toks = tokens(text);
    let mut out = Vec::new();
    // inline `mod x { ... }`: (name, brace depth outside it)
    let mut inline: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let ident = |i: usize| match toks.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: Tok| toks.get(i).is_some_and(|(k, _)| *k == t);
    let mut i = 0;
    while i < toks.len() {
        let (tok, line) = &toks[i];
        match tok {
            Tok::Open => depth += 1,
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if inline.last() == Some(&depth) {
                    inline.pop();
                }
            }
            Tok::Ident(k) if k == "mod" && ident(i + 1).is_some() && is(i + 2, Tok::Open) => {
                inline.push(depth);
                depth += 1;
                i += 3;
                continue;
            }
            Tok::Ident(k) if (k == "crate" || k == "super") && is(i + 1, Tok::Path) => {
                let mut j = i;
                let at_root = if k == "crate" {
                    j += 2;
                    true
                } else {
                    let mut climbs = 0;
                    while ident(j) == Some("super") && is(j + 1, Tok::Path) {
                        climbs += 1;
                        j += 2;
                    }
                    module_path.len() + inline.len() <= climbs
                };
                if at_root {
                    for top in path_heads(&toks, j) {
                        out.push((top, *line));
                    }
                }
                i = j;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// The first segment of the path at `at`, or of each path in a `{a, b::c}` group.
fn path_heads(toks: &[(Tok, usize)], at: usize) -> Vec<String> {
    match toks.get(at) {
        Some((Tok::Ident(s), _)) => vec![s.clone()],
        Some((Tok::Open, _)) => {
            let mut heads = Vec::new();
            let mut depth = 0;
            let mut expect_head = true;
            for (tok, _) in &toks[at + 1..] {
                match tok {
                    Tok::Open => depth += 1,
                    Tok::Close if depth == 0 => break,
                    Tok::Close => depth -= 1,
                    Tok::Comma if depth == 0 => expect_head = true,
                    Tok::Ident(s) if depth == 0 && expect_head => {
                        if s != "self" {
                            heads.push(s.clone());
                        }
                        expect_head = false;
                    }
                    _ => {}
                }
            }
            heads
        }
        _ => Vec::new(),
    }
}

/// Identifiers, `::`, braces and commas with their line; comments and the
/// insides of string and char literals dropped.
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        let next = c.get(i + 1).copied();
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && next == Some('*') {
            let mut nest = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    nest += 1;
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    nest -= 1;
                    i += 2;
                    if nest == 0 {
                        break;
                    }
                } else {
                    if c[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if ch == '"' {
            i = skip_string(&c, i + 1, 0, &mut line);
        } else if (ch == 'r' || ch == 'b') && starts_raw(&c, i) {
            let mut j = i + 1;
            if c[i] == 'b' {
                j += 1; // br"
            }
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            i = skip_string(&c, j + 1, hashes, &mut line);
        } else if ch == 'b' && next == Some('"') {
            i = skip_string(&c, i + 2, 0, &mut line);
        } else if ch == '\'' {
            // a char literal ('x', '\n', '\u{..}') or a lifetime ('a)
            if next == Some('\\') {
                i += 2;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if c.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            // r#ident
            out.push((Tok::Ident(word), line));
        } else if ch == ':' && next == Some(':') {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((
                match ch {
                    '{' => Tok::Open,
                    '}' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Other,
                },
                line,
            ));
            i += 1;
        }
    }
    out
}

/// `r"`, `r#"`, `br"`, `br#"` at `i` (and not an identifier ending in r or b).
fn starts_raw(c: &[char], i: usize) -> bool {
    if i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_') {
        return false;
    }
    let mut j = i + 1;
    if c[i] == 'b' {
        if c.get(j) != Some(&'r') {
            return false;
        }
        j += 1;
    }
    while c.get(j) == Some(&'#') {
        j += 1;
    }
    c.get(j) == Some(&'"')
}

/// The index after the closing quote of a string whose body starts at `i`.
fn skip_string(c: &[char], mut i: usize, hashes: usize, line: &mut usize) -> usize {
    while i < c.len() {
        match c[i] {
            '\\' if hashes == 0 => i += 2,
            '"' if (0..hashes).all(|k| c.get(i + 1 + k) == Some(&'#')) => {
                return i + 1 + hashes;
            }
            ch => {
                if ch == '\n' {
                    *line += 1;
                }
                i += 1;
            }
        }
    }
    i
}

/// One loop through each set of modules that reach each other (a strongly
/// connected component of more than one module), as a path that ends where it
/// starts: enough to name every tangle without listing each of its loops.
fn cycles<'a>(graph: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    let reach = |from: &'a str| -> BTreeSet<&'a str> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from];
        while let Some(n) = todo.pop() {
            for &next in graph.get(n).into_iter().flatten() {
                if seen.insert(next) {
                    todo.push(next);
                }
            }
        }
        seen
    };
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut found = Vec::new();
    for &start in graph.keys() {
        if done.contains(start) {
            continue;
        }
        let from_start = reach(start);
        if !from_start.contains(start) {
            continue;
        }
        let component: BTreeSet<&str> = from_start
            .iter()
            .copied()
            .filter(|&n| reach(n).contains(start))
            .collect();
        done.extend(component.iter().copied());
        // the shortest way back to `start` inside the component
        let mut back: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        'search: while let Some(n) = queue.pop_front() {
            for &next in graph.get(n).into_iter().flatten() {
                if !component.contains(next) || back.contains_key(next) {
                    continue;
                }
                back.insert(next, n);
                if next == start {
                    break 'search;
                }
                queue.push_back(next);
            }
        }
        let mut cycle = vec![start];
        let mut n = back[start];
        while n != start {
            cycle.push(n);
            n = back[n];
        }
        cycle.push(start);
        cycle.reverse();
        found.push(cycle);
    }
    found
}

#[test]
fn the_reader_sees_grouped_nested_and_climbing_paths() {
    let text = r#"
use crate::{base::Uid, store::{self, Store}};
// use crate::web::Nothing;
/* use crate::cli; */
fn f<'a>(x: &'a str) { let _ = "crate::daemon"; let c = '{'; crate::journal::write(x); }
mod tests {
    use super::*;
    use super::super::pixels::Frame;
}
"#;
    let got: Vec<(String, usize)> = imports(text, &["relay".to_string()]);
    let names: Vec<&str> = got.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(names, ["base", "store", "journal", "pixels"]);
    assert_eq!(got[2].1, 5);
    assert_eq!(got[3].1, 8);
}

#[test]
fn each_tangle_is_named_once() {
    let mut g: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    g.entry("a").or_default().insert("b");
    g.entry("b").or_default().insert("c");
    g.entry("c").or_default().insert("a");
    g.entry("c").or_default().insert("b");
    g.entry("c").or_default().insert("d");
    g.entry("d").or_default().insert("e");
    g.entry("e").or_default().insert("d");
    assert_eq!(
        cycles(&g),
        vec![vec!["a", "b", "c", "a"], vec!["d", "e", "d"]]
    );
}

#[test]
fn a_higher_import_a_forbidden_edge_a_loop_and_an_unknown_module_are_named() {
    let file = |path: &str, text: &str| (PathBuf::from(path), text.to_string());
    let problems = check(&[
        file(
            "config/raw.rs",
            "fn f() {}\nuse crate::dimse::scu::PacsAddress;\n",
        ),
        file(
            "pixels/tests/mod.rs",
            "use crate::{part10, ingest::describe_file};\n",
        ),
        file("ingest/mod.rs", "use crate::package::zip;\n"),
        file("package/mod.rs", "fn f() { crate::ingest::x(); }\n"),
        file("journal/event.rs", "use crate::authz::Grant;\n"),
        file("gadgets.rs", "use crate::base::Uid;\n"),
    ]);
    let expect = [
        "src/config/raw.rs:2: `config` (layer 1) imports `dimse` (layer 5), a higher layer",
        "src/pixels/tests/mod.rs:1: `pixels` must not import `ingest`",
        "cycle ingest -> package -> ingest:\n    ingest -> package at src/ingest/mod.rs:1\n    \
         package -> ingest at src/package/mod.rs:1",
        "src/gadgets.rs: module `gadgets` is not in the layer table",
        "src/journal/event.rs:1: `journal` (layer 2) imports `authz` (layer 4), a higher layer",
    ];
    for e in expect {
        assert!(
            problems.iter().any(|p| p.starts_with(e)),
            "{e:?} not among {problems:#?}"
        );
    }
    // nothing else is reported
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
}
