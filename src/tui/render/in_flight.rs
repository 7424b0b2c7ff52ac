//! This router's requests in flight — which peer, which model, how long since it was
//! sent, tokens forwarded so far, when the first byte came — oldest first, as opposed
//! to the worker queue panel, which is the local worker's. Its border also carries this
//! node's totals: output tokens per second consumed (by its router, from peers) and
//! served (by its worker), over the last minute. Elapsed times run from the frame's
//! clock, so they move between refreshes.

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::common::{ColumnSpec, constraints, fit_columns, panel};
use super::figures;
use crate::core::node::{InFlightRow, TrafficView};
use crate::tui::app::App;
use crate::tui::format::{peer_name, printable, thousands, truncate};
use crate::tui::text::{self, cell, column};
use crate::tui::theme::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Peer,
    Model,
    Kind,
    Elapsed,
    Ttft,
    Tokens,
}

const COLUMNS: [ColumnSpec<Col>; 6] = [
    spec(Col::Peer, column::PEER, 10, 1, 0),
    spec(Col::Model, column::MODEL, 10, 2, 1),
    spec(Col::Kind, column::KIND, 6, 0, 5),
    spec(Col::Elapsed, column::ELAPSED, 7, 0, 2),
    spec(Col::Ttft, column::TTFT, 7, 0, 4),
    spec(Col::Tokens, column::TOKENS_SO_FAR, 6, 0, 3),
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
    let traffic = &app.snapshot.traffic;
    let title = format!("{} ({})", text::TITLE_IN_FLIGHT, traffic.in_flight_total);
    let block = panel(title, false, theme).title_top(totals(traffic, theme).right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if traffic.in_flight.is_empty() {
        let hint = Paragraph::new(Span::styled(text::EMPTY_IN_FLIGHT, theme.dim()))
            .wrap(Wrap { trim: true });
        frame.render_widget(hint, inner);
        return;
    }

    let labels: HashMap<&str, Option<&str>> = app
        .snapshot
        .peers
        .iter()
        .map(|p| (p.pubkey.as_str(), p.label.as_deref()))
        .collect();
    let columns = fit_columns(&COLUMNS, inner.width);
    let visible = usize::from(inner.height.saturating_sub(1));
    let rows = traffic.in_flight.iter().take(visible).map(|row| {
        let label = labels.get(row.peer.as_str()).copied().flatten();
        Row::new(
            columns
                .iter()
                .map(|&(col, _, width)| cell_for(col, usize::from(width), row, label, now_ms)),
        )
    });
    let header = Row::new(columns.iter().map(|&(_, title, _)| Cell::from(title)));
    let table = Table::new(rows, constraints(&columns))
        .header(header.style(theme.dim()))
        .column_spacing(1);
    frame.render_widget(table, inner);
}

/// ` consumed 85 tok/s · served 40 tok/s `, for the panel's border.
fn totals<'a>(traffic: &TrafficView, theme: &Theme) -> Line<'a> {
    Line::from(vec![
        Span::styled(format!(" {} ", cell::CONSUMED), theme.dim()),
        Span::styled(figures::rate(traffic.consumed_per_sec), theme.spent()),
        Span::styled(
            format!(" {} · {} ", cell::TOKENS_PER_SEC, cell::SERVED),
            theme.dim(),
        ),
        Span::styled(figures::rate(traffic.served_per_sec), theme.earned()),
        Span::styled(format!(" {} ", cell::TOKENS_PER_SEC), theme.dim()),
    ])
}

fn cell_for<'a>(
    col: Col,
    width: usize,
    row: &InFlightRow,
    label: Option<&str>,
    now_ms: u64,
) -> Cell<'a> {
    let text = match col {
        Col::Peer => truncate(&printable(&peer_name(label, &row.peer)), width),
        Col::Model => figures::cut_middle(&printable(&row.model), width),
        Col::Kind => if row.stream {
            cell::STREAM
        } else {
            cell::WHOLE
        }
        .to_string(),
        Col::Elapsed => figures::duration(now_ms.saturating_sub(row.started_at_ms)),
        Col::Ttft => match row.first_byte_at_ms {
            Some(at) => figures::duration(at.saturating_sub(row.started_at_ms)),
            None if row.stream => cell::WAITING_FIRST.to_string(),
            None => cell::NONE.to_string(),
        },
        Col::Tokens if row.stream => thousands(row.tokens),
        // A whole answer arrives at once: there is nothing to count before it.
        Col::Tokens => cell::NONE.to_string(),
    };
    Cell::from(truncate(&text, width))
}
