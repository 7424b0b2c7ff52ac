//! The balance: credits earned and spent, net, and what is available to spend (allowance
//! included), above a sparkline of net credits over the latest receipts. When some of the
//! earned or spent credits are still waiting for counter-signatures, a line under them says
//! how many: pending earnings are in `earned` but not yet in `net` or `available`. The
//! sparkline has a scale: the values its top and bottom stand for.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::common::panel;
use super::figures;
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
/// start at its own minimum. A flat series is drawn as a low line, not as nothing. The
/// scale on its left says what the top and the bottom stand for (on one row: the range).
fn render_trend(frame: &mut Frame, area: Rect, history: &[i64], theme: &Theme) {
    if history.is_empty() {
        let hint = Span::styled(cell::NET_TREND, theme.dim());
        frame.render_widget(Paragraph::new(hint), area);
        return;
    }
    let tail = |width: u16| &history[history.len().saturating_sub(usize::from(width))..];
    // Labels for the widest series that could show, then the series beside them: fewer
    // points only narrow the range, so the labels still fit.
    let (scale_w, _) = scale(tail(area.width), area.height);
    let chart_w = area.width.saturating_sub(scale_w);
    let (scale_w, labels) = if chart_w >= 4 {
        (scale_w, scale(tail(chart_w), area.height).1)
    } else {
        (0, Vec::new())
    };
    let shown = tail(area.width - scale_w);
    for (row, label) in labels.into_iter().enumerate() {
        let y = if row == 0 {
            area.y
        } else {
            area.y + area.height - 1
        };
        let text = format!(
            "{label:>width$} ",
            width = usize::from(scale_w.saturating_sub(1))
        );
        let at = Rect {
            y,
            width: scale_w,
            height: 1,
            ..area
        };
        frame.render_widget(Paragraph::new(Span::styled(text, theme.dim())), at);
    }
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
    let chart = Rect {
        x: area.x + scale_w,
        width: area.width - scale_w,
        ..area
    };
    frame.render_widget(sparkline, chart);
}

/// The scale's width (with a space after it) and its labels, top first: the highest and
/// the lowest value on two rows or more, `low‥high` on one, one value when flat.
fn scale(shown: &[i64], height: u16) -> (u16, Vec<String>) {
    let low = shown.iter().copied().min().unwrap_or(0);
    let high = shown.iter().copied().max().unwrap_or(0);
    let labels = match (low == high, height) {
        (true, _) => vec![figures::compact_signed(high)],
        (false, 1) => vec![format!(
            "{}‥{}",
            figures::compact_signed(low),
            figures::compact_signed(high)
        )],
        (false, _) => vec![figures::compact_signed(high), figures::compact_signed(low)],
    };
    let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    (u16::try_from(widest + 1).unwrap_or(u16::MAX), labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_names_the_top_and_bottom() {
        let cases: [(&[i64], u16, u16, &[&str]); 5] = [
            (&[-300, 930, 100], 3, 5, &["+930", "-300"]),
            (&[-300, 930, 100], 1, 10, &["-300‥+930"]),
            (&[5, 5], 3, 3, &["+5"]),
            (&[0, 12_500], 2, 7, &["+12.5k", "+0"]),
            (&[], 3, 3, &["+0"]),
        ];
        for (series, height, width, labels) in cases {
            let (w, got) = scale(series, height);
            let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
            assert_eq!((w, got), (width, labels), "{series:?}");
        }
    }
}
