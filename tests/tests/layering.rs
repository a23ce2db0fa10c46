//! The modules of `serve/`, `client/` and the web crate depend on each
//! other one way: no import cycles (docs/server.md). Read from the sources:
//! an edge A -> B is a `use crate::...::B` (or, in a file directly in the
//! tree, `super::B`) anywhere in A's files outside their unit tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules directly in `dir` and which of them each one uses, through
/// paths that start with `prefix` (`crate::serve::`).
fn edges(dir: &Path, prefix: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(dir, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(dir).unwrap();
        let mut parts = rel.iter().map(|p| p.to_string_lossy().into_owned());
        let first = parts.next().unwrap();
        let direct = rel.components().count() == 1;
        let module = if direct { first.trim_end_matches(".rs").to_owned() } else { first };
        if ["mod", "lib", "main"].contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut uses = |marker: &str| {
            for (at, _) in code.match_indices(marker) {
                let name: String = code[at + marker.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module && !name.chars().next().unwrap().is_uppercase() {
                    edges.entry(module.clone()).or_default().insert(name);
                }
            }
        };
        uses(prefix);
        if direct {
            uses("super::");
        }
    }
    edges
}

/// The cycles among `edges` (strongly connected sets of more than one module).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    // Whether `to` is reachable from `from`.
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(at) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    };
    let mut found: Vec<BTreeSet<String>> = Vec::new();
    for module in edges.keys() {
        let set: BTreeSet<String> = edges
            .keys()
            .filter(|other| *other == module || (reaches(module, other) && reaches(other, module)))
            .cloned()
            .collect();
        if set.len() > 1 && !found.contains(&set) {
            found.push(set);
        }
    }
    found
}

#[test]
fn no_module_cycles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for (dir, prefix) in [
        ("server/src/serve", "crate::serve::"),
        ("server/src/client", "crate::client::"),
        ("web/src", "crate::"),
    ] {
        let edges = edges(&root.join(dir), prefix);
        assert!(edges.len() > 3, "{dir}: the modules were read ({edges:?})");
        assert_eq!(cycles(&edges), Vec::<BTreeSet<String>>::new(), "{dir}: modules that use each other");
    }
}

#[test]
fn a_cycle_is_found() {
    let edges: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
        .into_iter()
        .fold(BTreeMap::new(), |mut m, (from, to)| {
            m.entry(from.to_owned()).or_insert_with(BTreeSet::new).insert(to.to_owned());
            m
        });
    let expected: BTreeSet<String> = ["a", "b", "c"].into_iter().map(String::from).collect();
    assert_eq!(cycles(&edges), vec![expected]);
}
