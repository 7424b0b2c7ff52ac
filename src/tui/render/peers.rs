//! The peers table: who can serve us and how each is doing — label, short key, URL,
//! models, tier, state (ok, excluded with a live countdown, unreachable), queue depth,
//! how fast it answers us (output tokens per second, time to first token and
//! whole-answer time, all over the last minute, each under its own heading),
//! served/failed counts, how many of its receipts were refused (bad signature, replayed,
//! implausible token counts: a lying peer), how often it declined us (credit, limits,
//! friends list: a stingy one) and where the peer was learned.
//!
//! A peer reached over a peer link shows, where its URL would be, the link's path
//! (direct or relayed) and round-trip time.
//!
//! Columns drop by importance on narrow terminals: at 80 columns the name, state, speeds,
//! URL, models and source stay; the counters come back from about 90 columns, the tier
//! and key on the widest. A URL too long for its cell is cut in the middle, so its port
//! stays visible.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap};

use super::common::{ColumnSpec, constraints, fit_columns, panel, window};
use super::figures;
use crate::core::node::{PeerHealth, PeerRow, PeerTraffic};
use crate::tui::app::{App, Panel};
use crate::tui::format::{countdown, printable, short_pubkey, thousands, truncate};
use crate::tui::text::{self, cell, column};
use crate::tui::theme::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Label,
    Pubkey,
    Url,
    Models,
    Tier,
    State,
    Queue,
    Rate,
    Ttft,
    Answer,
    Counts,
    Refused,
    Declined,
    Source,
}

/// Display order left to right; `priority` decides what survives a narrow terminal. What
/// answers "who serves me, how fast" ranks first; the counters that expose a
/// misbehaving peer come next, before the tier and the key a label stands for.
const COLUMNS: [ColumnSpec<Col>; 14] = [
    spec(Col::Label, column::LABEL, 10, 0, 0),
    spec(Col::Pubkey, column::PUBKEY, 13, 0, 13),
    spec(Col::Url, column::URL, 15, 7, 5),
    spec(Col::Models, column::MODELS, 11, 3, 6),
    spec(Col::Tier, column::TIER, 11, 0, 12),
    spec(Col::State, column::STATE, 12, 0, 1),
    spec(Col::Queue, column::QUEUE, 3, 0, 10),
    spec(Col::Rate, column::TOKENS_PER_SEC, 5, 0, 2),
    spec(Col::Ttft, column::TTFT, 5, 0, 3),
    spec(Col::Answer, column::ANSWER, 6, 0, 4),
    spec(Col::Counts, column::COUNTS, 8, 0, 8),
    spec(Col::Refused, column::REFUSED, 7, 0, 9),
    spec(Col::Declined, column::DECLINED, 8, 0, 11),
    spec(Col::Source, column::SOURCE, 7, 0, 7),
];

const fn spec(
    column: Col,
    title: &'static str,
    min: u16,
    grow: u16,
    priority: u8,
) -> ColumnSpec<Col> {
    ColumnSpec {
        column,
        title,
        min,
        grow,
        priority,
    }
}

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, now_ms: u64) {
    let theme = &app.theme;
    let peers = &app.snapshot.peers;
    let focused = app.focus == Panel::Peers && app.modal.is_none();
    let title = if peers.is_empty() {
        format!("{} (0)", text::TITLE_PEERS)
    } else {
        format!(
            "{} ({}) · {}",
            text::TITLE_PEERS,
            peers.len(),
            text::PEERS_WINDOW
        )
    };
    let block = panel(title, focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if peers.is_empty() {
        let hint =
            Paragraph::new(Span::styled(text::EMPTY_PEERS, theme.dim())).wrap(Wrap { trim: true });
        frame.render_widget(hint, inner);
        return;
    }

    let speeds: HashMap<&str, &PeerTraffic> = app
        .snapshot
        .traffic
        .peers
        .iter()
        .map(|t| (t.pubkey.as_str(), t))
        .collect();
    let columns = fit_columns(&COLUMNS, inner.width);
    let visible = usize::from(inner.height.saturating_sub(1));
    let (offset, selected) = window(app.selection.peers, peers.len(), visible);
    let rows = peers.iter().skip(offset).take(visible).map(|peer| {
        let speed = speeds.get(peer.pubkey.as_str()).copied();
        Row::new(
            columns
                .iter()
                .map(|&(col, _, width)| cell_for(col, width, peer, speed, now_ms, theme)),
        )
    });
    let header =
        Row::new(columns.iter().map(|&(_, title, _)| Cell::from(title))).style(theme.dim());
    let table = Table::new(rows, constraints(&columns))
        .header(header)
        .column_spacing(1)
        .highlight_spacing(HighlightSpacing::Never)
        .row_highlight_style(theme.selected(focused));
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, inner, &mut state);
}

