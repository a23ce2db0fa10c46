//! Directory trees (`diffcopy -r`, docs/cli.md "Trees") and the listing
//! they stand on (`GET /api/v2/list`, docs/api.md "Listing"): the shared
//! behaviour on every store from one body, rsync's habits on local trees.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use diffcopy_tests::stores::Deployment;
use diffcopy_tests::{
    Client, ClientRun, Scratch, data, http, multi_answers, multi_request, on_every_store, push_part,
};
use serde_json::Value;

/// The block size the trees sync with, so that edge sizes stay small.
const BLOCK: usize = 64 << 10;

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Sets a file's modification time to `ms` milliseconds since the epoch.
fn set_mtime(path: &Path, ms: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(UNIX_EPOCH + Duration::from_millis(ms)).unwrap();
}

fn mtime_ms(path: &Path) -> i64 {
    let time = std::fs::metadata(path).unwrap().modified().unwrap();
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// A tree of the edge sizes around a block, in nested folders, with names
/// that need care (spaces, non-ASCII), each with its own mtime.
fn edge_tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let sizes = [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 7];
    let mut files = BTreeMap::new();
    for (i, size) in sizes.iter().enumerate() {
        files.insert(format!("sizes/{size}.bin"), data(*size, i as u64));
    }
    files.insert("a b/ünïcödé name.txt".into(), b"unicode".to_vec());
    files.insert("a-b".into(), b"sorts before a/".to_vec());
    files.insert("a/x".into(), b"x".to_vec());
    files.insert("deep/1/2/3/4/5/6/7/8/leaf".into(), data(100, 9));
    for (i, (rel, bytes)) in files.iter().enumerate() {
        let path = root.join(rel);
        write(&path, bytes);
        set_mtime(&path, 1_700_000_000_000 + i as u64 * 1_001);
    }
    files
}

