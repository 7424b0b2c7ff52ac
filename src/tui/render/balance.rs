//! The balance: credits earned and spent, net, and what is available to spend (allowance
//! included), above a sparkline of net credits over the latest receipts.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::common::panel;
use crate::tui::app::App;
use crate::tui::format::{credits, signed, thousands};
use crate::tui::text::{self, cell};
use crate::tui::theme::Theme;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let balance = app.snapshot.balance;
    let block = panel(text::TITLE_BALANCE.to_string(), false, theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }

    let half = usize::from(inner.width / 2);
    let pair = |left: (&'static str, String, ratatui::style::Style),
                right: (&'static str, String, ratatui::style::Style)| {
        let left_text = format!("{} {}", left.0, left.1);
        let pad = half.saturating_sub(left_text.chars().count()).max(1);
        Line::from(vec![
            Span::styled(format!("{} ", left.0), theme.dim()),
            Span::styled(left.1, left.2),
            Span::raw(" ".repeat(pad)),
            Span::styled(format!("{} ", right.0), theme.dim()),
            Span::styled(right.1, right.2),
        ])
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
    let lines = vec![
        pair(
            (cell::BAL_EARNED, thousands(balance.earned), theme.earned()),
            (cell::BAL_SPENT, thousands(balance.spent), theme.spent()),
        ),
        pair(
            (cell::BAL_NET, signed(balance.net), net_style),
            (available_label, credits(balance.available), available_style),
        ),
    ];
    let text_h = inner.height.min(2);
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
