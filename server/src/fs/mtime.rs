//! Modification times as the API carries them: whole milliseconds since the
//! Unix epoch (negative before it), the precision a browser's
//! `File.lastModified` has. Listings show them, commits take them, and the
//! quick check of `diffcopy -r` compares them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `time` in milliseconds since the epoch, rounded down.
pub(crate) fn to_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        // Before the epoch: round towards the past, as for times after it.
        Err(before) => {
            let d = before.duration();
            let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
            if d.as_nanos() % 1_000_000 == 0 { -ms } else { -ms - 1 }
        }
    }
}

/// The time `ms` milliseconds from the epoch; `None` where the system's
/// time cannot hold it.
pub(crate) fn from_ms(ms: i64) -> Option<SystemTime> {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 { UNIX_EPOCH.checked_add(d) } else { UNIX_EPOCH.checked_sub(d) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_round_trip_and_round_down() {
        for ms in [0, 1, -1, 1_733_500_000_123, -86_400_000_001] {
            assert_eq!(to_ms(from_ms(ms).unwrap()), ms);
        }
        assert_eq!(to_ms(UNIX_EPOCH + Duration::from_nanos(1_999_999)), 1);
        assert_eq!(to_ms(UNIX_EPOCH - Duration::from_nanos(1)), -1);
        assert_eq!(to_ms(UNIX_EPOCH - Duration::from_nanos(1_000_001)), -2);
    }
}
