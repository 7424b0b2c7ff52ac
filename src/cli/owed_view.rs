//! The "owed" parts of `lobstah status`: per requester, the tokens it has not confirmed
//! to our worker, on how many receipts, and how long the oldest has waited, against the
//! cap at which the worker starts refusing it (402); rows at 80 % of the cap are flagged,
//! so an operator sees the refusal coming. Then the other way: what our router has yet
//! to confirm to workers (their caps are not known here).

use std::fmt::Write;

use crate::core::format::{age, printable, short_pubkey, thousands};
use crate::core::node::{OwedRow, OwedView, Snapshot};

/// Appends the sections to `out`; none at all when nothing is owed either way.
pub(super) fn render(out: &mut String, s: &Snapshot) {
    let owed = &s.owed;
    if !owed.rows.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "owed to this worker ({}), unconfirmed{}",
            owed.rows.len(),
            cap_note(owed)
        );
        table(out, &owed.rows, s.taken_at_ms, "requester", |row| {
            if row.trusted {
                "  trusted: no cap".to_string()
            } else if row.near_cap(owed.cap) {
                format!("  NEAR CAP ({})", percent_of_cap(row.tokens, owed.cap))
            } else {
                String::new()
            }
        });
        if owed.partial {
            let _ = writeln!(
                out,
                "  (too many unconfirmed receipts to count them all: counts are low, tokens exact)"
            );
        }
    }
    if !owed.owing.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "owed by this router ({}), not yet confirmed to the workers",
            owed.owing.len()
        );
        table(out, &owed.owing, s.taken_at_ms, "worker", |_| String::new());
    }
}

fn table(
    out: &mut String,
    rows: &[OwedRow],
    now_ms: u64,
    who: &str,
    flag: impl Fn(&OwedRow) -> String,
) {
    let _ = writeln!(
        out,
        "  {:<16} {:<14} {:>10} {:>8} {:>7}",
        "label", who, "tokens", "receipts", "oldest"
    );
    for row in rows {
        let name = printable(row.label.as_deref().unwrap_or("-"));
        let oldest = row
            .oldest_completed_at_ms
            .map(|at| age(now_ms.saturating_sub(at)))
            .unwrap_or_else(|| "-".to_string());
        let _ = writeln!(
            out,
            "  {:<16} {:<14} {:>10} {:>8} {:>7}{}",
            name.chars().take(16).collect::<String>(),
            short_pubkey(&row.pubkey),
            thousands(row.tokens),
            thousands(row.receipts),
            oldest,
            flag(row),
        );
    }
}

fn cap_note(owed: &OwedView) -> String {
    match owed.cap {
        Some(cap) => format!("; refused at {} tokens", thousands(cap)),
        None => "; no cap set".to_string(),
    }
}

fn percent_of_cap(tokens: u64, cap: Option<u64>) -> String {
    match cap {
        Some(cap) if cap > 0 => format!("{}%", u128::from(tokens) * 100 / u128::from(cap)),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn row(pubkey: char, label: Option<&str>, tokens: u64, waited_ms: u64) -> OwedRow {
        OwedRow {
            pubkey: format!("lob1{}", pubkey.to_string().repeat(64)),
            label: label.map(str::to_string),
            tokens,
            receipts: tokens / 100,
            oldest_completed_at_ms: Some(NOW - waited_ms),
            trusted: false,
        }
    }

    fn rendered(owed: OwedView) -> String {
        let s = Snapshot {
            taken_at_ms: NOW,
            owed,
            ..Snapshot::default()
        };
        let mut out = String::new();
        render(&mut out, &s);
        out
    }

    /// The line of the row whose pubkey starts `lob1` + `c`.
    fn line(text: &str, c: char) -> String {
        let needle = format!("lob1{}", c.to_string().repeat(8));
        text.lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no row {needle} in\n{text}"))
            .to_string()
    }

    #[test]
    fn rows_show_tokens_receipts_age_and_a_flag_near_the_cap() {
        let mut trusted = row('c', None, 90_000, 2 * 86_400_000);
        trusted.trusted = true;
        let text = rendered(OwedView {
            rows: vec![
                trusted,
                row('a', Some("mac"), 41_000, 2 * 3_600_000 + 5),
                row('b', None, 39_900, 3 * 60_000 + 59_000),
            ],
            cap: Some(50_000),
            ..OwedView::default()
        });
        assert!(
            text.contains("owed to this worker (3), unconfirmed; refused at 50,000 tokens"),
            "{text}"
        );
        let cases = [
            ('a', ["mac", "41,000", "410", "2h", "NEAR CAP (82%)"]),
            ('b', ["lob1bbbbbbbb…", "39,900", "399", "3m", ""]),
            (
                'c',
                ["lob1cccccccc…", "90,000", "900", "2d", "trusted: no cap"],
            ),
        ];
        for (key, parts) in cases {
            let l = line(&text, key);
            for part in parts {
                assert!(l.contains(part), "{part:?} in {l:?}");
            }
        }
        assert!(!line(&text, 'b').contains("CAP"), "{text}");
        assert!(!text.contains("counts are low"), "{text}");
    }

    #[test]
    fn no_section_when_nothing_is_owed_and_notes_for_no_cap_or_a_cut() {
        assert_eq!(rendered(OwedView::default()), "");
        let text = rendered(OwedView {
            rows: vec![row('a', None, 49_999, 0)],
            cap: None,
            partial: true,
            owing: Vec::new(),
        });
        assert!(text.contains("; no cap set"), "{text}");
        assert!(!text.contains("NEAR CAP"), "{text}");
        assert!(text.contains("counts are low, tokens exact"), "{text}");
        assert!(!text.contains("owed by this router"), "{text}");
    }

    #[test]
    fn what_our_router_owes_is_its_own_section_without_cap_flags() {
        let text = rendered(OwedView {
            owing: vec![row('d', Some("gpu"), 45_000, 40_000)],
            cap: Some(50_000),
            ..OwedView::default()
        });
        assert!(!text.contains("owed to this worker"), "{text}");
        assert!(
            text.contains("owed by this router (1), not yet confirmed to the workers"),
            "{text}"
        );
        let l = line(&text, 'd');
        for part in ["gpu", "45,000", "450", "40s"] {
            assert!(l.contains(part), "{part:?} in {l:?}");
        }
        assert!(!l.contains("CAP"), "{l}");
    }
}
