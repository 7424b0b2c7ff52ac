//! The bottom two lines: the status line (what just happened, or what went wrong) and the
//! key hints for whatever has the keyboard, generated from the binding table.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::{App, Tone};
use crate::tui::format::printable;
use crate::tui::keymap::footer_hints;

pub(super) fn render_hints(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let mut spans = Vec::new();
    let mut used = 0usize;
    // Whole hints only: a hint cut in half reads as a different key.
    for (keys, word) in footer_hints(app.context()) {
        let gap = if spans.is_empty() { 0 } else { 2 };
        let need = gap + keys.chars().count() + 1 + word.chars().count();
        if used + need > usize::from(area.width) {
            break;
        }
        used += need;
        if gap > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(keys, theme.key()));
        spans.push(Span::raw(" "));
        spans.push(Span::styled(word, theme.dim()));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub(super) fn render_status(frame: &mut Frame, area: Rect, app: &App) {
    let Some(status) = &app.status else {
        return;
    };
    let theme = &app.theme;
    let style = match status.tone {
        Tone::Info => theme.plain(),
        Tone::Success => theme.ok(),
        Tone::Error => theme.error_text(),
    };
    let line = Line::from(Span::styled(printable(&status.text), style));
    frame.render_widget(Paragraph::new(line), area);
}
