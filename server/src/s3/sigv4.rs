//! AWS Signature Version 4, as S3 takes it: the canonical request, the
//! string to sign and the HMAC-SHA256 key chain. Bodies go unsigned
//! (`UNSIGNED-PAYLOAD`): hashing every uploaded byte twice buys nothing
//! over TLS, and S3 accepts it.

use sha2::{Digest, Sha256};

use super::credentials::Credentials;

/// The payload hash sent for every request.
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// One request to sign: its parts in canonical form.
pub(crate) struct ToSign<'a> {
    pub(crate) method: &'a str,
    /// The URI-encoded path (`/bucket/key`).
    pub(crate) path: &'a str,
    /// The canonical query string (sorted, encoded), or empty.
    pub(crate) query: &'a str,
    /// Lower-case names and values, sorted by name; `host` and the
    /// `x-amz-*` headers included.
    pub(crate) headers: &'a [(String, String)],
    /// `YYYYMMDDTHHMMSSZ`.
    pub(crate) amz_date: &'a str,
    pub(crate) region: &'a str,
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut padded = [0u8; BLOCK];
    if key.len() > BLOCK {
        let digest: [u8; 32] = Sha256::digest(key).into();
        padded[..32].copy_from_slice(&digest);
    } else {
        padded[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(padded.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(padded.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn sha256_hex(data: &[u8]) -> String {
    let digest: [u8; 32] = Sha256::digest(data).into();
    diffcopy_core::hex::encode(&digest)
}

/// The `Authorization` header's value for `request`.
pub(crate) fn authorization(credentials: &Credentials, request: &ToSign<'_>) -> String {
    let mut canonical = format!("{}\n{}\n{}\n", request.method, request.path, request.query);
    for (name, value) in request.headers {
        canonical.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let signed: Vec<&str> = request.headers.iter().map(|(name, _)| name.as_str()).collect();
    let signed = signed.join(";");
    canonical.push_str(&format!("\n{signed}\n"));
    let payload = request
        .headers
        .iter()
        .find(|(name, _)| name == "x-amz-content-sha256")
        .map_or(UNSIGNED_PAYLOAD, |(_, value)| value.as_str());
    canonical.push_str(payload);
    let date = &request.amz_date[..8];
    let scope = format!("{date}/{}/s3/aws4_request", request.region);
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{}\n{scope}\n{}", request.amz_date, sha256_hex(canonical.as_bytes()));
    let key = [request.region.as_bytes(), b"s3", b"aws4_request"]
        .iter()
        .fold(hmac(format!("AWS4{}", credentials.secret_key).as_bytes(), date.as_bytes()), |key, part| {
            hmac(&key, part)
        });
    let signature = diffcopy_core::hex::encode(&hmac(&key, to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
        credentials.access_key
    )
}

/// Percent-encodes `text` as SigV4 wants: everything but `A-Za-z0-9-._~`
/// (and `/` when `keep_slash`), upper-case hex.
pub(crate) fn uri_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(byte as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// `unix` seconds as `YYYYMMDDTHHMMSSZ`.
pub(crate) fn amz_date(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Days since 1970-01-01 as (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// An S3 timestamp (`2026-12-02T04:05:06.000Z`) as unix seconds.
pub(crate) fn parse_timestamp(text: &str) -> Option<u64> {
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of the S3 SigV4 documentation.
    #[test]
    fn signs_the_documented_example() {
        let credentials = Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let headers = vec![
            ("host".to_owned(), "examplebucket.s3.amazonaws.com".to_owned()),
            ("range".to_owned(), "bytes=0-9".to_owned()),
            ("x-amz-content-sha256".to_owned(), empty.to_owned()),
            ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
        ];
        let request = ToSign {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &headers,
            amz_date: "20130524T000000Z",
            region: "us-east-1",
        };
        let header = authorization(&credentials, &request);
        assert!(
            header.ends_with("Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
            "{header}"
        );
        assert!(header.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            diffcopy_core::hex::encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        for unix in [0u64, 951_782_400, 1_369_353_600, 1_796_000_123, 4_102_444_799] {
            let text = amz_date(unix);
            let iso = format!(
                "{}-{}-{}T{}:{}:{}.000Z",
                &text[0..4],
                &text[4..6],
                &text[6..8],
                &text[9..11],
                &text[11..13],
                &text[13..15]
            );
            assert_eq!(parse_timestamp(&iso), Some(unix), "{iso}");
        }
        assert_eq!(parse_timestamp("garbage"), None);
    }

    #[test]
    fn encodes_like_sigv4() {
        assert_eq!(uri_encode("a b/c~d+é", true), "a%20b/c~d%2B%C3%A9");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
    }
}