/// Every regular file below `root`, by its path below it.
fn files_below(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let rel = entry.path().strip_prefix(root).unwrap().to_str().unwrap().to_owned();
                out.insert(rel, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    out
}

/// The `--json` lines of a tree run: the files' by path, and the summary.
fn lines(run: &ClientRun) -> (BTreeMap<String, Value>, Value) {
    let mut files = BTreeMap::new();
    let mut summary = Value::Null;
    for line in run.stdout.lines() {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match value["type"].as_str() {
            Some("file") => {
                files.insert(value["path"].as_str().unwrap().to_owned(), value);
            }
            Some("summary") => summary = value,
            other => panic!("a line of type {other:?}: {line}"),
        }
    }
    (files, summary)
}

/// `diffcopy -r --json ARGS`, which must succeed.
fn tree(state: &Path, args: &[&str]) -> (BTreeMap<String, Value>, Value) {
    let run = Client::new(state).args(["-r", "--json", "-b", "64K"]).args(args).run();
    assert_eq!(run.code, 0, "diffcopy -r {args:?}: {}", run.stderr);
    lines(&run)
}

/// `text` percent-encoded for a query.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Every page of `GET /api/v2/list?prefix=` at `limit` files a page.
fn list_all(server: &str, prefix: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut url = format!("{server}/api/v2/list?prefix={}&limit={limit}", encode(prefix));
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={}", encode(cursor)));
        }
        let page: Value = http().get(url).send().unwrap().json().unwrap();
        let files = page["files"].as_array().unwrap();
        assert!(files.len() <= limit, "{page}");
        all.extend(files.iter().cloned());
        match page["cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
    panic!("the listing of {prefix:?} did not end");
}

on_every_store! {
    /// A tree goes up whole; the listing shows it in path order with the
    /// client's mtimes, on every page size; a rerun sends nothing; one
    /// edited file is the only one that moves; a download brings it all
    /// back with the same times, and its rerun moves nothing.
    fn a_tree_goes_up_reruns_unchanged_and_comes_back(store: Store) {
        let d = Deployment::start(store, "tree", 1, &[]);
        let (server, work) = (d.url(), d.work());
        let state = work.join("state");
        let source = work.join("src");
        let mut files = edge_tree(&source);
        let target = format!("{server}/trees/");

        let (first, summary) = tree(&state, &[source.to_str().unwrap(), &target]);
        assert_eq!(summary["files_new"], files.len() as u64, "{summary}");
        assert_eq!(summary["files_failed"], 0);
        assert!(first.values().all(|f| f["action"] == "new"));
        let total: u64 = files.values().map(|b| b.len() as u64).sum();
        assert_eq!(summary["bytes_sent"], total);
        // Every file is small: they went up in batches, none by itself.
        assert_eq!(d.stats(0)["delta_uploads_created"], 0, "{}", d.stats(0));

        // The listing: every file under trees/src/, in byte order, with
        // its size and the source's own mtime, whatever the page size.
        let local: Vec<(String, u64, i64)> = files
            .iter()
            .map(|(rel, bytes)| (format!("trees/src/{rel}"), bytes.len() as u64, mtime_ms(&source.join(rel))))
            .collect();
        for limit in [1, 3, 1000] {
            let listed: Vec<(String, u64, i64)> = list_all(&server, "trees/src/", limit)
                .iter()
                .map(|f| (f["path"].as_str().unwrap().to_owned(), f["size"].as_u64().unwrap(), f["mtime"].as_i64().unwrap()))
                .collect();
            assert_eq!(listed, local, "limit {limit}");
        }
        assert_eq!(list_all(&server, "trees/src/a", 1000).len(), 3, "a string prefix: a-b, a/x and 'a b/…'");
        assert!(list_all(&server, "nothing/", 10).is_empty());
        let bare: Value = http().get(format!("{server}/api/v2/list?prefix=trees/&etags=false")).send().unwrap().json().unwrap();
        assert_eq!(bare["files"].as_array().unwrap().len(), files.len());
        assert!(bare["files"].as_array().unwrap().iter().all(|f| f.get("etag").is_none() && f["mtime"].is_i64()), "{bare}");
        let packed = http().get(format!("{server}/api/v2/list?prefix=trees/")).header("Accept-Encoding", "zstd").send().unwrap();
        assert_eq!(packed.headers()["content-encoding"], "zstd", "a client that takes zstd gets it");
        for rel in files.keys() {
            assert!(d.file(&format!("trees/src/{rel}")).as_ref() == files.get(rel), "{rel}");
        }

        let (_, again) = tree(&state, &[source.to_str().unwrap(), &target]);
        assert_eq!(again["files_unchanged"], files.len() as u64, "{again}");
        assert_eq!(again["payload_bytes"], 0, "an unchanged tree costs listings only");

        // One byte changed in the largest file, its mtime moved on.
        let big = format!("sizes/{}.bin", 3 * BLOCK + 7);
        files.get_mut(&big).unwrap()[BLOCK + 10] ^= 1;
        write(&source.join(&big), &files[&big]);
        let (changed, summary) = tree(&state, &[source.to_str().unwrap(), &target]);
        assert_eq!(summary["files_changed"], 1, "{summary}");
        assert_eq!(changed[&big]["action"], "changed");
        assert!(summary["bytes_sent"].as_u64().unwrap() < BLOCK as u64, "a delta, not the file: {summary}");
        assert!(d.file(&format!("trees/src/{big}")).as_ref() == files.get(&big));

        // Down again, into a new folder (the trailing / pours the contents in).
        let back = work.join("back");
        let (_, summary) = tree(&state, &[&format!("{server}/trees/src/"), back.to_str().unwrap()]);
        assert_eq!(summary["files_new"], files.len() as u64, "{summary}");
        assert!(files_below(&back) == files, "the download is the tree");
        for rel in files.keys() {
            assert_eq!(mtime_ms(&back.join(rel)), mtime_ms(&source.join(rel)), "{rel}'s time");
        }
        let (_, summary) = tree(&state, &[&format!("{server}/trees/src/"), back.to_str().unwrap()]);
        assert_eq!(summary["files_unchanged"], files.len() as u64, "{summary}");
        assert_eq!(summary["payload_bytes"], 0);
    }

    /// `--delete` to a server removes the files the source lacks, and only
    /// those (`-n` first lists them); `DELETE /api/v2/files/{path}` removes
    /// only the version `If-Match` names, and a removed file is gone from
    /// reads and listings.
    fn delete_removes_a_servers_files_the_source_lacks(store: Store) {
        let d = Deployment::start(store, "tree-delete", 1, &[]);
        let (server, work) = (d.url(), d.work());
        let state = work.join("state");
        let source = work.join("src");
        for name in ["a.txt", "b/c.txt", "b/d.txt", "e.txt"] {
            write(&source.join(name), name.as_bytes());
        }
        let target = format!("{server}/t/");
        let contents = format!("{}/", source.display());
        tree(&state, &[&contents, &target]);
        write(&work.join("outside.txt"), b"outside");
        Client::new(&state).arg(work.join("outside.txt")).arg(format!("{server}/t-outside.txt")).ok_json();
        std::fs::remove_file(source.join("b/c.txt")).unwrap();
        std::fs::remove_file(source.join("e.txt")).unwrap();
        write(&source.join("f.txt"), b"f");

        let dry = Client::new(&state).args(["-r", "-n", "--delete"]).arg(&contents).arg(&target).run();
        assert_eq!(dry.code, 0, "{}", dry.stderr);
        let mut shown: Vec<&str> = dry.stdout.lines().collect();
        shown.sort_unstable();
        assert_eq!(shown, ["deleted b/c.txt", "deleted e.txt", "new f.txt"]);
        assert!(d.file("t/e.txt").is_some(), "a dry run removes nothing");

        let (files, summary) = tree(&state, &["--delete", &contents, &target]);
        assert_eq!((summary["files_deleted"].as_u64(), summary["files_new"].as_u64()), (Some(2), Some(1)), "{summary}");
        assert_eq!(files["e.txt"]["action"], "deleted");
        let listed: Vec<String> = list_all(&server, "", 1000).iter().map(|f| f["path"].as_str().unwrap().to_owned()).collect();
        assert_eq!(listed, ["t-outside.txt", "t/a.txt", "t/b/d.txt", "t/f.txt"], "only what the source lacks, only below t/");
        assert!(d.file("t/e.txt").is_none() && d.file("t/b/c.txt").is_none());
        let gone = http().get(format!("{server}/api/v1/files/t/e.txt")).send().unwrap();
        assert_eq!(gone.status(), 404);

        // The endpoint itself: the wrong version stays, the right one goes.
        let etag = list_all(&server, "t/a.txt", 10)[0]["etag"].as_str().unwrap().to_owned();
        let wrong = http().delete(format!("{server}/api/v2/files/t/a.txt")).header("If-Match", "\"not-it\"").send().unwrap();
        assert_eq!(wrong.status(), 412);
        assert_eq!(wrong.json::<Value>().unwrap()["error"], "target_changed");
        assert!(d.file("t/a.txt").is_some());
        let right = http().delete(format!("{server}/api/v2/files/t/a.txt")).header("If-Match", &etag).send().unwrap();
        assert_eq!(right.status(), 204);
        assert!(d.file("t/a.txt").is_none());
        let again = http().delete(format!("{server}/api/v2/files/t/a.txt")).send().unwrap();
        assert_eq!(again.status(), 404);
        let bad = http().delete(format!("{server}/api/v2/files/t/.diffcopy-x")).send().unwrap();
        assert_eq!(bad.status(), 400);
    }

    /// A batch: each file is checked and committed by itself and answered
    /// in order (a wrong hash, a name given twice, a `new` file that
    /// exists, a token's path), the others land with their mtimes; a body
    /// that is not a batch is one 400.
    fn a_batch_answers_each_file(store: Store) {
        let d = Deployment::start(store, "batch", 1, &[]);
        let server = d.url();
        write(&d.work().join("x"), b"x");
        Client::new(d.work().join("state")).arg(d.work().join("x")).arg(format!("{server}/b/exists.txt")).ok_json();
        let sha = |bytes: &[u8]| -> String {
            use sha2::Digest as _;
            sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
        };
        let files: Vec<(&str, &[u8], String, bool)> = vec![
            ("b/one.txt", b"one", sha(b"one"), true),
            ("b/bad-hash.txt", b"two", sha(b"not two"), true),
            ("b/one.txt", b"again", sha(b"again"), true),
            ("b/exists.txt", b"new?", sha(b"new?"), true),
            ("b/.diffcopy-x", b"reserved", sha(b"reserved"), true),
            ("b/empty", b"", sha(b""), false),
            ("b/deep/er/three.txt", b"three", sha(b"three"), true),
        ];
        let manifest: Vec<Value> = files
            .iter()
            .map(|(path, bytes, sha256, new)| serde_json::json!({"path": path, "size": bytes.len(), "sha256": sha256, "mtime": 1_600_000_000_123i64, "new": new}))
            .collect();
        let manifest = serde_json::to_vec(&serde_json::json!({ "files": manifest })).unwrap();
        let mut body = Vec::new();
        push_part(&mut body, &manifest);
        for (_, bytes, _, _) in &files {
            body.extend_from_slice(bytes);
        }
        let reply = http().post(format!("{server}/api/v2/batch")).body(body.clone()).send().unwrap();
        assert_eq!(reply.status(), 200);
        let answers: Value = reply.json().unwrap();
        let statuses: Vec<(u64, &str)> = answers["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["status"].as_u64().unwrap(), a["error"].as_str().unwrap_or("")))
            .collect();
        assert_eq!(
            statuses,
            [(200, ""), (409, "digest_mismatch"), (400, "bad_path"), (412, "target_changed"), (400, "bad_path"), (200, ""), (200, "")],
            "{answers}"
        );
        assert!(d.file("b/one.txt") == Some(b"one".to_vec()));
        assert!(d.file("b/bad-hash.txt").is_none());
        assert!(d.file("b/exists.txt") == Some(b"x".to_vec()), "a new file does not replace one");
        assert!(d.file("b/empty") == Some(Vec::new()));
        assert!(d.file("b/deep/er/three.txt") == Some(b"three".to_vec()));
        let listed = list_all(&server, "b/one.txt", 10);
        assert_eq!(listed[0]["mtime"], 1_600_000_000_123i64);
        assert_eq!(listed[0]["etag"], answers["files"][0]["etag"], "the answer's ETag is the file's");

        // A body whose manifest names more bytes than follow, or none.
        for bad in [body[..body.len() - 1].to_vec(), b"{}".to_vec(), Vec::new()] {
            let reply = http().post(format!("{server}/api/v2/batch")).body(bad).send().unwrap();
            assert_eq!(reply.status(), 400);
        }
    }

    /// `POST /api/v2/multi`: each request inside is answered as if alone
    /// (a file, a 404, a listing), in order; one that is not a request for
    /// the API, or another multi, makes the whole a 400.
    fn a_multi_request_answers_each_request_inside(store: Store) {
        let d = Deployment::start(store, "multi", 1, &[]);
        let server = d.url();
        write(&d.work().join("x"), b"hello");
        Client::new(d.work().join("state")).arg(d.work().join("x")).arg(format!("{server}/m/x.txt")).ok_json();
        let sent = multi_request(&[("GET", "/api/v1/files/m/x.txt"), ("GET", "/api/v1/files/m/absent"), ("GET", "/api/v2/list?prefix=m/")]);
        let reply = http().post(format!("{server}/api/v2/multi")).body(sent).send().unwrap();
        assert_eq!(reply.status(), 200);
        let answers = multi_answers(&reply.bytes().unwrap());
        assert_eq!(answers.len(), 3, "three answers and nothing else");
        assert_eq!(answers[0], (200, b"hello".to_vec()));
        assert_eq!(answers[1].0, 404);
        assert_eq!(serde_json::from_slice::<Value>(&answers[1].1).unwrap()["error"], "not_found");
        let listed: Value = serde_json::from_slice(&answers[2].1).unwrap();
        assert_eq!(listed["files"][0]["path"], "m/x.txt");
        for bad in [multi_request(&[("GET", "/api/v1/health"), ("POST", "/api/v2/multi")]), multi_request(&[("GET", "http://elsewhere/api/v1/health")]), b"\x05\0\0\0{".to_vec()] {
            let reply = http().post(format!("{server}/api/v2/multi")).body(bad).send().unwrap();
            assert_eq!(reply.status(), 400);
        }
    }

    /// A name the server refuses fails that file, with the reason, and the
    /// rest of the tree lands; the exit code says some failed.
    fn a_refused_name_fails_its_file_only(store: Store) {
        let d = Deployment::start(store, "tree-refused", 1, &[]);
        let (server, work) = (d.url(), d.work());
        let source = work.join("src");
        write(&source.join("good.txt"), b"good");
        write(&source.join(".diffcopy-reserved"), b"refused");
        write(&source.join("z/also-good.txt"), b"also");
        // A path of 4,000 bytes below the server's root (20 segments of 199).
        let deep: String = (0..20).map(|i| format!("{i:02}{}", "d".repeat(197))).collect::<Vec<_>>().join("/");
        write(&source.join(&deep), b"deep");
        let run = Client::new(work.join("state")).args(["-r", "--json"]).arg(format!("{}/", source.display())).arg(format!("{server}/t")).run();
        assert_eq!(run.code, 8, "{}", run.stderr);
        let (files, summary) = lines(&run);
        assert_eq!(files[".diffcopy-reserved"]["action"], "failed");
        assert!(files[".diffcopy-reserved"]["message"].as_str().unwrap().contains("reserved"), "{}", files[".diffcopy-reserved"]);
        if store == diffcopy_tests::stores::Store::Directory {
            assert_eq!(files[&deep]["action"], "new", "{}", files[&deep]);
            assert!(d.file(&format!("t/{deep}")) == Some(b"deep".to_vec()));
            assert_eq!((summary["files_new"].as_u64(), summary["files_failed"].as_u64()), (Some(3), Some(1)));
        } else {
            // An object store's keys stop at 1,024 bytes: that file fails, and says why.
            assert_eq!(files[&deep]["action"], "failed");
            assert!(files[&deep]["message"].as_str().unwrap().contains("1024 bytes"), "{}", files[&deep]);
            assert_eq!((summary["files_new"].as_u64(), summary["files_failed"].as_u64()), (Some(2), Some(2)));
        }
        assert!(d.file("t/good.txt") == Some(b"good".to_vec()));
        assert!(d.file("t/z/also-good.txt") == Some(b"also".to_vec()));
    }
}

/// The listing refuses what is not a prefix, a page size out of range and
/// a cursor from another listing, each with 400 `bad_query`.
#[test]
fn a_bad_listing_query_is_400() {
    let d = Deployment::start(diffcopy_tests::stores::Store::Directory, "tree-queries", 1, &[]);
    let server = d.url();
    for query in [
        "prefix=../x",
        "prefix=a//b",
        "prefix=/a",
        "limit=0",
        "limit=1001",
        "limit=x",
        "prefix=a/&cursor=b/c",
        "prefix=.diffcopy-sessions/",
    ] {
        let reply = http().get(format!("{server}/api/v2/list?{query}")).send().unwrap();
        assert_eq!(reply.status(), 400, "{query}");
        let body: Value = reply.json().unwrap();
        assert_eq!(body["error"], "bad_query", "{query}: {body}");
    }
}

/// rsync's habits on local trees: `SRC` goes in as a folder, `SRC/` is
/// poured in; symlinks, FIFOs and excluded paths are left out (with a
/// warning for the first two); empty folders are made; `-n` writes nothing.
#[test]
fn local_trees_keep_rsyncs_habits() {
    let work = Scratch::new("tree-local");
    let source = work.path().join("src");
    let files = edge_tree(&source);
    std::fs::create_dir_all(source.join("empty/inside")).unwrap();
    write(&source.join("build/out.o"), b"excluded");
    write(&source.join("notes.tmp"), b"excluded");
    symlink("a/x", source.join("link")).unwrap();
    let made = Command::new("mkfifo").arg(source.join("fifo")).status().unwrap();
    assert!(made.success());
    let state = work.path().join("state");
    let excluded = ["--exclude", "*.tmp", "--exclude", "/build/"];

    let dry =
        Client::new(&state).args(["-r", "-n"]).args(excluded).arg(&source).arg(work.path().join("dst")).run();
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.lines().any(|l| l == "new a/x"), "{}", dry.stdout);
    assert!(!work.path().join("dst").exists(), "a dry run writes nothing");

    let run = Client::new(&state).args(["-r"]).args(excluded).arg(&source).arg(work.path().join("dst")).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("skipped link: a symlink"), "{}", run.stderr);
    assert!(run.stderr.contains("skipped fifo"), "{}", run.stderr);
    let copied = work.path().join("dst/src");
    assert!(files_below(&copied) == files, "SRC without a slash lands as dst/src");
    assert!(copied.join("empty/inside").is_dir(), "empty folders are made");
    for rel in files.keys() {
        assert_eq!(mtime_ms(&copied.join(rel)), mtime_ms(&source.join(rel)), "{rel}'s time");
    }

    let (_, summary) = tree(
        &state,
        &excluded
            .iter()
            .copied()
            .chain([format!("{}/", source.display()).as_str(), work.path().join("poured").to_str().unwrap()])
            .collect::<Vec<_>>(),
    );
    assert_eq!(summary["files_new"], files.len() as u64);
    assert!(files_below(&work.path().join("poured")) == files, "SRC/ pours the contents in");
}

