//! The local worker's queue: requests running against the concurrency limit and requests
//! waiting for a slot, with a bar of slots so saturation is visible at a glance.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::common::panel;
use crate::tui::app::App;
use crate::tui::text::{self, cell};

/// More slots than this are summarised instead of drawn one by one.
const MAX_SLOTS_DRAWN: u32 = 32;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let queue = app.snapshot.queue;
    let block = panel(text::TITLE_QUEUE.to_string(), false, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let limit = if queue.concurrency == 0 {
        cell::NONE.to_string()
    } else {
        queue.concurrency.to_string()
    };
    let busy = queue.concurrency > 0 && queue.running >= queue.concurrency;
    let running_style = if busy { theme.warn() } else { theme.plain() };
    let waiting_style = if queue.waiting > 0 {
        theme.warn()
    } else {
        theme.plain()
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{:<8}", cell::RUNNING), theme.dim()),
            Span::styled(format!("{} / {limit}", queue.running), running_style),
        ]),
        Line::from(vec![
            Span::styled(format!("{:<8}", cell::WAITING), theme.dim()),
            Span::styled(queue.waiting.to_string(), waiting_style),
        ]),
    ];
    if queue.concurrency > 0 {
        lines.push(slot_bar(queue.running, queue.concurrency, theme));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `■■□□` for two of four slots busy; large limits are shown as a count instead.
fn slot_bar<'a>(running: u32, concurrency: u32, theme: &crate::tui::theme::Theme) -> Line<'a> {
    if concurrency > MAX_SLOTS_DRAWN {
        let percent = u64::from(running.min(concurrency)) * 100 / u64::from(concurrency);
        return Line::from(Span::styled(
            format!("{:<8}{percent}% busy", cell::SLOTS),
            theme.dim(),
        ));
    }
    let used = running.min(concurrency) as usize;
    let free = (concurrency as usize).saturating_sub(used);
    Line::from(vec![
        Span::styled(format!("{:<8}", cell::SLOTS), theme.dim()),
        Span::styled("■".repeat(used), theme.ok()),
        Span::styled("□".repeat(free), theme.dim()),
    ])
}
