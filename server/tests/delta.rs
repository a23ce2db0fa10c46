//! Protocol v2's endpoints through the router: a whole exchange driven by
//! hand, every malformed or out-of-turn message answered with a 4xx and a
//! code, and a search a hostile client cannot make unbounded.

mod common;

use axum::http::{Method, StatusCode, header};
use common::*;
use diffcopy_core::delta::{
    BlockHash, BlockHashes, BlockHashesBuilder, Codec, DeltaParams, FrameWriter, Levels, Need, PieceHashes,
    SliceFile, weak_sum,
};
use serde_json::{Value, json};

/// A session as the server opened it: its id and parameters.
struct Opened {
    id: String,
    params: DeltaParams,
}

async fn open(s: &Server, path: &str, size: usize) -> Opened {
    let reply =
        s.post_json("/api/v2/uploads", json!({"path": path, "size": size, "block_size": BLOCK})).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let body = reply.json();
    let seed = u64::from_str_radix(body["seed"].as_str().unwrap(), 16).unwrap();
    let sizes: Vec<u32> =
        body["levels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    let params = DeltaParams { file_size: size as u64, seed, levels: Levels::new(&sizes).unwrap() };
    Opened { id: body["id"].as_str().unwrap().to_owned(), params }
}

fn block_hashes(params: DeltaParams, new: &[u8]) -> BlockHashes {
    let mut builder = BlockHashesBuilder::new(params);
    for block in new.chunks(params.levels.block_size() as usize) {
        builder.push_block(block);
    }
    builder.finish().unwrap()
}

impl Server {
    async fn post(&self, uri: &str, body: Vec<u8>) -> Reply {
        self.send(Method::POST, uri, &[], body).await
    }

    async fn round(&self, id: &str, body: Vec<u8>, size: u64) -> Need {
        let reply = self.post(&format!("/api/v2/uploads/{id}/hashes"), body).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        Need::decode(&reply.body, size).unwrap()
    }
}

/// Runs an upload's search to its end; returns the literal ranges.
async fn search(s: &Server, opened: &Opened, new: &[u8]) -> Vec<std::ops::Range<u64>> {
    let size = opened.params.file_size;
    let mut need = s.round(&opened.id, block_hashes(opened.params, new).encode(), size).await;
    let mut literal = need.literal.clone();
    while !need.is_final() {
        let pieces =
            PieceHashes::compute(&opened.params, need.level, &need.refine, &mut SliceFile(new)).unwrap();
        need = s.round(&opened.id, pieces.encode(), size).await;
        literal.extend(need.literal.iter().cloned());
    }
    literal
}

fn frames(new: &[u8], ranges: &[std::ops::Range<u64>]) -> Vec<u8> {
    let mut writer = FrameWriter::new();
    for r in ranges {
        writer.push(r.start, (r.end - r.start) as u32, Codec::Raw, &new[r.start as usize..r.end as usize]);
    }
    writer.finish()
}

#[tokio::test]
async fn an_upload_driven_by_hand_sends_only_what_changed() {
    let s = server("v2-by-hand", |_| {});
    let old = data(40 * BLOCK as usize + 123, 1);
    s.write("d/f.bin", &old);
    let mut new = old.clone();
    new.splice(5000..5000, b"inserted!".iter().copied());
    let opened = open(&s, "d/f.bin", new.len()).await;
    let literal = search(&s, &opened, &new).await;
    let literal_bytes: u64 = literal.iter().map(|r| r.end - r.start).sum();
    assert!(literal_bytes <= 1024, "{literal:?}");

    // Commit before the data: 409 with what is missing.
    let uri = format!("/api/v2/uploads/{}/commit", opened.id);
    let early = s.post(&uri, Vec::new()).await;
    assert_eq!((early.status, early.code().as_str()), (StatusCode::CONFLICT, "missing_data"));
    assert_eq!(early.json()["missing"].as_array().unwrap().len(), literal.len());
    let status = s.get(&format!("/api/v2/uploads/{}", opened.id)).await.json();
    assert_eq!(status["phase"], "receiving");

    let sent = s.post(&format!("/api/v2/uploads/{}/data", opened.id), frames(&new, &literal)).await;
    assert_eq!(sent.status, StatusCode::NO_CONTENT, "{:?}", sent.body);
    assert_eq!(s.read("d/f.bin"), old, "nothing changes before the commit");
    let done = s.post(&uri, Vec::new()).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.json()["literal_bytes"], literal_bytes);
    assert_eq!(s.read("d/f.bin"), new);
    assert!(staging_files(&s.scratch.root()).is_empty());
    let gone = s.get(&format!("/api/v2/uploads/{}", opened.id)).await;
    assert_eq!(gone.code(), "no_such_upload");
}

