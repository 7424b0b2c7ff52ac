//! Failover exclusions: which peers the router is avoiding, why, and for how long. The
//! time left is computed from the clock the frame is drawn with, so it counts down live.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap};

use super::common::{ColumnSpec, constraints, fit_columns, panel, window};
use crate::core::node::ExclusionRow;
use crate::tui::app::{App, Panel};
use crate::tui::format::{countdown, peer_name, printable, truncate};
use crate::tui::text::{self, cell, column};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Peer,
    Reason,
    Left,
}

const COLUMNS: [ColumnSpec<Col>; 3] = [
    ColumnSpec {
        column: Col::Peer,
        title: column::PEER,
        min: 9,
        grow: 1,
        priority: 0,
    },
    ColumnSpec {
        column: Col::Reason,
        title: column::REASON,
        min: 8,
        grow: 4,
        priority: 2,
    },
    ColumnSpec {
        column: Col::Left,
        title: column::LEFT,
        min: 5,
        grow: 0,
        priority: 1,
    },
];

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App, now_ms: u64) {
    let theme = &app.theme;
    let exclusions = &app.snapshot.exclusions;
    let focused = app.focus == Panel::Exclusions && app.modal.is_none();
    let title = format!("{} ({})", text::TITLE_EXCLUSIONS, exclusions.len());
    let block = panel(title, focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if exclusions.is_empty() {
        let hint = Paragraph::new(Span::styled(text::EMPTY_EXCLUSIONS, theme.dim()))
            .wrap(Wrap { trim: true });
        frame.render_widget(hint, inner);
        return;
    }

    let columns = fit_columns(&COLUMNS, inner.width);
    let visible = usize::from(inner.height.saturating_sub(1));
    let (offset, selected) = window(app.selection.exclusions, exclusions.len(), visible);
    let rows = exclusions.iter().skip(offset).take(visible).map(|row| {
        let cells = columns
            .iter()
            .map(|&(col, _, width)| cell_for(col, usize::from(width), row, now_ms));
        Row::new(cells).style(theme.warn())
    });
    let header = Row::new(columns.iter().map(|&(_, title, _)| Cell::from(title)));
    let table = Table::new(rows, constraints(&columns))
        .header(header.style(theme.dim()))
        .column_spacing(1)
        .highlight_spacing(HighlightSpacing::Never)
        .row_highlight_style(theme.selected(focused));
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, inner, &mut state);
}

fn cell_for<'a>(col: Col, width: usize, row: &ExclusionRow, now_ms: u64) -> Cell<'a> {
    let text = match col {
        Col::Peer => printable(&peer_name(row.label.as_deref(), &row.pubkey)),
        Col::Reason => printable(&row.reason),
        Col::Left if row.until_ms > now_ms => countdown(row.until_ms, now_ms),
        // Past its time; the node readmits it on its next look.
        Col::Left => cell::NONE.to_string(),
    };
    Cell::from(truncate(&text, width))
}
