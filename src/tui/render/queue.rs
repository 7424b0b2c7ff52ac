//! The local worker's queue: requests running against the concurrency limit and requests
//! waiting for a slot, with a bar of slots so saturation is visible at a glance; then the
//! async jobs by state — those this worker serves (`jobs`) and those this node's router
//! sent out for its clients (`sent`) — as far as the panel's height allows.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::common::panel;
use crate::core::node::JobCounts;
use crate::tui::app::App;
use crate::tui::text::{self, cell};

/// More slots than this are summarised instead of drawn one by one.
const MAX_SLOTS_DRAWN: u32 = 32;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
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
    let width = usize::from(inner.width);
    lines.push(jobs_line(cell::JOBS, queue.jobs, width, theme));
    lines.push(jobs_line(cell::SENT, queue.client_jobs, width, theme));
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `jobs    3 queued · 1 running · 12 done`, or `jobs    3q 1r 12d` when that does not
/// fit (errors and cancellations only when there are some), the label shortened last.
fn jobs_line<'a>(
    label: &str,
    c: JobCounts,
    width: usize,
    theme: &crate::tui::theme::Theme,
) -> Line<'a> {
    let parts = |long: bool| -> Vec<String> {
        let mut parts = vec![
            (c.queued, "queued", "q"),
            (c.running, "running", "r"),
            (c.done, "done", "d"),
        ];
        parts.extend(
            [(c.error, "error", "e"), (c.cancelled, "cancelled", "c")]
                .into_iter()
                .filter(|p| p.0 > 0),
        );
        parts
            .into_iter()
            .map(|(n, word, letter)| {
                if long {
                    format!("{n} {word}")
                } else {
                    format!("{n}{letter}")
                }
            })
            .collect()
    };
    let long = parts(true).join(" · ");
    let short = parts(false).join(" ");
    let (label_width, value) = if 8 + long.chars().count() <= width {
        (8, long)
    } else if 8 + short.chars().count() <= width {
        (8, short)
    } else {
        (label.len() + 1, short)
    };
    let style = if c.error > 0 {
        theme.warn()
    } else if c.queued + c.running > 0 {
        theme.plain()
    } else {
        theme.dim()
    };
    Line::from(vec![
        Span::styled(format!("{label:<label_width$}"), theme.dim()),
        Span::styled(value, style),
    ])
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
