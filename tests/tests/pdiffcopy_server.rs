//! Our client against a real pdiffcopy 1.0.1 server, both directions.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diffcopy_tests::{Client, Scratch, data, pdiffcopy, wait_until};

struct PdiffcopyServer {
    port: u16,
    child: Child,
}

impl PdiffcopyServer {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(pdiffcopy())
            .args(["-l", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the pdiffcopy server");
        wait_until(Duration::from_secs(30), "pdiffcopy's server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { port, child }
    }
}

impl Drop for PdiffcopyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn diffcopy(scratch: &Scratch, args: &[&str]) -> serde_json::Value {
    Client::new(scratch.path().join("state")).args(args).ok_json()
}

#[test]
fn our_client_uploads_to_and_downloads_from_a_pdiffcopy_server() {
    let scratch = Scratch::new("pdiffcopy-server");
    let server = PdiffcopyServer::start();
    let remote_file = scratch.path().join("remote/f.bin");
    let url = format!("http://127.0.0.1:{}{}", server.port, remote_file.display());
    let local = scratch.path().join("local.bin");
    let block = 64 << 10;
    let mut content = data(20 * block + 5, 1);

    std::fs::write(&local, &content).unwrap();
    let new = diffcopy(&scratch, &["-b", "64K", local.to_str().unwrap(), &url]);
    assert_eq!(std::fs::read(&remote_file).unwrap(), content);
    assert_eq!(new["bytes_sent"], content.len());

    content[7 * block] ^= 1;
    content.truncate(15 * block);
    std::fs::write(&local, &content).unwrap();
    let changed = diffcopy(&scratch, &["-b", "64K", local.to_str().unwrap(), &url]);
    assert_eq!(std::fs::read(&remote_file).unwrap(), content);
    assert_eq!(changed["blocks_sent"], 1, "{changed}");

    // Download: a changed block and growth on the server's side.
    let down = scratch.path().join("down.bin");
    diffcopy(&scratch, &["-b", "64K", &url, down.to_str().unwrap()]);
    assert_eq!(std::fs::read(&down).unwrap(), content);
    content[2 * block + 9] ^= 1;
    content.extend_from_slice(&data(3 * block, 2));
    std::fs::write(&remote_file, &content).unwrap();
    let again = diffcopy(&scratch, &["-b", "64K", "--protocol", "pdiffcopy", &url, down.to_str().unwrap()]);
    assert_eq!(std::fs::read(&down).unwrap(), content);
    assert_eq!(again["blocks_sent"], 4, "{again}");
}
