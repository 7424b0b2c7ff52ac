//! The balance: credits earned and spent, net, and what is available to spend (allowance
//! included), above a sparkline of net credits over the latest receipts. When some of the
//! earned or spent credits are still waiting for counter-signatures, a line under them says
//! how many: pending earnings are in `earned` but not yet in `net` or `available`.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::common::panel;
use crate::tui::app::App;
use crate::tui::format::{credits, signed, thousands};
use crate::tui::text::{self, cell};
use crate::tui::theme::Theme;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let balance = app.snapshot.balance;
    let block = panel(text::TITLE_BALANCE.to_string(), false, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }

    let half = usize::from(inner.width / 2);
    // A label and its value in the left half, another pair after it; either may be absent.
    let pair = |left: Option<(&'static str, String, Style)>,
                right: Option<(&'static str, String, Style)>| {
        let mut spans = Vec::new();
        let mut used = 0;
        if let Some((label, value, style)) = left {
            used = label.chars().count() + 1 + value.chars().count();
            spans.push(Span::styled(format!("{label} "), theme.dim()));
            spans.push(Span::styled(value, style));
        }
        if let Some((label, value, style)) = right {
            spans.push(Span::raw(" ".repeat(half.saturating_sub(used).max(1))));
            spans.push(Span::styled(format!("{label} "), theme.dim()));
            spans.push(Span::styled(value, style));
        }
        Line::from(spans)
    };
    let net_style = if balance.net < 0 {
        theme.spent()
    } else {
        theme.earned()
    };
    let available_style = if balance.available < 0 {
        theme.bad()
    } else {
        theme.bold()
    };
    // "available 11,250" does not fit half of a narrow panel; the short word does.
    let available_label = if inner.width >= 34 {
        cell::BAL_AVAILABLE
    } else {
        cell::BAL_AVAILABLE_SHORT
    };
    let pending =
        |value: u64| (value > 0).then(|| (cell::BAL_PENDING, thousands(value), Style::new()));
    let mut lines = vec![pair(
        Some((cell::BAL_EARNED, thousands(balance.earned), theme.earned())),
        Some((cell::BAL_SPENT, thousands(balance.spent), theme.spent())),
    )];
    // Under the figures they are part of; net and available come first when only two
    // lines fit, so the pending line is the one left out.
    let pending_line = pair(
        pending(balance.pending_earned),
        pending(balance.pending_spent),
    );
    if pending_line.width() > 0 && inner.height >= 3 {
        lines.push(pending_line);
    }
    lines.push(pair(
        Some((cell::BAL_NET, signed(balance.net), net_style)),
        Some((available_label, credits(balance.available), available_style)),
    ));
    let text_h = inner
        .height
        .min(u16::try_from(lines.len()).unwrap_or(u16::MAX));
    frame.render_widget(
        Paragraph::new(lines),
        Rect {
            height: text_h,
            ..inner
        },
    );

    let chart = Rect {
        y: inner.y + text_h,
        height: inner.height - text_h,
        ..inner
    };
    if chart.height > 0 {
        render_trend(frame, chart, &app.snapshot.net_history, theme);
    }
}

/// Net credits can be negative; the sparkline draws heights, so the series is shifted to
/// start at its own minimum. A flat series is drawn as a low line, not as nothing.
fn render_trend(frame: &mut Frame, area: Rect, history: &[i64], theme: &Theme) {
    if history.is_empty() {
        let hint = Span::styled(cell::NET_TREND, theme.dim());
        frame.render_widget(Paragraph::new(hint), area);
        return;
    }
    let shown = &history[history.len().saturating_sub(usize::from(area.width))..];
    let low = shown.iter().copied().min().unwrap_or(0);
    let high = shown.iter().copied().max().unwrap_or(0);
    let range = high.abs_diff(low);
    let (data, max): (Vec<u64>, u64) = if range == 0 {
        (vec![1; shown.len()], 8)
    } else {
        (shown.iter().map(|v| v.abs_diff(low)).collect(), range)
    };
    let sparkline = Sparkline::default()
        .data(data)
        .max(max)
        .style(theme.sparkline());
    frame.render_widget(sparkline, area);
}
