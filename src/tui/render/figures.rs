//! How the console writes its live figures in narrow cells: a rate of tokens per second,
//! a duration, a compact signed number for the sparkline's scale, and text cut in the
//! middle (an address keeps its port, a model its tag). Pure, table-tested.

use crate::tui::format::{signed, thousands};

/// Tokens per second: `0`, `4.5`, `85`, `1,234`, `12.3k`. One decimal below ten,
/// where a decimal is the difference between idle and slow.
pub(crate) fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        return "0".to_string();
    }
    if per_sec < 9.95 {
        return format!("{per_sec:.1}");
    }
    let whole = per_sec.round() as u64;
    if whole < 10_000 {
        thousands(whole)
    } else {
        format!("{:.1}k", per_sec / 1000.0)
    }
}

/// A duration in a few characters: `84ms`, `1.2s`, `14s`, `2m05`, `1h02`.
pub(crate) fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=9_949 => format!("{:.1}s", ms as f64 / 1000.0),
        9_950..=59_999 => format!("{}s", (ms + 500) / 1000),
        60_000..=3_599_999 => format!("{}m{:02}", ms / 60_000, (ms / 1000) % 60),
        _ => format!("{}h{:02}", ms / 3_600_000, (ms / 60_000) % 60),
    }
}

/// A signed amount for an axis label: `+930`, `-300`, `+12.5k`, `-3.2M`.
pub(crate) fn compact_signed(value: i64) -> String {
    let magnitude = value.unsigned_abs();
    let sign = if value < 0 { "-" } else { "+" };
    match magnitude {
        0..=9_999 => signed(value),
        10_000..=999_999 => format!("{sign}{:.1}k", magnitude as f64 / 1e3),
        _ => format!("{sign}{:.1}M", magnitude as f64 / 1e6),
    }
}

/// `text` in at most `max` characters, cut in the middle with `…` so both ends stay:
/// the end of an address is its port, the end of a model name its size or tag.
pub(crate) fn cut_middle(text: &str, max: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    // The tail gets the larger half: that is where the port is.
    let keep = max - 1;
    let head = keep / 2;
    let tail = keep - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// A peer's URL in `max` characters: whole if it fits; else without `http://` (the
/// usual scheme, implied; `https://` is kept since it says something); else cut in the
/// middle, so the port at its end stays visible.
pub(crate) fn url(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let bare = text.strip_prefix("http://").unwrap_or(text);
    cut_middle(bare.trim_end_matches('/'), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_table() {
        let cases = [
            (0.0, "0"),
            (-1.0, "0"),
            (f64::NAN, "0"),
            (0.04, "0.0"),
            (4.5, "4.5"),
            (9.94, "9.9"),
            (9.96, "10"),
            (85.2, "85"),
            (1_234.4, "1,234"),
            (12_345.0, "12.3k"),
        ];
        for (value, want) in cases {
            assert_eq!(rate(value), want, "{value}");
        }
    }

    #[test]
    fn durations_table() {
        let cases = [
            (0, "0ms"),
            (84, "84ms"),
            (999, "999ms"),
            (1_000, "1.0s"),
            (1_240, "1.2s"),
            (9_949, "9.9s"),
            (9_950, "10s"),
            (14_400, "14s"),
            (125_000, "2m05"),
            (3_720_000, "1h02"),
        ];
        for (ms, want) in cases {
            assert_eq!(duration(ms), want, "{ms}");
        }
    }

    #[test]
    fn compact_signed_table() {
        let cases = [
            (0, "+0"),
            (930, "+930"),
            (-300, "-300"),
            (9_999, "+9,999"),
            (12_500, "+12.5k"),
            (-3_200_000, "-3.2M"),
            (i64::MIN, "-9223372036854.8M"),
        ];
        for (value, want) in cases {
            assert_eq!(compact_signed(value), want, "{value}");
        }
    }

    #[test]
    fn cutting_in_the_middle_keeps_both_ends() {
        let cases = [
            ("short", 10, "short"),
            ("abcdefghij", 10, "abcdefghij"),
            ("abcdefghijk", 10, "abcd…ghijk"),
            ("abcdefghijk", 1, "…"),
            ("abcdefghijk", 0, ""),
            ("ééééééé", 4, "é…éé"),
        ];
        for (text, max, want) in cases {
            let got = cut_middle(text, max);
            assert_eq!(got, want, "{text} in {max}");
            assert!(got.chars().count() <= max);
        }
    }

    #[test]
    fn urls_keep_their_port() {
        let cases = [
            ("http://127.0.0.1:17474", 22, "http://127.0.0.1:17474"),
            ("http://127.0.0.1:17474", 16, "127.0.0.1:17474"),
            ("http://127.0.0.1:17474", 12, "127.0…:17474"),
            ("http://192.168.100.200:17474", 16, "192.168…00:17474"),
            (
                "https://worker.example.org:8443/",
                20,
                "https://w…e.org:8443",
            ),
        ];
        for (text, max, want) in cases {
            let got = url(text, max);
            assert_eq!(got, want, "{text} in {max}");
            assert!(got.chars().count() <= max, "{got}");
        }
    }
}
