//! Times are stored as `i64` microseconds since the Unix epoch (UTC); see the
//! migration for why. This module converts them at the edges.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

pub const MICROS_PER_SECOND: i64 = 1_000_000;
pub const MICROS_PER_MINUTE: i64 = 60 * MICROS_PER_SECOND;
pub const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
pub const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

pub fn to_datetime(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros).single().unwrap_or_default()
}

/// RFC 3339 in UTC with exactly six fractional digits, so answers also sort as text.
pub fn format_micros(micros: i64) -> String {
    to_datetime(micros).to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// [`format_micros`] written into `out`, without a `String` of its own (a
/// page writes two per event).
pub fn write_micros(out: &mut impl std::io::Write, micros: i64) -> std::io::Result<()> {
    use chrono::{Datelike, Timelike};
    let at = to_datetime(micros);
    // Four-digit years only; chrono writes the others its own way.
    if !(0..=9999).contains(&at.year()) {
        return out.write_all(format_micros(micros).as_bytes());
    }
    write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        // Microseconds cannot fall in a leap second.
        at.nanosecond() / 1_000
    )
}

/// Parses an ISO 8601 / RFC 3339 timestamp; a naive one (no offset) is UTC.
/// Precision beyond microseconds is truncated.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.timestamp_micros());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, format) {
            return Some(naive.and_utc().timestamp_micros());
        }
    }
    if let Ok(date) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_micros());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_times_are_the_formatted_ones_in_every_year() {
        let year_10000 = Utc
            .with_ymd_and_hms(10_000, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp_micros();
        let year_0 = Utc
            .with_ymd_and_hms(0, 1, 1, 0, 0, 0)
            .unwrap()
            .timestamp_micros();
        let mut times = vec![
            0,
            1,
            -1,
            999_999,
            1_796_662_479_127_073,
            year_10000,
            year_10000 - 1,
            year_0,
            year_0 - 1,
            i64::MIN,
            i64::MAX,
        ];
        let mut x: u64 = 26;
        for _ in 0..10_000 {
            // xorshift: times across the whole range, and near today.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            times.push(x as i64);
            times.push((x % 4_000_000_000_000_000) as i64);
        }
        for micros in times {
            let mut written = Vec::new();
            write_micros(&mut written, micros).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                format_micros(micros),
                "{micros}"
            );
        }
    }

    #[test]
    fn formats_with_microseconds_and_z() {
        assert_eq!(
            format_micros(1_767_225_600_000_001),
            "2026-01-01T00:00:00.000001Z"
        );
    }

    #[test]
    fn parses_offsets_naive_and_dates_alike() {
        let utc = parse_timestamp("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_timestamp("2026-01-01T01:00:00+01:00"), Some(utc));
        assert_eq!(parse_timestamp("2026-01-01T00:00:00"), Some(utc));
        assert_eq!(parse_timestamp("2026-01-01"), Some(utc));
        assert_eq!(
            parse_timestamp("2026-01-01T00:00:00.123456789Z"),
            Some(utc + 123_456)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
        assert_eq!(parse_timestamp("2026-13-01"), None);
    }
}
