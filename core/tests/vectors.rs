//! Signatures of fixed inputs at the edge sizes against digests from
//! independent implementations: SHA-1 and SHA-256 per 1 KiB block from
//! OpenSSL (Python's hashlib), BLAKE3 from the official `test_vectors.json`.
//! Every input is the BLAKE3 vectors' pattern: byte `i` is `i % 251`.

use diffcopy_core::{HashAlgorithm, SignatureBuilder};

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// (algorithm, input length, digest of each 1 KiB block).
const BLOCK_VECTORS: &[(HashAlgorithm, usize, &[&str])] = &[
    (HashAlgorithm::Sha1, 0, &[]),
    (HashAlgorithm::Sha1, 1, &["5ba93c9db0cff93f52b521d7420e43f6eda2784f"]),
    (HashAlgorithm::Sha1, 1023, &["1d58257e7e9cecee00473911023732e408e9bee3"]),
    (HashAlgorithm::Sha1, 1024, &["0ac28084ff74933d05123496dafd3791684d9b53"]),
    (
        HashAlgorithm::Sha1,
        1025,
        &["0ac28084ff74933d05123496dafd3791684d9b53", "3ce0a1af90b6e7a3dd8d45e410884b588ea2d04c"],
    ),
    (
        HashAlgorithm::Sha1,
        3089,
        &[
            "0ac28084ff74933d05123496dafd3791684d9b53",
            "12cb9b5124006e2075855a436aa9774ff8c00467",
            "488b63a3191fdb9c93886a5f2bb1acbca9a44e69",
            "74725a5fbebb6806b29762ab30c729fdb6bebeb6",
        ],
    ),
    (HashAlgorithm::Sha256, 0, &[]),
    (HashAlgorithm::Sha256, 1, &["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"]),
    (HashAlgorithm::Sha256, 1023, &["1c5e88a585b61754df6137d66632a7348557a88358afc401b0a0a4fc427104a9"]),
    (HashAlgorithm::Sha256, 1024, &["2bce1ba628720664be4b9fdd77aae0678e5f0f3f02fc6ff641ec879094f6a404"]),
    (
        HashAlgorithm::Sha256,
        1025,
        &[
            "2bce1ba628720664be4b9fdd77aae0678e5f0f3f02fc6ff641ec879094f6a404",
            "83891d7fe85c33e52c8b4e5814c92fb6a3b9467299200538a6babaa8b452d879",
        ],
    ),
    (
        HashAlgorithm::Sha256,
        3089,
        &[
            "2bce1ba628720664be4b9fdd77aae0678e5f0f3f02fc6ff641ec879094f6a404",
            "50df58ae70fe40f3bd0234e1aa86f95dfaba1e118d4db5fd4b682ca2b61004d5",
            "38eeebb5fdd54885da1c38ffb8a6db84cdd498f2ed9e61899f410fa3131de7a6",
            "09ddba35d1cfbafe2828328a907f9311a2b7ea1cd96b073ab7f712a272eae7f4",
        ],
    ),
];

/// BLAKE3 of the whole pattern (the first 32 bytes of the official vectors).
const BLAKE3_VECTORS: &[(usize, &str)] = &[
    (0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
    (1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"),
    (1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"),
    (1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"),
    (1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"),
    (2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"),
    (3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"),
    (3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"),
];

#[test]
fn sha_block_digests_at_edge_sizes() {
    for &(algorithm, len, expected) in BLOCK_VECTORS {
        let data = pattern(len);
        // Fed in awkward 100-byte chunks so blocks straddle updates.
        let mut builder = SignatureBuilder::new(algorithm, 1024).unwrap();
        for chunk in data.chunks(100) {
            builder.update(chunk);
        }
        let sig = builder.finish();
        let got: Vec<String> = sig.digests().map(hex).collect();
        assert_eq!(got, expected, "{algorithm} over {len} bytes");
    }
}

#[test]
fn blake3_official_vectors() {
    for &(len, expected) in BLAKE3_VECTORS {
        let mut builder = SignatureBuilder::new(HashAlgorithm::Blake3, 4096).unwrap();
        builder.update(&pattern(len));
        let sig = builder.finish();
        let expected: &[&str] = if len == 0 { &[] } else { &[expected] };
        let got: Vec<String> = sig.digests().map(hex).collect();
        assert_eq!(got, expected, "blake3 over {len} bytes");
    }
}
