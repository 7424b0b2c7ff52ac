//! The peers table: who can serve us and how each is doing — label, short key, URL,
//! models, tier, state (ok, excluded with a live countdown, unreachable), queue depth,
//! latency, served/failed counts, how many of its receipts were refused (bad signature,
//! replayed, implausible token counts: a lying peer), how often it declined us (credit,
//! limits, friends list: a stingy one) and where the peer was learned. Columns drop by
//! importance on narrow terminals: the URL goes before the counters do at 80 columns,
//! the tier at 120.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap};

use super::common::{ColumnSpec, constraints, fit_columns, panel, window};
use crate::core::node::{PeerHealth, PeerRow};
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
    Latency,
    Counts,
    Refused,
    Declined,
    Source,
}

/// Display order left to right; `priority` decides what survives a narrow terminal. The
/// counters that expose a misbehaving peer rank above the URL, which a label or key
/// already stands for (and which is mostly cut at those widths anyway).
const COLUMNS: [ColumnSpec<Col>; 12] = [
    spec(Col::Label, column::LABEL, 12, 1, 1),
    spec(Col::Pubkey, column::PUBKEY, 13, 0, 2),
    spec(Col::Url, column::URL, 16, 3, 8),
    spec(Col::Models, column::MODELS, 12, 2, 9),
    spec(Col::Tier, column::TIER, 11, 0, 10),
    spec(Col::State, column::STATE, 12, 0, 0),
    spec(Col::Queue, column::QUEUE, 3, 0, 7),
    spec(Col::Latency, column::LATENCY, 7, 0, 6),
    spec(Col::Counts, column::COUNTS, 9, 0, 3),
    spec(Col::Refused, column::REFUSED, 7, 0, 4),
    spec(Col::Declined, column::DECLINED, 8, 0, 5),
    spec(Col::Source, column::SOURCE, 7, 0, 11),
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
    let block = panel(
        format!("{} ({})", text::TITLE_PEERS, peers.len()),
        focused,
        theme,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if peers.is_empty() {
        let hint =
            Paragraph::new(Span::styled(text::EMPTY_PEERS, theme.dim())).wrap(Wrap { trim: true });
        frame.render_widget(hint, inner);
        return;
    }

    let columns = fit_columns(&COLUMNS, inner.width);
    let visible = usize::from(inner.height.saturating_sub(1));
    let (offset, selected) = window(app.selection.peers, peers.len(), visible);
    let rows = peers.iter().skip(offset).take(visible).map(|peer| {
        Row::new(
            columns
                .iter()
                .map(|&(col, _, width)| cell_for(col, width, peer, now_ms, theme)),
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

fn cell_for<'a>(col: Col, width: u16, peer: &PeerRow, now_ms: u64, theme: &Theme) -> Cell<'a> {
    let fit = |text: &str| truncate(&printable(text), usize::from(width));
    match col {
        Col::Label => Cell::from(fit(peer.label.as_deref().unwrap_or(cell::NONE))),
        Col::Pubkey => Cell::from(short_pubkey(&peer.pubkey)),
        Col::Url => Cell::from(fit(&peer.url)),
        Col::Models => Cell::from(fit(&peer.models.join(", "))),
        Col::Tier => Cell::from(fit(peer.tier.as_deref().unwrap_or(cell::NONE))),
        Col::State => {
            let (label, style) = state(peer, now_ms, theme);
            // Long exclusions ("excluded 2m05s") abbreviate rather than lose the countdown.
            let label = if label.chars().count() > usize::from(width) {
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
        Col::Latency => Cell::from(
            peer.latency_ms
                .map_or_else(|| cell::NONE.to_string(), latency),
        ),
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

fn latency(ms: u64) -> String {
    if ms < 10_000 {
        format!("{ms}ms")
    } else {
        format!("{}s", ms / 1000)
    }
}
