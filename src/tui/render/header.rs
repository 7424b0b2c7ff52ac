//! The header: who this node is (short identity), where it listens (router and worker),
//! how its engine is, whether it advertises, and a DEMO badge nobody can miss on the demo
//! grid. One line on short terminals, two otherwise.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::tui::app::App;
use crate::tui::format::{printable, short_pubkey};
use crate::tui::text;
use crate::tui::theme::Theme;

pub(super) fn render(frame: &mut Frame, area: Rect, app: &App) {
    let theme = &app.theme;
    let mut lines = vec![identity_line(app, theme)];
    if area.height >= 2 {
        lines.push(address_line(app, theme, usize::from(area.width)));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn identity_line<'a>(app: &'a App, theme: &Theme) -> Line<'a> {
    let snap = &app.snapshot;
    let mut spans = vec![Span::styled(text::APP_NAME, theme.app_name())];
    if snap.demo {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(text::DEMO_BADGE, theme.demo()));
    }
    if !app.loaded {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(text::CONNECTING, theme.dim()));
        return Line::from(spans);
    }
    spans.push(Span::raw("  "));
    spans.push(Span::styled("id ", theme.dim()));
    spans.push(Span::raw(short_pubkey(&snap.identity)));
    if let Some(error) = &snap.ledger_error {
        // Before all else: the node is refusing work until its disk has room.
        spans.push(Span::raw("  "));
        spans.push(Span::styled(printable(error), theme.bad()));
    }

    spans.push(Span::raw("  "));
    if snap.advertising.on {
        spans.push(Span::styled(text::ADVERTISING_ON, theme.warn()));
        if let Some(beat) = &snap.advertising.last_heartbeat
            && !beat.ok
        {
            spans.push(Span::styled(" (heartbeat failing)", theme.bad()));
        }
    } else {
        spans.push(Span::styled(text::ADVERTISING_OFF, theme.dim()));
    }

    spans.push(Span::raw("  "));
    spans.push(Span::styled("engine ", theme.dim()));
    let engine = &snap.engine;
    let kind = if engine.kind.is_empty() {
        "?".to_string()
    } else {
        printable(&engine.kind)
    };
    spans.push(Span::raw(kind));
    if engine.ok {
        spans.push(Span::styled(" ok", theme.ok()));
        let models = engine.models.len();
        let noun = if models == 1 { "model" } else { "models" };
        spans.push(Span::styled(format!(" · {models} {noun}"), theme.dim()));
    } else {
        spans.push(Span::styled(" down", theme.bad()));
        if let Some(error) = &engine.error {
            spans.push(Span::styled(format!(": {}", printable(error)), theme.bad()));
        }
    }
    Line::from(spans)
}

/// Router, worker and (if any) control addresses; an address that does not fit whole is
/// left out rather than cut, since half a URL misleads.
fn address_line<'a>(app: &'a App, theme: &Theme, width: usize) -> Line<'a> {
    if !app.loaded {
        return Line::default();
    }
    let snap = &app.snapshot;
    let mut addresses = vec![
        (text::ROUTER, snap.router_url.as_deref()),
        (text::WORKER, snap.worker_url.as_deref()),
    ];
    if snap.control_url.is_some() {
        addresses.push((text::CONTROL, snap.control_url.as_deref()));
    }
    let mut spans = Vec::new();
    let mut used = 0;
    for (name, url) in addresses {
        let (value, style) = match url {
            Some(url) => (printable(url), theme.plain()),
            None => (text::OFF.to_string(), theme.dim()),
        };
        let gap = if spans.is_empty() { 0 } else { 2 };
        let need = gap + name.chars().count() + 1 + value.chars().count();
        if used + need > width {
            break;
        }
        used += need;
        if gap > 0 {
            spans.push(Span::raw("  "));
        }
        spans.push(Span::styled(format!("{name} "), theme.dim()));
        spans.push(Span::styled(value, style));
    }
    Line::from(spans)
}
