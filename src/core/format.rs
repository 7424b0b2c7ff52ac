//! Small pure formatters the console's panels and the CLI's reports share: short public
//! keys, countdowns, clock times, thousands separators, truncation. Time always comes in as an argument, never from the
//! system clock, so rendering is reproducible.

use crate::core::protocol::PublicKey;

/// `lob1` + the first 8 hex characters, as the core's tables write it. Text that is not a
/// valid key (an old peer book, a daemon of another version) is cut to the same width
/// instead of being refused: the console shows what it is given.
pub fn short_pubkey(text: &str) -> String {
    match PublicKey::parse(text) {
        Ok(key) => key.short(),
        Err(_) => truncate(&printable(text), 13),
    }
}

/// A peer's name for tables and messages: its label, or its short key.
pub fn peer_name(label: Option<&str>, pubkey: &str) -> String {
    match label.map(str::trim).filter(|l| !l.is_empty()) {
        Some(label) => label.to_string(),
        None => short_pubkey(pubkey),
    }
}

/// Whole seconds left until `until_ms`, rounded up so "1s" shows until the very end.
pub fn seconds_left(until_ms: u64, now_ms: u64) -> u64 {
    until_ms.saturating_sub(now_ms).div_ceil(1000)
}

/// A countdown such as `45s`, `2m05s` or `1h02m`.
pub fn countdown(until_ms: u64, now_ms: u64) -> String {
    let secs = seconds_left(until_ms, now_ms);
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// A coarse age such as `45s`, `3m`, `2h` or `4d`: how long something has waited, at a
/// glance (the largest whole unit, rounded down).
pub fn age(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3_599 => format!("{}m", secs / 60),
        3_600..=86_399 => format!("{}h", secs / 3_600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// `HH:MM:SS` of a Unix-milliseconds instant, in UTC (the console has no time zone data
/// and must not guess one).
pub fn clock_time(unix_ms: u64) -> String {
    let secs_of_day = (unix_ms / 1000) % 86_400;
    format!(
        "{:02}:{:02}:{:02}",
        secs_of_day / 3600,
        (secs_of_day % 3600) / 60,
        secs_of_day % 60
    )
}

/// `12,345`: credits are token counts and grow long.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Signed credits with an explicit sign, `+1,200` or `-40`.
pub fn signed(value: i64) -> String {
    let sign = if value < 0 { "-" } else { "+" };
    format!("{sign}{}", thousands(value.unsigned_abs()))
}

/// Unsigned credits without a sign, allowing negatives (an overdrawn balance).
pub fn credits(value: i64) -> String {
    if value < 0 {
        format!("-{}", thousands(value.unsigned_abs()))
    } else {
        thousands(value.unsigned_abs())
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Removes control characters (terminal escapes) from text that came from the network, so
/// a peer's label or error cannot repaint the operator's screen.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdown_rounds_up_and_scales() {
        assert_eq!(countdown(10_000, 9_001), "1s");
        assert_eq!(countdown(10_000, 10_000), "0s");
        assert_eq!(countdown(10_000, 20_000), "0s");
        assert_eq!(countdown(125_000, 0), "2m05s");
        assert_eq!(countdown(3_720_000, 0), "1h02m");
    }

    #[test]
    fn ages_show_the_largest_whole_unit() {
        let cases = [
            (0, "0s"),
            (59_999, "59s"),
            (60_000, "1m"),
            (3_599_999, "59m"),
            (3_600_000, "1h"),
            (86_399_999, "23h"),
            (86_400_000, "1d"),
            (u64::MAX, "213503982334d"),
        ];
        for (ms, text) in cases {
            assert_eq!(age(ms), text, "{ms}");
        }
    }

    #[test]
    fn clock_time_is_utc_time_of_day() {
        assert_eq!(clock_time(0), "00:00:00");
        assert_eq!(clock_time(1_700_000_000_000), "22:13:20");
    }

    #[test]
    fn numbers_get_separators_and_signs() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(signed(-1_500), "-1,500");
        assert_eq!(signed(0), "+0");
        assert_eq!(credits(-3), "-3");
    }

    #[test]
    fn truncation_and_names() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("abc", 0), "");
        let key = format!("lob1{}", "ab".repeat(32));
        assert_eq!(short_pubkey(&key), "lob1abababab…");
        assert_eq!(short_pubkey("garbage-key-of-some-length"), "garbage-key-…");
        assert_eq!(peer_name(Some("  "), &key), "lob1abababab…");
        assert_eq!(peer_name(Some("mac"), &key), "mac");
        assert_eq!(printable("a\x1b[2Jb"), "a [2Jb");
    }
}
