//! RFC 3339 timestamps in UTC, without a date library.
//!
//! Output is always `YYYY-MM-DDTHH:MM:SSZ` or, when the time has a sub-second
//! part, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (microseconds): fixed-width, so stored
//! timestamps also sort correctly as strings. Input (for `since` filters and
//! event times) accepts any RFC 3339 date-time: fraction of any length,
//! `Z`/`z` or a numeric offset, `T`/`t`/space separator.
//!
//! The civil-date conversions are the proleptic Gregorian calendar computed
//! with 400-year eras (146097 days each), which keeps the arithmetic exact
//! for every date the API can meet.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;
const DAYS_PER_ERA: i64 = 146_097;

/// Days since 1970-01-01 of a (year, month 1-12, day 1-31) date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March so that the leap day is the last day of a year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400; // 0..=399
    let m = month as i64;
    let month_from_march = if m > 2 { m - 3 } else { m + 9 }; // 0..=11
    let day_of_year = (153 * month_from_march + 2) / 5 + day as i64 - 1; // 0..=365
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719468 = days from 0000-03-01 to 1970-01-01.
    era * DAYS_PER_ERA + day_of_era - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(DAYS_PER_ERA);
    let day_of_era = z - era * DAYS_PER_ERA; // 0..=146096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 } as u32;
    let year = year_of_era + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Formats `t` as RFC 3339 UTC with `Z` and always six fractional digits,
/// so that timestamps sort correctly as strings (`since` filters and lists
/// compare them as text). Times before 1970 are clamped to the epoch: the
/// API never stores them.
pub fn format(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(SECS_PER_DAY), secs.rem_euclid(SECS_PER_DAY));
    let (y, mo, da) = civil_from_days(days);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let micros = d.subsec_micros();
    format!("{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{s:02}.{micros:06}Z")
}

/// The current time, formatted.
pub fn now() -> String {
    format(SystemTime::now())
}

/// Parses an RFC 3339 date-time. `None` for anything else, including
/// impossible dates (2026-02-30). A valid time before 1970 reads as the
/// epoch, as [`format`] clamps: nothing in the API is older, so a filter
/// `since=0413-10-06T05:45:38-20:13` simply matches everything.
pub fn parse(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)? as u32, num(8..10)? as u32);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // 60 is a leap second; it is folded into the next second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + (b[i] - b'0') as u64;
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits.min(9)..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && matches!(rest.as_bytes()[0], b'+' | b'-') && rest.as_bytes()[3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let sign = if rest.as_bytes()[0] == b'+' { 1 } else { -1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * SECS_PER_DAY + hour * 3600 + minute * 60 + second
        - offset_secs;
    if secs < 0 {
        return Some(UNIX_EPOCH);
    }
    Some(UNIX_EPOCH + Duration::new(secs as u64, nanos as u32))
}

/// Re-formats any accepted RFC 3339 input into the canonical UTC form.
pub fn normalize(s: &str) -> Option<String> {
    parse(s).map(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn formats_the_epoch_and_known_instants() {
        assert_eq!(format(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (a leap day in a century leap year) 12:34:56.
        assert_eq!(format(at(951_827_696, 0)), "2000-02-29T12:34:56.000000Z");
        assert_eq!(format(at(1_796_563_875, 0)), "2026-12-06T13:31:15.000000Z");
    }

    #[test]
    fn formats_sub_seconds_as_fixed_microseconds() {
        assert_eq!(format(at(0, 1_500)), "1970-01-01T00:00:00.000001Z");
        assert_eq!(format(at(0, 250_000_000)), "1970-01-01T00:00:00.250000Z");
    }

    #[test]
    fn civil_conversion_round_trips_over_centuries() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(days_from_civil(2100, 3, 1) - 1), (2100, 2, 28));
    }

    #[test]
    fn parses_what_it_formats() {
        for t in [UNIX_EPOCH, at(951_827_696, 0), at(1_796_563_875, 123_456_000)] {
            assert_eq!(parse(&format(t)), Some(t));
        }
    }

    #[test]
    fn parses_offsets_and_long_fractions() {
        assert_eq!(parse("2000-02-29T14:34:56+02:00"), Some(at(951_827_696, 0)));
        assert_eq!(parse("2000-02-29t12:34:56.123456789z"), Some(at(951_827_696, 123_456_789)));
        assert_eq!(parse("2000-02-29T12:34:56.1234567891Z"), Some(at(951_827_696, 123_456_789)));
        assert_eq!(normalize("2000-02-29 07:34:56-05:00").as_deref(), Some("2000-02-29T12:34:56.000000Z"));
    }

    #[test]
    fn refuses_impossible_or_partial_dates() {
        for bad in [
            "", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00", "2026-01-01T00:00:00.Z", "2026-01-01", "1969-12-31T23:59:59",
            "2026-01-01T00:00:00+0100", "２026-01-01T00:00:00Z",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn valid_times_before_1970_read_as_the_epoch() {
        assert_eq!(parse("1969-12-31T23:59:59Z"), Some(UNIX_EPOCH));
        assert_eq!(parse("0413-10-06T05:45:38-20:13"), Some(UNIX_EPOCH));
        assert_eq!(parse("0000-01-01T00:00:00Z"), Some(UNIX_EPOCH));
    }

    #[test]
    fn formatted_times_sort_as_strings() {
        let whole = format(at(1_796_563_875, 0));
        let half = format(at(1_796_563_875, 500_000_000));
        let next = format(at(1_796_563_876, 0));
        assert!(whole < half && half < next, "{whole} {half} {next}");
    }
}
