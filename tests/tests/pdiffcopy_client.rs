//! The real pdiffcopy 1.0.1 client against our server, both directions.

use diffcopy_tests::{InProcessServer, Scratch, data, run_pdiffcopy};

const BLOCK: usize = 64 << 10;

/// Uploads `source` with pdiffcopy and checks the server's copy; returns the
/// bytes pdiffcopy wrote through `POST /blocks`.
fn upload(server: &InProcessServer, scratch: &Scratch, name: &str, source: &[u8]) -> u64 {
    let local = scratch.path().join(format!("local-{name}"));
    std::fs::write(&local, source).unwrap();
    let before = server.state.stats().pdiffcopy_bytes_written;
    let url = format!("{}/files/{name}", server.url());
    run_pdiffcopy(&["-b", &BLOCK.to_string(), local.to_str().unwrap(), &url]);
    let on_server = std::fs::read(scratch.path().join("root/files").join(name)).unwrap();
    assert!(on_server == source, "{name}: the server's copy differs");
    server.state.stats().pdiffcopy_bytes_written - before
}

#[test]
fn pdiffcopy_uploads_new_changed_unchanged_shrinking_and_growing_files() {
    let scratch = Scratch::new("pdiffcopy-upload");
    let server = InProcessServer::start(&scratch.path().join("root"), |_| {});
    let original = data(10 * BLOCK + 123, 1);

    assert_eq!(upload(&server, &scratch, "f.bin", &original), original.len() as u64, "new: everything");

    let mut changed = original.clone();
    changed[3 * BLOCK + 10] ^= 0xff;
    assert_eq!(upload(&server, &scratch, "f.bin", &changed), BLOCK as u64, "changed: one block");

    assert_eq!(upload(&server, &scratch, "f.bin", &changed), 0, "unchanged: nothing");

    let shrunk = changed[..6 * BLOCK + 5].to_vec();
    assert_eq!(upload(&server, &scratch, "f.bin", &shrunk), 5, "shrinking: the new short block");

    let mut grown = shrunk.clone();
    grown.extend_from_slice(&data(2 * BLOCK, 2));
    let sent = upload(&server, &scratch, "f.bin", &grown);
    assert_eq!(sent, (grown.len() - 6 * BLOCK) as u64, "growing: the old short block and the new ones");
}

#[test]
fn pdiffcopy_downloads_from_our_server() {
    let scratch = Scratch::new("pdiffcopy-download");
    let root = scratch.path().join("root");
    let server = InProcessServer::start(&root, |_| {});
    let local = scratch.path().join("local.bin");
    let remote = format!("{}/dir/f.bin", server.url());
    let mut content = data(5 * BLOCK + 7, 3);
    std::fs::create_dir_all(root.join("dir")).unwrap();

    for step in ["new", "changed", "shrinking", "growing"] {
        match step {
            "changed" => content[2 * BLOCK] ^= 1,
            "shrinking" => content.truncate(3 * BLOCK + 1),
            "growing" => content.extend_from_slice(&data(4 * BLOCK, 4)),
            _ => {}
        }
        std::fs::write(root.join("dir/f.bin"), &content).unwrap();
        run_pdiffcopy(&["-b", &BLOCK.to_string(), &remote, local.to_str().unwrap()]);
        assert!(std::fs::read(&local).unwrap() == content, "{step}: the download differs");
    }
}
