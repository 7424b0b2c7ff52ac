//! The receipt stream, newest first: when, whether we earned or spent, with whom, on which
//! model, and the tokens each way. Credits are tokens, so the signed total is the amount.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, HighlightSpacing, Paragraph, Row, Table, TableState, Wrap};

use super::common::{ColumnSpec, constraints, fit_columns, panel, window};
use crate::core::node::{ReceiptRole, ReceiptRow};
use crate::tui::app::{App, Panel};
use crate::tui::format::{clock_time, peer_name, printable, thousands, truncate};
use crate::tui::text::{self, cell, column};
use crate::tui::theme::Theme;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Time,
    Role,
    Credits,
    Peer,
    Model,
    In,
    Out,
}

const COLUMNS: [ColumnSpec<Col>; 7] = [
    spec(Col::Time, column::TIME, 8, 0, 1),
    spec(Col::Role, column::ROLE, 6, 0, 0),
    spec(Col::Credits, column::CREDITS, 8, 0, 2),
    spec(Col::Peer, column::PEER, 13, 1, 3),
    spec(Col::Model, column::MODEL, 12, 2, 4),
    spec(Col::In, column::TOKENS_IN, 6, 0, 5),
    spec(Col::Out, column::TOKENS_OUT, 6, 0, 6),
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

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let receipts = &app.snapshot.receipts;
    let focused = app.focus == Panel::Receipts && app.modal.is_none();
    let title = format!(
        "{} ({})",
        text::TITLE_RECEIPTS,
        thousands(app.snapshot.balance.receipts)
    );
    let block = panel(title, focused, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if receipts.is_empty() {
        let hint = Paragraph::new(Span::styled(text::EMPTY_RECEIPTS, theme.dim()))
            .wrap(Wrap { trim: true });
        frame.render_widget(hint, inner);
        return;
    }

    let columns = fit_columns(&COLUMNS, inner.width);
    let visible = usize::from(inner.height.saturating_sub(1));
    let (offset, selected) = window(app.selection.receipts, receipts.len(), visible);
    let rows = receipts.iter().skip(offset).take(visible).map(|receipt| {
        Row::new(
            columns
                .iter()
                .map(|&(col, _, width)| cell_for(col, usize::from(width), receipt, theme)),
        )
    });
    let header = Row::new(columns.iter().map(|&(col, title, _)| {
        if is_numeric(col) {
            Cell::from(Line::from(title).right_aligned())
        } else {
            Cell::from(title)
        }
    }));
    let table = Table::new(rows, constraints(&columns))
        .header(header.style(theme.dim()))
        .column_spacing(1)
        .highlight_spacing(HighlightSpacing::Never)
        .row_highlight_style(theme.selected(focused));
    let mut state = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, inner, &mut state);
}

fn cell_for<'a>(col: Col, width: usize, receipt: &ReceiptRow, theme: &Theme) -> Cell<'a> {
    let (role, style) = role(receipt.role, theme);
    let tokens = receipt.input_tokens.saturating_add(receipt.output_tokens);
    let text = match col {
        Col::Time => clock_time(receipt.completed_at_ms),
        Col::Role => return Cell::from(Span::styled(role, style)),
        Col::Credits => {
            let amount = match receipt.role {
                ReceiptRole::Earned => format!("+{}", thousands(tokens)),
                ReceiptRole::Spent => format!("-{}", thousands(tokens)),
                ReceiptRole::SelfServed => "0".to_string(),
            };
            return Cell::from(
                Line::from(Span::styled(truncate(&amount, width), style)).right_aligned(),
            );
        }
        Col::Peer => printable(&peer_name(receipt.peer_label.as_deref(), &receipt.peer)),
        Col::Model => printable(&receipt.model),
        Col::In => return right(thousands(receipt.input_tokens), width),
        Col::Out => return right(thousands(receipt.output_tokens), width),
    };
    Cell::from(truncate(&text, width))
}

/// Numbers line up on their last digit.
fn is_numeric(col: Col) -> bool {
    matches!(col, Col::Credits | Col::In | Col::Out)
}

fn right<'a>(text: String, width: usize) -> Cell<'a> {
    Cell::from(Line::from(truncate(&text, width)).right_aligned())
}

fn role(role: ReceiptRole, theme: &Theme) -> (&'static str, Style) {
    match role {
        ReceiptRole::Earned => (cell::EARNED, theme.earned()),
        ReceiptRole::Spent => (cell::SPENT, theme.spent()),
        ReceiptRole::SelfServed => (cell::SELF_SERVED, theme.dim()),
    }
}
