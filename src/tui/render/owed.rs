//! What requesters owe our worker, largest first: the tokens they have not confirmed, on
//! how many receipts, how long the oldest has waited (from the frame's clock, so it ages
//! live between refreshes) and the share of the cap at which the worker refuses them
//! (402). Rows at 80 % of the cap are drawn as warnings, and the percentage says it
//! without colour too. Trusted requesters have no cap: their share reads "—".

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use super::common::{ColumnSpec, constraints, fit_columns, panel};
use crate::core::node::OwedRow;
use crate::tui::app::App;
use crate::tui::format::{age, peer_name, printable, thousands, truncate};
use crate::tui::text::{self, cell, column};
use crate::tui::theme::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Peer,
    Tokens,
    Receipts,
    Oldest,
    Cap,
}

const COLUMNS: [ColumnSpec<Col>; 5] = [
    spec(Col::Peer, column::PEER, 10, 1, 0),
    spec(Col::Tokens, column::OWED_TOKENS, 7, 0, 1),
    spec(Col::Receipts, column::OWED_RECEIPTS, 4, 0, 4),
    spec(Col::Oldest, column::OWED_OLDEST, 6, 0, 2),
    spec(Col::Cap, column::OWED_CAP, 4, 0, 3),
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
    let owed = &app.snapshot.owed;
    let title = format!("{} ({})", text::TITLE_OWED, owed.rows.len());
    let block = panel(title, false, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if owed.rows.is_empty() {
        let hint =
            Paragraph::new(Span::styled(text::EMPTY_OWED, theme.dim())).wrap(Wrap { trim: true });
        frame.render_widget(hint, inner);
        return;
    }

    let columns = fit_columns(&COLUMNS, inner.width);
    let visible = usize::from(inner.height.saturating_sub(1));
    let rows = owed.rows.iter().take(visible).map(|row| {
        let style = style_of(row, owed.cap, theme);
        Row::new(
            columns
                .iter()
                .map(|&(col, _, width)| cell_for(col, usize::from(width), row, owed.cap, now_ms)),
        )
        .style(style)
    });
    let header = Row::new(columns.iter().map(|&(col, title, _)| match col {
        Col::Peer => Cell::from(title),
        _ => Cell::from(Line::from(title).right_aligned()),
    }));
    let table = Table::new(rows, constraints(&columns))
        .header(header.style(theme.dim()))
        .column_spacing(1);
    frame.render_widget(table, inner);
}

fn style_of(row: &OwedRow, cap: Option<u64>, theme: &Theme) -> Style {
    if row.near_cap(cap) {
        theme.warn()
    } else {
        theme.plain()
    }
}

fn cell_for<'a>(col: Col, width: usize, row: &OwedRow, cap: Option<u64>, now_ms: u64) -> Cell<'a> {
    let text = match col {
        Col::Peer => {
            return Cell::from(truncate(
                &printable(&peer_name(row.label.as_deref(), &row.pubkey)),
                width,
            ));
        }
        Col::Tokens => thousands(row.tokens),
        Col::Receipts => thousands(row.receipts),
        Col::Oldest => match row.oldest_completed_at_ms {
            Some(at) => age(now_ms.saturating_sub(at)),
            None => cell::NONE.to_string(),
        },
        Col::Cap => match cap {
            Some(cap) if cap > 0 && !row.trusted => {
                format!("{}%", u128::from(row.tokens) * 100 / u128::from(cap))
            }
            _ => cell::NONE.to_string(),
        },
    };
    Cell::from(Line::from(truncate(&text, width)).right_aligned())
}