/// `--delete` removes what the source lacks inside DEST, and nothing
/// outside it: not through a symlink in DEST, not excluded paths.
#[test]
fn delete_stays_inside_the_target() {
    let work = Scratch::new("tree-delete");
    let source = work.path().join("src");
    write(&source.join("keep/a.txt"), b"a");
    let outside = work.path().join("outside");
    write(&outside.join("precious.txt"), b"precious");
    let dest = work.path().join("dest");
    write(&dest.join("keep/a.txt"), b"old");
    write(&dest.join("extra.txt"), b"extra");
    write(&dest.join("gone/deep/x"), b"x");
    write(&dest.join("kept.log"), b"excluded from the sync");
    symlink(&outside, dest.join("escape")).unwrap();
    let state = work.path().join("state");

    let dry = Client::new(&state)
        .args(["-r", "-n", "--delete", "--exclude", "*.log"])
        .arg(format!("{}/", source.display()))
        .arg(&dest)
        .run();
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    for line in ["deleted extra.txt", "deleted gone/deep/x", "deleted gone"] {
        assert!(dry.stdout.lines().any(|l| l == line), "{line}: {}", dry.stdout);
    }
    assert!(dest.join("extra.txt").exists(), "a dry run removes nothing");

    let (files, summary) = tree(
        &state,
        &["--delete", "--exclude", "*.log", &format!("{}/", source.display()), dest.to_str().unwrap()],
    );
    assert_eq!(summary["files_deleted"], 4, "extra.txt, gone/deep/x, gone/deep, gone: {summary}");
    assert_eq!(files["escape"]["action"], "skipped", "a symlink in DEST is not removed: {}", files["escape"]);
    assert!(!dest.join("extra.txt").exists() && !dest.join("gone").exists());
    assert_eq!(std::fs::read(dest.join("keep/a.txt")).unwrap(), b"a");
    assert_eq!(std::fs::read(dest.join("kept.log")).unwrap(), b"excluded from the sync");
    assert_eq!(std::fs::read(outside.join("precious.txt")).unwrap(), b"precious", "nothing outside DEST");
    assert!(std::fs::symlink_metadata(dest.join("escape")).unwrap().file_type().is_symlink());
}