#[tokio::test]
async fn an_unchanged_file_is_checked_not_rewritten() {
    let s = server("v2-unchanged", |_| {});
    let old = data(10 * BLOCK as usize, 2);
    s.write("f.bin", &old);
    let inode =
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(s.scratch.root().join("f.bin")).unwrap());
    let opened = open(&s, "f.bin", old.len()).await;
    assert!(search(&s, &opened, &old).await.is_empty());
    let done = s.post(&format!("/api/v2/uploads/{}/commit", opened.id), Vec::new()).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(done.json()["unchanged"], true);
    let after =
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(s.scratch.root().join("f.bin")).unwrap());
    assert_eq!(inode, after, "the same file, not a copy");
    assert!(staging_files(&s.scratch.root()).is_empty());
}

#[tokio::test]
async fn malformed_and_out_of_turn_messages_get_a_4xx_with_a_code() {
    let s = server("v2-hostile", |_| {});
    let old = data(8 * BLOCK as usize, 3);
    s.write("f.bin", &old);
    let mut new = old.clone();
    new.extend_from_slice(b"ten bytes!");

    let bad = |body: Value| async { s.post_json("/api/v2/uploads", body).await };
    assert_eq!(bad(json!({"path": "x"})).await.code(), "bad_json");
    assert_eq!(bad(json!({"path": "x", "size": 1, "block_size": 100})).await.code(), "bad_block_size");
    assert_eq!(bad(json!({"path": "../x", "size": 1})).await.code(), "bad_path");
    assert_eq!(bad(json!({"path": "x", "size": 1u64 << 62})).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    let stale = bad(json!({"path": "f.bin", "size": 1, "base_etag": "\"nope\""})).await;
    assert_eq!((stale.status, stale.code().as_str()), (StatusCode::PRECONDITION_FAILED, "target_changed"));

    let opened = open(&s, "f.bin", new.len()).await;
    let hashes_uri = format!("/api/v2/uploads/{}/hashes", opened.id);
    let data_uri = format!("/api/v2/uploads/{}/data", opened.id);
    let good = block_hashes(opened.params, &new).encode();
    let expect = |reply: Reply, status: StatusCode, code: &str| {
        assert_eq!((reply.status, reply.code().as_str()), (status, code), "{:?}", reply.body);
    };
    expect(
        s.post(&hashes_uri, good[..good.len() - 1].to_vec()).await,
        StatusCode::BAD_REQUEST,
        "bad_delta_message",
    );
    let mut longer = good.clone();
    longer.push(0);
    expect(s.post(&hashes_uri, longer).await, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    expect(s.post(&hashes_uri, b"garbage!".to_vec()).await, StatusCode::BAD_REQUEST, "bad_delta_message");
    let wrong_seed = DeltaParams { seed: opened.params.seed ^ 1, ..opened.params };
    expect(
        s.post(&hashes_uri, block_hashes(wrong_seed, &new).encode()).await,
        StatusCode::BAD_REQUEST,
        "bad_delta_message",
    );
    let early_pieces = PieceHashes { level: 1, weak: vec![0; 3], hashes: vec![0; 3] }.encode();
    expect(s.post(&hashes_uri, early_pieces).await, StatusCode::BAD_REQUEST, "bad_delta_message");
    expect(s.post(&data_uri, frames(&new, &[0..10])).await, StatusCode::CONFLICT, "not_receiving");

    // The session still works after all of that.
    let need = s.round(&opened.id, good, new.len() as u64).await;
    assert!(!need.is_final(), "the last block changed: refine it");
    let expected = diffcopy_core::delta::pieces_of(&opened.params, need.level, &need.refine).count();
    let longer =
        PieceHashes { level: need.level, weak: vec![0; expected + 1], hashes: vec![0; expected + 1] };
    expect(s.post(&hashes_uri, longer.encode()).await, StatusCode::PAYLOAD_TOO_LARGE, "body_too_large");
    let fewer = PieceHashes { level: need.level, weak: vec![0; expected - 1], hashes: vec![0; expected - 1] };
    expect(s.post(&hashes_uri, fewer.encode()).await, StatusCode::BAD_REQUEST, "bad_delta_message");
    let pieces =
        PieceHashes::compute(&opened.params, need.level, &need.refine, &mut SliceFile(&new)).unwrap();
    let wrong_level = PieceHashes { level: need.level + 1, ..pieces.clone() };
    expect(s.post(&hashes_uri, wrong_level.encode()).await, StatusCode::BAD_REQUEST, "bad_delta_message");
    let mut need = s.round(&opened.id, pieces.encode(), new.len() as u64).await;
    while !need.is_final() {
        let pieces =
            PieceHashes::compute(&opened.params, need.level, &need.refine, &mut SliceFile(&new)).unwrap();
        need = s.round(&opened.id, pieces.encode(), new.len() as u64).await;
    }
    expect(s.post(&hashes_uri, vec![0; 12]).await, StatusCode::CONFLICT, "search_over");

    // Data: only where the plan wants literal data, frames that decode.
    let status = s.get(&format!("/api/v2/uploads/{}", opened.id)).await.json();
    let missing: Vec<std::ops::Range<u64>> = status["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_u64().unwrap()..r[1].as_u64().unwrap())
        .collect();
    let first = missing[0].clone();
    let outside = if first.start > 0 { 0..1 } else { first.end..first.end + 1 };
    expect(s.post(&data_uri, frames(&new, &[outside])).await, StatusCode::BAD_REQUEST, "unexpected_data");
    let mut lying = FrameWriter::new();
    lying.push(first.start, (first.end - first.start) as u32, Codec::Zstd, b"not zstd at all");
    expect(s.post(&data_uri, lying.finish()).await, StatusCode::BAD_REQUEST, "bad_delta_message");
    let mut past_end = FrameWriter::new();
    past_end.push(new.len() as u64 - 1, 2, Codec::Raw, b"xx");
    expect(s.post(&data_uri, past_end.finish()).await, StatusCode::BAD_REQUEST, "bad_delta_message");
    let whole = frames(&new, &missing);
    expect(
        s.post(&data_uri, whole[..whole.len() - 3].to_vec()).await,
        StatusCode::BAD_REQUEST,
        "bad_delta_message",
    );

    assert_eq!(s.post(&data_uri, whole).await.status, StatusCode::NO_CONTENT);
    let done = s.post(&format!("/api/v2/uploads/{}/commit", opened.id), Vec::new()).await;
    assert_eq!(done.status, StatusCode::OK, "{:?}", done.body);
    assert_eq!(s.read("f.bin"), new);
    let unknown = s.post("/api/v2/uploads/0123/hashes", Vec::new()).await;
    assert_eq!((unknown.status, unknown.code().as_str()), (StatusCode::NOT_FOUND, "no_such_upload"));
}

/// Every block claims the weak sum of a zero window, over an old file of
/// zeros: every rolling position is a weak hit. The budget ends the search.
#[tokio::test]
async fn a_hostile_client_cannot_make_the_search_unbounded() {
    let s = server("v2-bounded", |_| {});
    let old = vec![0u8; 512 * BLOCK as usize];
    s.write("zeros.bin", &old);
    let opened = open(&s, "zeros.bin", old.len()).await;
    let mut builder = BlockHashesBuilder::new(opened.params);
    let weak = weak_sum(&old[..BLOCK as usize]);
    for i in 0..opened.params.block_count() {
        builder.push(BlockHash { weak, hash: u128::from(i) + 1 });
    }
    let mut need = s.round(&opened.id, builder.finish().unwrap().encode(), old.len() as u64).await;
    // Lying hashes on every finer level too, to the end.
    while !need.is_final() {
        let count = diffcopy_core::delta::pieces_of(&opened.params, need.level, &need.refine).count();
        let lies = PieceHashes { level: need.level, weak: vec![7; count], hashes: vec![7; count] };
        need = s.round(&opened.id, lies.encode(), old.len() as u64).await;
    }
    let stats = s.stats();
    let budget = 8 * 2 * old.len() as u64 + (64 << 20);
    assert!(stats.search_bytes_hashed > 0 && stats.search_bytes_hashed <= budget, "{stats:?}");
    // Whatever the client claims, the search reads the old file about once.
    let rolled_bound = old.len() as u64 / 8 + 2 * opened.params.block_count() * u64::from(BLOCK);
    assert!(stats.search_bytes_rolled <= rolled_bound, "{stats:?}");
}

#[tokio::test]
async fn downloads_answer_hashes_and_data_for_one_version_only() {
    let s = server("v2-download", |_| {});
    let file = data(20 * BLOCK as usize + 7, 5);
    s.write("f.bin", &file);
    let sig = s.get(&format!("/api/v2/signatures/f.bin?block_size={BLOCK}")).await;
    assert_eq!(sig.status, StatusCode::OK);
    let etag = sig.headers[header::ETAG].to_str().unwrap().to_owned();
    let hashes = BlockHashes::decode(&sig.body).unwrap();
    let params = *hashes.params();
    assert_eq!(hashes.file_hash(), block_hashes(params, &file).file_hash());

    let need = Need { level: 1, refine: vec![0..u64::from(BLOCK)], literal: vec![100..200, 5000..5001] };
    let uri = format!("/api/v2/hashes/f.bin?block_size={BLOCK}&seed={:016x}", params.seed);
    let reply = s.send(Method::POST, &uri, &[("if-match", etag.as_str())], need.encode()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let pieces = PieceHashes::decode(&reply.body).unwrap();
    let expected = PieceHashes::compute(&params, 1, &need.refine, &mut SliceFile(&file)).unwrap();
    assert_eq!(pieces, expected);
    let data_reply =
        s.send(Method::POST, "/api/v2/data/f.bin", &[("if-match", etag.as_str())], need.encode()).await;
    assert_eq!(data_reply.status, StatusCode::OK);
    let frames = diffcopy_core::delta::parse_frames(&data_reply.body, file.len() as u64).unwrap();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].range(), 100..200);

    let no_etag = s.send(Method::POST, &uri, &[], need.encode()).await;
    assert_eq!(no_etag.code(), "missing_if_match");
    s.write("f.bin", &data(20 * BLOCK as usize + 7, 6));
    let stale =
        s.send(Method::POST, "/api/v2/data/f.bin", &[("if-match", etag.as_str())], need.encode()).await;
    assert_eq!((stale.status, stale.code().as_str()), (StatusCode::PRECONDITION_FAILED, "target_changed"));
    let garbage = s.send(Method::POST, &uri, &[("if-match", "x")], b"nonsense".to_vec()).await;
    assert!(garbage.status.is_client_error());
    let bad_seed =
        s.send(Method::POST, "/api/v2/hashes/f.bin?seed=zz", &[("if-match", "x")], Vec::new()).await;
    assert_eq!(bad_seed.code(), "bad_query");
}
