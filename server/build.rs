//! Embeds the uploader page (web/www) and the wasm package (web/pkg, built by
//! wasm-pack) into the binary, so a release build serves them without the
//! source tree. Missing directories embed nothing; the server then shows a
//! short page that says how to build them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const SERVED: &[&str] = &["html", "js", "mjs", "css", "wasm", "svg", "png", "ico", "json", "txt", "ts"];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let web = manifest.parent().expect("server/ has a parent").join("web");
    let mut entries = Vec::new();
    collect(&web.join("www"), "", &mut entries);
    collect(&web.join("pkg"), "pkg/", &mut entries);
    entries.sort();
    let mut code = String::from(
        "/// Embedded page assets: (URL path below `/`, bytes).\npub(crate) static EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for (url, file) in &entries {
        writeln!(code, "    ({url:?}, include_bytes!({:?})),", file.display().to_string())
            .expect("write to String");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("assets.rs");
    std::fs::write(out, code).expect("write assets.rs");
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            collect(&path, &format!("{prefix}{name}/"), out);
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| SERVED.contains(&e)) {
            println!("cargo:rerun-if-changed={}", path.display());
            out.push((format!("{prefix}{name}"), path));
        }
    }
}
