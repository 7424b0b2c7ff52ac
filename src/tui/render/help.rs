//! The help overlay: every binding of the table, grouped by where it applies. It is the
//! same table `update` dispatches on, so the help cannot drift from the keys. Legends of
//! the peers table's figures, the in-flight panel and the queue panel's job counts
//! follow.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::common::panel;
use super::layout::centered;
use crate::tui::app::App;
use crate::tui::keymap::{Context, bindings_in};
use crate::tui::text;

const CONTEXTS: [Context; 5] = [
    Context::Dashboard,
    Context::AddPeer,
    Context::Confirm,
    Context::Help,
    Context::Anywhere,
];

/// Width of the keys column, wide enough for "Shift-Tab".
const KEYS_WIDTH: usize = 11;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let mut lines: Vec<Line> = Vec::new();
    for context in CONTEXTS {
        if !lines.is_empty() {
            lines.push(Line::default());
        }
        lines.push(Line::from(Span::styled(context.heading(), theme.bold())));
        for binding in bindings_in(context) {
            lines.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(format!("{:<KEYS_WIDTH$}", binding.keys), theme.key()),
                Span::raw(" "),
                Span::raw(binding.help),
            ]));
        }
    }
    for (heading, legend) in [
        (text::HELP_PEERS_HEADING, text::HELP_PEERS_LEGEND.as_slice()),
        (
            text::HELP_IN_FLIGHT_HEADING,
            text::HELP_IN_FLIGHT_LEGEND.as_slice(),
        ),
        (text::HELP_QUEUE_HEADING, text::HELP_QUEUE_LEGEND.as_slice()),
    ] {
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(heading, theme.bold())));
        for (term, meaning) in legend {
            lines.push(Line::from(vec![
                Span::raw("  "),
                Span::styled(format!("{term:<KEYS_WIDTH$}"), theme.key()),
                Span::raw(" "),
                Span::raw(*meaning),
            ]));
        }
    }
    let content_w = lines.iter().map(Line::width).max().unwrap_or(0);
    let width = u16::try_from(content_w + 4).unwrap_or(u16::MAX);
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let rect = centered(area, width, height);
    frame.render_widget(Clear, rect);
    let block = panel(text::TITLE_HELP.to_string(), true, theme);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let inner = Rect {
        x: inner.x.saturating_add(1),
        width: inner.width.saturating_sub(1),
        ..inner
    };
    // Taller than the terminal (80×24 is): scroll, and say there is more below.
    let overflow = u16::try_from(lines.len())
        .unwrap_or(u16::MAX)
        .saturating_sub(inner.height);
    let scroll = app.help_scroll.min(overflow);
    frame.render_widget(Paragraph::new(lines).scroll((scroll, 0)), inner);
    if scroll < overflow && rect.height > 0 {
        let more = Span::styled(format!(" {} ", text::HELP_MORE), theme.key());
        let bottom = Rect {
            x: rect.x + 2,
            y: rect.y + rect.height - 1,
            width: rect.width.saturating_sub(4),
            height: 1,
        };
        frame.render_widget(Paragraph::new(more), bottom);
    }
}