/// The server killed mid-tree (`exit-at`, as a crash: inside a batch of
/// new small files, after some of its renames), while changed files go up
/// one by one: every file is its old or its new version (a new one absent
/// or whole), never a mix, and a rerun against the restarted server
/// completes the tree.
#[test]
fn a_server_killed_mid_tree_leaves_every_file_old_or_new() {
    let work = Scratch::new("tree-kill");
    let (root, source, state) =
        (work.path().join("root"), work.path().join("src"), work.path().join("state"));
    let name =
        |i: usize| if i % 30 == 0 { format!("big/{i:03}.bin") } else { format!("d{}/{i:03}.bin", i % 7) };
    let version =
        |i: usize, v: u64| data(if i % 30 == 0 { 300_000 + i } else { 1000 + i * 13 }, i as u64 * 10 + v);
    let (count, existing) = (300, 150);
    for i in 0..existing {
        write(&source.join(name(i)), &version(i, 1));
    }
    let server = diffcopy_tests::ServerProcess::start(&root, &[]);
    let run = Client::new(&state)
        .args(["-r", "-q"])
        .arg(format!("{}/", source.display()))
        .arg(format!("{}/t", server.url()))
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    drop(server);
    for i in 0..count {
        write(&source.join(name(i)), &version(i, 2));
    }

    let mut server = diffcopy_tests::ServerProcess::start_with_env(
        &root,
        &[],
        &[("DIFFCOPY_FAULT", "exit-at:batch-renamed#40")],
    );
    let run = Client::new(&state)
        .args(["-r", "-q", "--retry-for", "0"])
        .arg(format!("{}/", source.display()))
        .arg(format!("{}/t", server.url()))
        .run();
    assert_ne!(run.code, 0, "the server stopped mid-tree, so the run cannot have succeeded");
    assert_eq!(server.child.wait().unwrap().code(), Some(86), "the server did not exit at the point");
    let (mut old, mut new) = (0, 0);
    for i in 0..count {
        match std::fs::read(root.join("t").join(name(i))) {
            Ok(got) if i < existing && got == version(i, 1) => old += 1,
            Err(e) if i >= existing && e.kind() == std::io::ErrorKind::NotFound => old += 1,
            Ok(got) if got == version(i, 2) => new += 1,
            _ => panic!("{} is neither version", name(i)),
        }
    }
    assert!(new >= 40 && old > 0, "mid-tree: {new} new, {old} old");

    // The killed batch's record names its staging files; the restart removes them.
    let journal = root.join(".diffcopy-sessions");
    let records = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&journal)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("batch-"))
            .collect();
        names.sort();
        names
    };
    let recorded: Vec<(String, String)> = records()
        .iter()
        .flat_map(|name| {
            std::fs::read_to_string(journal.join(name))
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| line.split_once(' ').map(|(id, path)| (id.to_owned(), path.to_owned())))
        .collect();
    let staged = |(id, path): &(String, String)| {
        Path::new(path).parent().map_or(root.clone(), |p| root.join(p)).join(format!(".diffcopy-{id}.part"))
    };
    assert!(recorded.iter().any(|r| staged(r).exists()), "the killed batch left staging files: {recorded:?}");
    let server = diffcopy_tests::ServerProcess::start(&root, &[]);
    assert_eq!(records(), Vec::<String>::new(), "the restart ends the killed batch's record");
    for r in &recorded {
        assert!(!staged(r).exists(), "{} is left after the restart", staged(r).display());
    }
    let listed = list_all(&server.url(), "", 1000);
    let present = (0..count).filter(|&i| root.join("t").join(name(i)).exists()).count();
    assert_eq!(listed.len(), present, "no staging file is listed");
    let run = Client::new(&state)
        .args(["-r", "--json"])
        .arg(format!("{}/", source.display()))
        .arg(format!("{}/t", server.url()))
        .run();
    assert_eq!(run.code, 0, "the rerun: {}", run.stderr);
    let (_, summary) = lines(&run);
    let synced = ["files_new", "files_changed", "files_unchanged"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!((synced, summary["files_failed"].as_u64()), (count as u64, Some(0)), "{summary}");
    for i in 0..count {
        assert!(
            std::fs::read(root.join("t").join(name(i))).unwrap() == version(i, 2),
            "{} after the rerun",
            name(i)
        );
    }
}

/// Memory is what is in flight, not the tree: 10,000 files up, then an
/// unchanged rerun, each within a fixed bound and about what 1,000 files take.
#[test]
fn ten_thousand_files_in_bounded_memory() {
    let work = Scratch::new("tree-memory");
    let server = diffcopy_tests::ServerProcess::start(&work.path().join("root"), &[]);
    let peak = |files: usize| -> (u64, u64) {
        let source = work.path().join(format!("src-{files}"));
        for i in 0..files {
            write(&source.join(format!("d{:03}/f{i:05}", i % 200)), &data(100 + i % 900, i as u64));
        }
        let target = format!("{}/m{files}/", server.url());
        let (_, first) = tree(&work.path().join("state"), &[&format!("{}/", source.display()), &target]);
        assert_eq!(first["files_new"], files as u64);
        let (_, again) = tree(&work.path().join("state"), &[&format!("{}/", source.display()), &target]);
        assert_eq!(again["files_unchanged"], files as u64);
        (first["peak_rss_bytes"].as_u64().unwrap(), again["peak_rss_bytes"].as_u64().unwrap())
    };
    let (small_first, small_again) = peak(1_000);
    let (big_first, big_again) = peak(10_000);
    let mib = 1 << 20;
    for (what, bytes) in [("the first sync", big_first), ("the rerun", big_again)] {
        assert!(bytes < 96 * mib, "{what} of 10,000 files peaked at {} MiB", bytes / mib);
    }
    assert!(
        big_first < small_first + 16 * mib,
        "10,000 files {} MiB, 1,000 {} MiB",
        big_first / mib,
        small_first / mib
    );
    assert!(
        big_again < small_again + 16 * mib,
        "rerun: 10,000 files {} MiB, 1,000 {} MiB",
        big_again / mib,
        small_again / mib
    );
}