fn cell_for<'a>(
    col: Col,
    width: u16,
    peer: &PeerRow,
    speed: Option<&PeerTraffic>,
    now_ms: u64,
    theme: &Theme,
) -> Cell<'a> {
    let max = usize::from(width);
    let fit = |text: &str| truncate(&printable(text), max);
    let timing = |ms: Option<u64>| ms.map_or_else(|| cell::NONE.to_string(), figures::duration);
    match col {
        Col::Label => Cell::from(fit(peer.label.as_deref().unwrap_or(cell::NONE))),
        Col::Pubkey => Cell::from(short_pubkey(&peer.pubkey)),
        Col::Url if peer.transport.as_deref() == Some("link") => Cell::from(fit(&link_cell(peer))),
        Col::Url => Cell::from(figures::url(&printable(&peer.url), max)),
        Col::Models => Cell::from(models(&peer.models, max)),
        Col::Tier => Cell::from(fit(peer.tier.as_deref().unwrap_or(cell::NONE))),
        Col::State => {
            let (label, style) = state(peer, now_ms, theme);
            // Long exclusions ("excluded 2m05s") abbreviate rather than lose the countdown.
            let label = if label.chars().count() > max {
                label.replacen(cell::EXCLUDED, cell::EXCLUDED_SHORT, 1)
            } else {
                label
            };
            Cell::from(Span::styled(label, style))
        }
        Col::Queue => Cell::from(
            peer.queue_depth
                .map_or_else(|| cell::NONE.to_string(), |q| q.to_string()),
        ),
        Col::Rate => Cell::from(fit(&speed.map_or_else(
            || cell::NONE.to_string(),
            |s| figures::rate(s.tokens_per_sec),
        ))),
        Col::Ttft => Cell::from(fit(&timing(speed.and_then(|s| s.ttft_ms)))),
        Col::Answer => Cell::from(fit(&timing(speed.and_then(|s| s.answer_ms)))),
        Col::Counts => Cell::from(fit(&format!(
            "{}/{}",
            thousands(peer.served),
            thousands(peer.failed)
        ))),
        Col::Refused => {
            // A refused receipt is a peer claiming work it did not do, or replaying it.
            let style = if peer.refused_receipts > 0 {
                theme.warn()
            } else {
                Style::new()
            };
            Cell::from(Span::styled(fit(&thousands(peer.refused_receipts)), style))
        }
        Col::Declined => Cell::from(fit(&thousands(peer.declined))),
        Col::Source => Cell::from(fit(source(&peer.source))),
    }
}

/// Where a URL would be, how a linked peer is reached: the link's path and round-trip
/// time ("link direct 1.2ms", "link relayed 31ms"), or "link" alone while none is open.
fn link_cell(peer: &PeerRow) -> String {
    match (&peer.path, peer.rtt_ms) {
        (Some(path), Some(rtt)) if rtt < 10.0 => format!("link {path} {rtt:.1}ms"),
        (Some(path), Some(rtt)) => format!("link {path} {rtt:.0}ms"),
        (Some(path), None) => format!("link {path}"),
        (None, _) => "link".to_string(),
    }
}

/// The models, comma-separated; when they do not all fit, as many as do and `+N` for
/// the rest, so the cell still says how many there are.
fn models(models: &[String], max: usize) -> String {
    let all = printable(&models.join(", "));
    if all.chars().count() <= max || models.len() <= 1 {
        return figures::cut_middle(&all, max);
    }
    for shown in (1..models.len()).rev() {
        let text = format!(
            "{} +{}",
            printable(&models[..shown].join(", ")),
            models.len() - shown
        );
        if text.chars().count() <= max {
            return text;
        }
    }
    let more = format!(" +{}", models.len() - 1);
    let room = max.saturating_sub(more.chars().count());
    format!(
        "{}{more}",
        figures::cut_middle(&printable(&models[0]), room)
    )
}

/// "manual", "tracker" or "nostr": the kind is what the operator scans for; which
/// tracker is in `lobstah peers list`.
fn source(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or(cell::NONE)
}

/// The state word; an exclusion counts down to readmission with the clock it is given.
fn state(peer: &PeerRow, now_ms: u64, theme: &Theme) -> (String, Style) {
    match peer.health {
        PeerHealth::Ok => (cell::OK.to_string(), theme.ok()),
        PeerHealth::Excluded => match peer.excluded_until_ms {
            Some(until) if until > now_ms => (
                format!("{} {}", cell::EXCLUDED, countdown(until, now_ms)),
                theme.warn(),
            ),
            Some(_) => (cell::READMITTING.to_string(), theme.warn()),
            None => (cell::EXCLUDED.to_string(), theme.warn()),
        },
        PeerHealth::Unreachable => (cell::UNREACHABLE.to_string(), theme.bad()),
        PeerHealth::Unknown => (cell::UNKNOWN.to_string(), theme.dim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_say_how_many_when_they_do_not_fit() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let three = list(&["mistral:7b", "phi3:mini", "gemma2:9b"]);
        let cases = [
            (list(&[]), 10, ""),
            (list(&["llama3.1:8b"]), 12, "llama3.1:8b"),
            (list(&["llama3.1:8b"]), 10, "llam….1:8b"),
            (three.clone(), 40, "mistral:7b, phi3:mini, gemma2:9b"),
            (three.clone(), 24, "mistral:7b, phi3:mini +1"),
            (three.clone(), 13, "mistral:7b +2"),
            (three, 10, "mis…:7b +2"),
        ];
        for (names, max, want) in cases {
            let got = models(&names, max);
            assert_eq!(got, want, "{names:?} in {max}");
            assert!(got.chars().count() <= max, "{got}");
        }
    }
}
