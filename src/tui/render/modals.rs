//! The modals drawn over the dashboard: the add-peer form (three text areas, each with its
//! inline verdict) and the yes/no confirmation. They clear what is beneath them so the
//! dashboard cannot show through.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::common::panel;
use super::layout::centered;
use crate::tui::app::App;
use crate::tui::format::truncate;
use crate::tui::keymap::{Context, footer_hints};
use crate::tui::modal::{AddPeerForm, Confirm, Field, FieldState, Modal};
use crate::tui::text;
use crate::tui::theme::Theme;

const FORM_WIDTH: u16 = 76;
/// Border, and three fields of a 3-row box plus a verdict line each.
const FORM_HEIGHT: u16 = 2 + 3 * 4;
const CONFIRM_WIDTH: u16 = 64;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
    match &app.modal {
        Some(Modal::AddPeer(form)) => render_form(frame, area, form, &app.theme),
        Some(Modal::Confirm(confirm)) => render_confirm(frame, area, confirm, &app.theme),
        None => {}
    }
}

fn render_form(frame: &mut Frame, area: Rect, form: &AddPeerForm, theme: &Theme) {
    let rect = centered(area, FORM_WIDTH, FORM_HEIGHT);
    frame.render_widget(Clear, rect);
    let block = panel(text::TITLE_ADD_PEER.to_string(), true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);

    let rows = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(3),
        Constraint::Length(1),
    ])
    .split(inner);
    for (i, field) in Field::ALL.into_iter().enumerate() {
        render_field(frame, rows[i * 2], rows[i * 2 + 1], form, field, theme);
    }
}

fn render_field(
    frame: &mut Frame,
    box_area: Rect,
    verdict_area: Rect,
    form: &AddPeerForm,
    field: Field,
    theme: &Theme,
) {
    let focused = form.focus() == field;
    let state = form.state(field);
    let border = match (&state, focused) {
        (FieldState::Invalid(_), _) => theme.error_text(),
        (_, focused) => theme.border(focused),
    };
    let mut title = vec![Span::styled(format!(" {} ", field.title()), border)];
    if state == FieldState::Valid {
        title.push(Span::styled(format!("{} ", text::FIELD_OK), theme.ok()));
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(border)
        .title(Line::from(title));
    let inner = block.inner(box_area);
    frame.render_widget(block, box_area);
    frame.render_widget(form.text_area(field), inner);

    if let FieldState::Invalid(reason) = state {
        let width = usize::from(verdict_area.width.saturating_sub(3));
        let line = Line::from(Span::styled(
            format!(" ✗ {}", truncate(&reason, width)),
            theme.error_text(),
        ));
        frame.render_widget(Paragraph::new(line), verdict_area);
    }
}

fn render_confirm(frame: &mut Frame, area: Rect, confirm: &Confirm, theme: &Theme) {
    let width = CONFIRM_WIDTH.min(area.width);
    let text_width = usize::from(width.saturating_sub(4)).max(1);
    let body_rows: usize = confirm
        .body
        .lines()
        .map(|line| wrapped_rows(line, text_width))
        .sum();
    let height = u16::try_from(body_rows + 4).unwrap_or(u16::MAX);
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let block = panel(confirm.title.to_string(), true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);

    let mut hint = Vec::new();
    for (keys, word) in footer_hints(Context::Confirm) {
        hint.push(Span::styled(keys, theme.key()));
        hint.push(Span::raw(format!(" {word}   ")));
    }
    let mut lines: Vec<Line> = confirm.body.lines().map(Line::raw).collect();
    lines.push(Line::default());
    lines.push(Line::from(hint));
    let body = Rect {
        x: inner.x.saturating_add(1),
        width: inner.width.saturating_sub(2),
        ..inner
    };
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);
}

/// Rows a line takes when wrapped at word boundaries to `width`, as the paragraph wraps it,
/// so the dialog is sized to show the whole question.
fn wrapped_rows(line: &str, width: usize) -> usize {
    let mut rows = 1;
    let mut used = 0;
    for word in line.split(' ') {
        let len = word.chars().count();
        let need = if used == 0 { len } else { used + 1 + len };
        if need <= width {
            used = need;
            continue;
        }
        if used > 0 {
            rows += 1;
        }
        // The word starts a row; a word longer than the row spills onto more rows.
        let spill = len.saturating_sub(1) / width;
        rows += spill;
        used = len - spill * width;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::wrapped_rows;

    #[test]
    fn wrapping_estimate_counts_words_and_blank_lines() {
        assert_eq!(wrapped_rows("", 10), 1);
        assert_eq!(wrapped_rows("aaaa bbbb", 10), 1);
        assert_eq!(wrapped_rows("aaaa bbbb cc", 10), 2);
        assert_eq!(wrapped_rows("aaaaaaaaaaaaaaaaaaaaaaaaa", 10), 3);
    }
}
