//! Drawing the screen from `App` and an explicit `now_ms` (never the system clock, so the
//! same state draws the same frame). One file per panel; this one lays them out and draws
//! overlays last so they sit on top.

mod balance;
mod common;
mod exclusions;
mod figures;
mod footer;
mod header;
mod help;
mod in_flight;
pub(super) mod layout;
mod modals;
mod owed;
mod peers;
mod queue;
mod receipts;
#[cfg(all(test, feature = "test-utils"))]
mod tests;

use ratatui::Frame;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::tui::app::App;
use crate::tui::text;
use layout::{Content, Plan, plan};

/// Draws one frame. Any terminal size is accepted; small ones get fewer panels or a notice.
pub fn render(frame: &mut Frame, app: &App, now_ms: u64) {
    let area = frame.area();
    let content = Content {
        peers: app.snapshot.peers.len(),
        in_flight: app.snapshot.traffic.in_flight.len(),
    };
    let areas = match plan(area, content) {
        Plan::TooSmall(area) => {
            let notice = Line::from(vec![
                Span::styled(text::APP_NAME, app.theme.app_name()),
                Span::raw(": "),
                Span::raw(text::TOO_SMALL),
            ]);
            frame.render_widget(Paragraph::new(notice).wrap(Wrap { trim: true }), area);
            return;
        }
        Plan::Dashboard(areas) => areas,
    };

    header::render(frame, areas.header, app);
    peers::render(frame, areas.peers, app, now_ms);
    if let Some(area) = areas.in_flight {
        in_flight::render(frame, area, app, now_ms);
    }
    if let Some(area) = areas.queue {
        queue::render(frame, area, app);
    }
    if let Some(area) = areas.exclusions {
        exclusions::render(frame, area, app, now_ms);
    }
    if let Some(area) = areas.balance {
        balance::render(frame, area, app);
    }
    if let Some(area) = areas.receipts {
        receipts::render(frame, area, app);
    }
    if let Some(area) = areas.owed {
        owed::render(frame, area, app, now_ms);
    }
    if let Some(area) = areas.status {
        footer::render_status(frame, area, app);
    }
    footer::render_hints(frame, areas.footer, app);

    modals::render(frame, area, app);
    if app.help_open {
        help::render(frame, area, app);
    }
}
