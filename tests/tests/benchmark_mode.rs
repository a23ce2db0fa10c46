//! `diffcopy -B 5` against a local rsync daemon: it prints pdiffcopy's table
//! with rsync's times beside diffcopy's, and leaves the target synced.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diffcopy_tests::{Client, Scratch, data, wait_until};

struct RsyncDaemon(Child);

impl Drop for RsyncDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn benchmark_mode_prints_its_table_with_rsync() {
    assert!(
        Command::new("rsync").arg("--version").stdout(Stdio::null()).status().is_ok(),
        "rsync is not installed (scripts/setup installs it)"
    );
    let scratch = Scratch::new("benchmark-mode");
    let src_dir = scratch.path().join("src");
    std::fs::create_dir_all(&src_dir).unwrap();
    let source = src_dir.join("f.bin");
    std::fs::write(&source, data(8 << 20, 1)).unwrap();
    let target = scratch.path().join("target.bin");

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = scratch.path().join("rsyncd.conf");
    std::fs::write(
        &config,
        format!(
            "use chroot = no\nuid = 0\ngid = 0\naddress = 127.0.0.1\npid file = {}\n[data]\npath = {}\nread only = yes\n",
            scratch.path().join("rsyncd.pid").display(),
            src_dir.display()
        ),
    )
    .unwrap();
    let _daemon = RsyncDaemon(
        Command::new("rsync")
            .args(["--daemon", "--no-detach", &format!("--port={port}")])
            .arg(format!("--config={}", config.display()))
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the rsync daemon"),
    );
    wait_until(Duration::from_secs(20), "the rsync daemon to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });

    let state = scratch.path().join("state");
    let output = Client::new(&state)
        .args(["-q", "-B", "5", "--yes", "-b", "64K"])
        .args(["--rsync-server", &format!("127.0.0.1:{port}"), "--rsync-module", "data"])
        .arg("--rsync-root")
        .arg(&src_dir)
        .arg(&source)
        .arg(&target)
        .run();
    let table = &output.stdout;
    assert_eq!(output.code, 0, "{table}\n{}", output.stderr);
    println!("{table}");
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| ") && l.contains('%')).collect();
    assert_eq!(rows.len(), 5, "{table}");
    assert!(table.lines().next().unwrap().contains("Runtime of rsync"));
    assert!(rows[0].starts_with("| 20% ") && rows[4].starts_with("| 100% "), "{table}");
    assert!(rows.iter().all(|r| r.matches(" s |").count() == 2), "both times in every row: {table}");
    assert!(std::fs::read(&target).unwrap() == std::fs::read(&source).unwrap());

    // Without confirmation and without a terminal it refuses.
    let refused = Client::new(&state).args(["-B", "2"]).arg(&source).arg(&target).run();
    assert_eq!(refused.code, 2);
}
