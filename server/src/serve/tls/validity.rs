//! The validity period of an X.509 certificate, read from its DER (RFC 5280
//! §4.1): enough to refuse an expired certificate at start, without an
//! X.509 crate.

/// When the certificate becomes valid and when it stops being valid, in
/// seconds since the Unix epoch; `None` if the DER is not a certificate.
pub(super) fn validity(der: &[u8]) -> Option<(i64, i64)> {
    const SEQUENCE: u8 = 0x30;
    let mut certificate = Der(der).enter(SEQUENCE)?;
    let mut tbs = certificate.enter(SEQUENCE)?;
    // version [0] EXPLICIT (absent for v1), serialNumber, signature, issuer.
    if tbs.0.first() == Some(&0xa0) {
        tbs.next()?;
    }
    for _ in 0..3 {
        tbs.next()?;
    }
    let mut period = tbs.enter(SEQUENCE)?;
    Some((time(period.next()?)?, time(period.next()?)?))
}

/// The unread rest of some DER.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next element: its tag and its contents.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return None;
            }
            let (bytes, rest) = rest.split_at_checked(count)?;
            (bytes.iter().fold(0usize, |n, &b| n << 8 | usize::from(b)), rest)
        };
        let (contents, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some((tag, contents))
    }

    /// The contents of the next element, which must have `tag`.
    fn enter(&mut self, tag: u8) -> Option<Der<'a>> {
        let (found, contents) = self.next()?;
        (found == tag).then_some(Der(contents))
    }
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950 to 2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`) in seconds since the Unix epoch.
fn time((tag, text): (u8, &[u8])) -> Option<i64> {
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, &d| n * 10 + i64::from(d - b'0')))
    };
    let (year, rest) = match (tag, text.len()) {
        (0x17, 13) => {
            let yy = digits(0..2)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        (0x18, 15) => (digits(0..4)?, 4),
        _ => return None,
    };
    if text.last() != Some(&b'Z') {
        return None;
    }
    let field = |i: usize| digits(rest + 2 * i..rest + 2 * i + 2);
    let (month, day, hour, minute, second) = (field(0)?, field(1)?, field(2)?, field(3)?, field(4)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_forms() {
        assert_eq!(time((0x17, b"700101000000Z")), Some(0));
        assert_eq!(time((0x17, b"491231235959Z")), Some(2_524_607_999));
        assert_eq!(time((0x18, b"20261201210000Z")), Some(1_796_158_800));
        assert_eq!(time((0x18, b"19691231235959Z")), Some(-1));
        assert_eq!(time((0x17, b"701301000000Z")), None, "month 13");
        assert_eq!(time((0x17, b"7001010000Z")), None, "too short");
        assert_eq!(time((0x05, b"700101000000Z")), None, "not a time");
    }

    #[test]
    fn not_a_certificate() {
        assert_eq!(validity(b""), None);
        assert_eq!(validity(&[0x30, 0x03, 0x30, 0x01, 0x02]), None);
        assert_eq!(validity(&[0x30, 0x85, 1, 2, 3, 4, 5]), None);
    }
}
