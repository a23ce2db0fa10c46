//! Scoped tokens (docs/embedding.md) on every store, each body run over a
//! directory, SeaweedFS and moto: JWTs minted by PyJWT (a library nobody
//! here wrote) and by `diffcopy token`; every permission, path form,
//! algorithm and expiry case; upload sessions that belong to the `sub` that
//! opened them; the administrator's `--token` beside them.

use std::path::{Path, PathBuf};
use std::process::Command;

use diffcopy_tests::stores::Deployment;
use diffcopy_tests::{
    Client, Scratch, data, diffcopy_bin, http, multi_answers, multi_request, on_every_store, raw_request,
    workspace,
};
use serde_json::{Value, json};

const ADMIN: &str = "the-administrators-own-token";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// A 40-byte secret in `dir`, with a trailing newline as editors leave it.
fn secret_file(dir: &Path) -> PathBuf {
    let file = dir.join("jwt-secret");
    std::fs::write(&file, "0123456789abcdefghijklmnopqrstuvwxyzABCD\n").unwrap();
    file
}

fn python() -> Command {
    let mut command = Command::new(workspace().join(".venv/bin/python"));
    command.arg(workspace().join("tests/jwt_mint.py"));
    command
}

/// A token with `claims`, minted by PyJWT with `alg` and `key`.
fn pyjwt(alg: &str, key: &Path, claims: &Value) -> String {
    let out = python().args(["sign", alg]).arg(key).arg(claims.to_string()).output().unwrap();
    assert!(out.status.success(), "PyJWT: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A token minted by `diffcopy token --jwt-secret-file SECRET ARGS`.
fn minted(secret: &Path, args: &[&str]) -> String {
    let out = Command::new(diffcopy_bin())
        .arg("token")
        .arg("--jwt-secret-file")
        .arg(secret)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "diffcopy token: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `method url` with `token`: the status and, for an error, its JSON body.
fn call(method: &str, url: &str, token: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = http().request(method.parse().unwrap(), url).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let reply = request.send().unwrap();
    let status = reply.status().as_u16();
    let text = reply.text().unwrap();
    (status, if status >= 400 { serde_json::from_str(&text).unwrap() } else { Value::Null })
}

/// Asserts an error answer: `status`, `code`, and a message that names
/// none of `secrets` (the token's values, the key).
fn refused(answer: (u16, Value), status: u16, code: &str, secrets: &[&str], what: &str) {
    assert_eq!(answer.0, status, "{what}: {}", answer.1);
    assert_eq!(answer.1["error"], code, "{what}");
    let message = answer.1["message"].as_str().unwrap();
    for secret in secrets {
        assert!(!message.contains(secret), "{what}: the message {message:?} names {secret:?}");
    }
}

on_every_store! {
    /// Upload, download and the rest each reach exactly the paths their
    /// token names; the administrator's token reaches everything.
    fn a_scoped_token_reaches_only_its_paths_and_permissions(store: Store) {
        let keys = Scratch::new("token-keys");
        let secret = secret_file(keys.path());
        let d = Deployment::start(store, "scoped", 1, &["--token", ADMIN, "--jwt-secret-file", secret.to_str().unwrap()]);
        let (server, work) = (d.url(), d.work());
        let state = work.join("state");
        let exp = now() + 600;
        let content = data((2 << 20) + 3, 1);
        let source = work.join("a.bin");
        std::fs::write(&source, &content).unwrap();
        let hidden = &["alice", "users/42", "0123456789abcdef"];

        // The administrator puts a file in another user's folder.
        Client::new(&state).args(["--token", ADMIN]).arg(&source).arg(format!("{server}/users/43/a.bin")).ok_json();

        // Upload to users/42/, by PyJWT: a new file, then a delta over it.
        let upload = pyjwt("HS256", &secret, &json!({"exp": exp, "sub": "alice", "paths": ["users/42/"], "allow": ["upload"]}));
        Client::new(&state).args(["--token", &upload]).arg(&source).arg(format!("{server}/users/42/deep/a.bin")).ok_json();
        let mut changed = content.clone();
        changed[1 << 20] ^= 1;
        std::fs::write(&source, &changed).unwrap();
        Client::new(&state).args(["--token", &upload]).arg(&source).arg(format!("{server}/users/42/deep/a.bin")).ok_json();
        assert!(d.file("users/42/deep/a.bin") == Some(changed.clone()), "the delta landed");
        // Not beside it, not in a folder that only starts the same.
        for outside in ["users/43/a.bin", "users/420/a.bin", "users/a.bin"] {
            let run = Client::new(&state).args(["--token", &upload]).arg(&source).arg(format!("{server}/{outside}")).run();
            assert_eq!(run.code, 4, "{outside}: {}", run.stderr);
            let opened = call("POST", &format!("{server}/api/v2/uploads"), &upload, Some(json!({"path": outside, "size": 5})));
            refused(opened, 403, "not_allowed", hidden, outside);
        }
        assert!(d.file("users/43/a.bin") == Some(content.clone()), "the other user's file is untouched");
        assert!(d.file("users/420/a.bin").is_none());
        // Upload alone does not download.
        let got = call("GET", &format!("{server}/api/v1/files/users/42/deep/a.bin"), &upload, None);
        refused(got, 403, "not_allowed", hidden, "upload token downloading");
        assert!(got_message(&server, "/api/v1/files/users/42/deep/a.bin", &upload).contains("download"));

        // Download of one file, by `diffcopy token`.
        let one = minted(&secret, &["--path", "users/42/deep/a.bin", "--allow", "download", "--sub", "alice"]);
        let reply = http().get(format!("{server}/api/v1/files/users/42/deep/a.bin")).bearer_auth(&one).send().unwrap();
        assert_eq!(reply.status(), 200);
        assert!(reply.bytes().unwrap() == changed);
        let local = work.join("local.bin");
        Client::new(&state).args(["--token", &one]).arg(format!("{server}/users/42/deep/a.bin")).arg(&local).ok_json();
        assert!(std::fs::read(&local).unwrap() == changed, "a download through protocol v2");
        for other in ["users/42/deep/a.bin2", "users/42/deep/a.bi", "users/43/a.bin"] {
            let got = call("GET", &format!("{server}/api/v1/files/{other}"), &one, None);
            refused(got, 403, "not_allowed", hidden, other);
        }
        let run = Client::new(&state).args(["--token", &one]).arg(&source).arg(format!("{server}/users/42/deep/a.bin")).run();
        assert_eq!(run.code, 4, "a download token uploads nothing: {}", run.stderr);

        // A path that climbs out of the folder, spelt every way, never
        // reaches users/43 (sent raw: a normal client would normalise it).
        let folder = minted(&secret, &["--path", "users/42/", "--allow", "download"]);
        let bearer = format!("Bearer {folder}");
        for path in [
            "/api/v1/files/users/42/../43/a.bin",
            "/api/v1/files/users/42/%2e%2e/43/a.bin",
            "/api/v1/files/users/42/%2E%2E%2F43/a.bin",
            "/api/v1/files/users%2F42%2F..%2F43/a.bin",
            "/api/v1/files/users/42/./../43/a.bin",
            "/api/v2/signatures/users/42/%2e%2e/43/a.bin",
        ] {
            let answer = raw_request(d.servers[0].addr, &format!("GET {path} HTTP/1.1"), &[("Authorization", &bearer)], b"");
            assert!(matches!(answer.status, 400 | 403), "{path}: {} {}", answer.status, String::from_utf8_lossy(&answer.body));
        }

        // max_size: the largest file the token may upload.
        let small = minted(&secret, &["--path", "users/42/", "--allow", "upload", "--max-size", "1MiB", "--sub", "alice"]);
        let opened = call("POST", &format!("{server}/api/v2/uploads"), &small, Some(json!({"path": "users/42/big.bin", "size": (1 << 20) + 1})));
        refused(opened, 403, "not_allowed", hidden, "over max_size");
        let opened = call("POST", &format!("{server}/api/v2/uploads"), &small, Some(json!({"path": "users/42/fits.bin", "size": 1 << 20})));
        assert_eq!(opened.0, 201, "at max_size: {}", opened.1);

        // list and delete grant neither upload nor download.
        let other = minted(&secret, &["--path", "users/42/", "--allow", "list,delete"]);
        refused(call("GET", &format!("{server}/api/v1/files/users/42/deep/a.bin"), &other, None), 403, "not_allowed", hidden, "list/delete downloading");
        refused(call("POST", &format!("{server}/api/v2/uploads"), &other, Some(json!({"path": "users/42/x", "size": 1}))), 403, "not_allowed", hidden, "list/delete uploading");

        // Only the administrator reads the stats and uses pdiffcopy's endpoints.
        for path in ["/api/v1/stats", "/info?filename=/users/43/a.bin"] {
            refused(call("GET", &format!("{server}{path}"), &upload, None), 403, "not_allowed", hidden, path);
            assert_eq!(call("GET", &format!("{server}{path}"), ADMIN, None).0, 200, "{path} for the administrator");
        }
        assert_eq!(call("GET", &format!("{server}/api/v1/health"), &upload, None).0, 200);
    }

    /// An upload session belongs to the `sub` and paths of the token that
    /// opened it: another user's token can neither see, continue nor abort
    /// it; a fresh token of the same user (a refresh) can.
    fn an_upload_belongs_to_the_sub_that_opened_it(store: Store) {
        let keys = Scratch::new("token-keys");
        let secret = secret_file(keys.path());
        let d = Deployment::start(store, "owned", 1, &["--token", ADMIN, "--jwt-secret-file", secret.to_str().unwrap()]);
        let server = d.url();
        let exp = now() + 600;
        let alice = pyjwt("HS256", &secret, &json!({"exp": exp, "sub": "alice", "paths": ["users/"], "allow": ["upload", "download"]}));
        let bob = pyjwt("HS256", &secret, &json!({"exp": exp, "sub": "bob", "paths": ["users/"], "allow": ["upload", "download"]}));
        let nobody = pyjwt("HS256", &secret, &json!({"exp": exp, "paths": ["users/"], "allow": ["upload"]}));
        let alice_elsewhere = minted(&secret, &["--path", "other/", "--allow", "upload", "--sub", "alice"]);
        let alice_again = minted(&secret, &["--path", "users/alice/", "--allow", "upload", "--sub", "alice"]);
        let (status, _) = call("POST", &format!("{server}/api/v2/uploads"), &alice, Some(json!({"path": "users/alice/f.bin", "size": 5, "whole": true})));
        assert_eq!(status, 201);
        // The id, as only alice's client knows it.
        let reply = http().post(format!("{server}/api/v2/uploads")).bearer_auth(&alice)
            .json(&json!({"path": "users/alice/g.bin", "size": 5, "whole": true})).send().unwrap();
        let id = reply.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
        let session = format!("{server}/api/v2/uploads/{id}");
        for (who, token) in [("bob", &bob), ("a token without sub", &nobody), ("alice, for other paths", &alice_elsewhere)] {
            refused(call("GET", &session, token, None), 403, "not_allowed", &["alice", "users/alice"], who);
            refused(call("POST", &format!("{session}/commit"), token, None), 403, "not_allowed", &[], who);
            refused(call("DELETE", &session, token, None), 403, "not_allowed", &[], who);
        }
        assert_eq!(call("GET", &session, &alice_again, None).0, 200, "alice's next token goes on");
        assert_eq!(call("GET", &session, ADMIN, None).0, 200, "so does the administrator");
        assert_eq!(call("DELETE", &session, &alice_again, None).0, 204);
    }

    /// A listing needs `list` on its prefix, and shows a token only the
    /// files its paths cover; `diffcopy -r` downloads a user's folder with it.
    fn a_listing_shows_a_token_only_its_paths(store: Store) {
        let keys = Scratch::new("token-keys");
        let secret = secret_file(keys.path());
        let d = Deployment::start(store, "listing", 1, &["--token", ADMIN, "--jwt-secret-file", secret.to_str().unwrap()]);
        let (server, work) = (d.url(), d.work());
        let state = work.join("state");
        for (i, path) in ["users/42/a.txt", "users/42/deep/b.txt", "users/420/c.txt", "users/43/d.txt"].iter().enumerate() {
            let source = work.join(format!("f{i}"));
            std::fs::write(&source, path.as_bytes()).unwrap();
            Client::new(&state).args(["--token", ADMIN]).arg(&source).arg(format!("{server}/{path}")).ok_json();
        }
        let exp = now() + 600;
        let lister = pyjwt("HS256", &secret, &json!({"exp": exp, "sub": "u42", "paths": ["users/42/", "users/43/d.txt"], "allow": ["list", "download"]}));
        let listed = |prefix: &str, token: &str| -> (u16, Vec<String>) {
            let reply = http().get(format!("{server}/api/v2/list?prefix={prefix}")).bearer_auth(token).send().unwrap();
            let status = reply.status().as_u16();
            let body: Value = reply.json().unwrap();
            let paths = body["files"].as_array().map(|files| files.iter().map(|f| f["path"].as_str().unwrap().to_owned()).collect()).unwrap_or_default();
            (status, paths)
        };
        assert_eq!(listed("users/42/", &lister), (200, vec!["users/42/a.txt".to_owned(), "users/42/deep/b.txt".to_owned()]));
        assert_eq!(listed("users/43/d.txt", &lister), (200, vec!["users/43/d.txt".to_owned()]));
        for outside in ["", "users/", "users/4", "users/43/"] {
            let reply = http().get(format!("{server}/api/v2/list?prefix={outside}")).bearer_auth(&lister).send().unwrap();
            refused((reply.status().as_u16(), reply.json().unwrap()), 403, "not_allowed", &["u42"], outside);
        }
        let no_list = pyjwt("HS256", &secret, &json!({"exp": exp, "paths": ["users/42/"], "allow": ["download"]}));
        let reply = http().get(format!("{server}/api/v2/list?prefix=users/42/")).bearer_auth(&no_list).send().unwrap();
        refused((reply.status().as_u16(), reply.json().unwrap()), 403, "not_allowed", &[], "download alone");
        assert_eq!(listed("users/", ADMIN).1.len(), 4, "the administrator lists everything");

        let local = work.join("mine");
        let run = Client::new(&state).args(["-r", "--json", "--token", &lister]).arg(format!("{server}/users/42/")).arg(&local).run();
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(std::fs::read(local.join("deep/b.txt")).unwrap(), b"users/42/deep/b.txt");
        assert_eq!(std::fs::read(local.join("a.txt")).unwrap(), b"users/42/a.txt");

        // Inside a multi request each request meets the outer token, as alone.
        let reader = pyjwt("HS256", &secret, &json!({"exp": exp, "paths": ["users/42/"], "allow": ["download"]}));
        let body = multi_request(&[("GET", "/api/v1/files/users/42/a.txt"), ("GET", "/api/v1/files/users/43/d.txt")]);
        let statuses = |token: Option<&str>| -> Vec<u64> {
            let mut request = http().post(format!("{server}/api/v2/multi")).body(body.clone());
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            multi_answers(&request.send().unwrap().bytes().unwrap()).into_iter().map(|(status, _)| status).collect()
        };
        assert_eq!(statuses(Some(&reader)), [200, 403], "a token's paths hold inside a multi request");
        assert_eq!(statuses(None), [401, 401], "no token, no file");

        // Removing a file takes `delete` on its path.
        let removal = |token: &str, path: &str| call("DELETE", &format!("{server}/api/v2/files/{path}"), token, None);
        refused(removal(&lister, "users/42/a.txt"), 403, "not_allowed", &["u42"], "list and download do not remove");
        let remover = pyjwt("HS256", &secret, &json!({"exp": exp, "paths": ["users/42/"], "allow": ["delete"]}));
        refused(removal(&remover, "users/43/d.txt"), 403, "not_allowed", &[], "another user's file");
        assert_eq!(removal(&remover, "users/42/a.txt").0, 204);
        assert!(d.file("users/42/a.txt").is_none() && d.file("users/43/d.txt").is_some());
    }

    /// Every bad token is a 401 that says why (without the token's values or
    /// the secret); the clock gets 60 s of leeway.
    fn bad_tokens_are_refused_with_their_reason(store: Store) {
        let keys = Scratch::new("token-keys");
        let secret = secret_file(keys.path());
        let other_secret = keys.path().join("other-secret");
        std::fs::write(&other_secret, "another secret of at least thirty-two bytes").unwrap();
        let d = Deployment::start(store, "bad-tokens", 1, &["--jwt-secret-file", secret.to_str().unwrap()]);
        let server = d.url();
        let url = format!("{server}/api/v1/files/users/42/missing.bin");
        let t = now();
        let claims = |extra: Value| {
            let mut claims = json!({"exp": t + 600, "sub": "alice", "paths": ["users/42/"], "allow": ["download"]});
            for (k, v) in extra.as_object().unwrap() {
                if v.is_null() {
                    claims.as_object_mut().unwrap().remove(k);
                } else {
                    claims[k] = v.clone();
                }
            }
            claims
        };
        let hidden = &["alice", "users/42", "0123456789abcdef", "thirty-two"];
        // Accepted: the file is simply missing (404), within the leeway too.
        for (what, extra) in [
            ("valid", json!({})),
            ("expired 30 s ago", json!({"exp": t - 30})),
            ("valid from 30 s on", json!({"nbf": t + 30})),
            ("issued now", json!({"iat": t})),
        ] {
            let answer = call("GET", &url, &pyjwt("HS256", &secret, &claims(extra)), None);
            refused(answer, 404, "not_found", &[], what);
        }
        refused(call("GET", &url, &pyjwt("HS256", &secret, &claims(json!({"exp": t - 120}))), None), 401, "token_expired", hidden, "expired 120 s ago");
        for (what, token) in [
            ("valid from 300 s on", pyjwt("HS256", &secret, &claims(json!({"nbf": t + 300})))),
            ("another secret", pyjwt("HS256", &other_secret, &claims(json!({})))),
            ("alg none", pyjwt("none", &secret, &claims(json!({})))),
            ("HS384", pyjwt("HS384", &secret, &claims(json!({})))),
            ("HS512", pyjwt("HS512", &secret, &claims(json!({})))),
            ("no exp", pyjwt("HS256", &secret, &claims(json!({"exp": null})))),
            ("no paths", pyjwt("HS256", &secret, &claims(json!({"paths": null})))),
            ("a path that climbs", pyjwt("HS256", &secret, &claims(json!({"paths": ["users/42/../../"]})))),
            ("an unknown permission", pyjwt("HS256", &secret, &claims(json!({"allow": ["download", "admin"]})))),
            ("not a JWT", "users/42".to_owned()),
        ] {
            refused(call("GET", &url, &token, None), 401, "token_invalid", hidden, what);
        }
        // A signature that is not the token's own (its last byte changed).
        let mut forged = pyjwt("HS256", &secret, &claims(json!({})));
        let last = if forged.ends_with('A') { 'B' } else { 'A' };
        forged.pop();
        forged.push(last);
        refused(call("GET", &url, &forged, None), 401, "token_invalid", hidden, "forged");
        let reply = http().get(&url).send().unwrap();
        assert_eq!(reply.status(), 401);
        assert_eq!(reply.headers()["www-authenticate"], "Bearer");
        // No administrator's token is configured: the stats are no one's.
        refused(call("GET", &format!("{server}/api/v1/stats"), &pyjwt("HS256", &secret, &claims(json!({}))), None), 403, "not_allowed", hidden, "stats");
    }

    /// `--jwt-public-key` verifies EdDSA (Ed25519) or ES256 (P-256) tokens
    /// signed with its private half, and no other algorithm.
    fn public_keys_verify_eddsa_and_es256(store: Store) {
        let keys = Scratch::new("token-keys");
        let out = python().arg("keys").arg(keys.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let secret = secret_file(keys.path());
        let claims = json!({"exp": now() + 600, "paths": ["/"], "allow": ["download"]});
        let eddsa = pyjwt("EdDSA", &keys.path().join("ed25519.pem"), &claims);
        let es256 = pyjwt("ES256", &keys.path().join("p256.pem"), &claims);
        let hs256 = pyjwt("HS256", &secret, &claims);
        let pem = |name: &str| keys.path().join(name).display().to_string();
        let mut d = Deployment::start(store, "public-keys", 1, &["--jwt-public-key", &pem("ed25519.pub.pem")]);
        for (key, good, bad) in [("ed25519.pub.pem", &eddsa, [&es256, &hs256]), ("p256.pub.pem", &es256, [&eddsa, &hs256])] {
            d.restart(&["--jwt-public-key", &pem(key)]);
            let url = format!("{}/api/v1/files/missing.bin", d.url());
            refused(call("GET", &url, good, None), 404, "not_found", &[], key);
            for token in bad {
                refused(call("GET", &url, token, None), 401, "token_invalid", &[], key);
            }
        }
        // A P-384 key cannot verify ES256: the server does not start with one.
        let out = Command::new(diffcopy_bin())
            .current_dir(keys.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--root", "root", "--jwt-public-key"])
            .arg(pem("p384.pub.pem"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
        // With the secret as well, both kinds are taken.
        d.restart(&["--jwt-public-key", &pem("p256.pub.pem"), "--jwt-secret-file", secret.to_str().unwrap()]);
        let url = format!("{}/api/v1/files/missing.bin", d.url());
        for token in [&es256, &hs256] {
            refused(call("GET", &url, token, None), 404, "not_found", &[], "secret and public key");
        }
    }
}

/// The message of the error `GET path` answers.
fn got_message(server: &str, path: &str, token: &str) -> String {
    call("GET", &format!("{server}{path}"), token, None).1["message"].as_str().unwrap_or_default().to_owned()
}

/// An empty `--token` would let anyone in as the administrator: the server
/// refuses to start with one.
#[test]
fn an_empty_administrators_token_stops_the_server_at_start() {
    let dir = Scratch::new("empty-token");
    for (args, env) in [(vec!["--token", ""], None), (vec![], Some("")), (vec!["--token", "  "], None)] {
        let mut command = Command::new(diffcopy_bin());
        command
            .current_dir(dir.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--root", "root"])
            .args(&args);
        if let Some(value) = env {
            command.env("DIFFCOPY_TOKEN", value);
        }
        let out = command.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// `diffcopy token` refuses what it cannot sign: a short secret, a path that
/// climbs, an unknown permission.
#[test]
fn the_token_command_refuses_what_it_cannot_sign() {
    let keys = Scratch::new("token-command");
    let secret = secret_file(keys.path());
    let short = keys.path().join("short");
    std::fs::write(&short, "too short\n").unwrap();
    for (key, args) in [
        (&short, vec!["--path", "a/", "--allow", "upload"]),
        (&secret, vec!["--path", "a/../../", "--allow", "upload"]),
        (&secret, vec!["--path", "a/", "--allow", "upload,admin"]),
        (&secret, vec!["--path", "a/", "--allow", "upload", "--expires", "0s"]),
    ] {
        let out = Command::new(diffcopy_bin())
            .arg("token")
            .arg("--jwt-secret-file")
            .arg(key)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty());
    }
}
