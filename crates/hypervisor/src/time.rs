//! The adapter's clock: event timestamps to the millisecond, and the
//! default "now" of the fake driver (which tests replace through
//! `FakeDriver::with_clock`). The calendar arithmetic is
//! `vnext_core::time`'s; this module only fixes the precision.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub(crate) fn now_rfc3339() -> String {
    format_unix_millis(now_unix_millis())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_unix_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// RFC 3339 UTC with exactly three fraction digits, so the adapter's event
/// timestamps have one width and sort as strings. (`vnext_core::time::format`
/// writes microseconds, or no fraction at all on a whole second.)
pub(crate) fn format_unix_millis(ms: i64) -> String {
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = vnext_core::time::civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z", sod / 3600, sod % 3600 / 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::format_unix_millis;

    #[test]
    fn formats_known_instants_in_utc() {
        assert_eq!(format_unix_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_unix_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_unix_millis(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
    }
}
