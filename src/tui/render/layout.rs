//! Where each panel goes for a given terminal size and content. Pure arithmetic on
//! `Rect`s: the peers and in-flight panels are as tall as their rows (up to a share of the
//! screen, so one peer leaves no empty rows and thirty still leave room for receipts);
//! panels are dropped in a fixed order as the terminal shrinks (owed, queue, then
//! exclusions and balance, then receipts and the in-flight panel), and below a minimum
//! only a notice is drawn. Every size yields a plan.

use ratatui::layout::Rect;

/// Below this the dashboard is replaced by a notice.
pub const MIN_WIDTH: u16 = 30;
pub const MIN_HEIGHT: u16 = 6;
/// The owed panel's width, and the terminal width it needs.
const OWED_WIDTH: u16 = 38;
const OWED_FROM_WIDTH: u16 = 100;
/// A table panel's rows besides its data: two borders and the column headings.
const TABLE_CHROME: u16 = 3;
/// The receipts keep at least their headings and one row.
const RECEIPTS_MIN: u16 = 4;

/// The panels to draw; `None` means the terminal has no room for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Areas {
    pub header: Rect,
    pub peers: Rect,
    /// This router's requests in flight, under the peers.
    pub in_flight: Option<Rect>,
    pub queue: Option<Rect>,
    pub exclusions: Option<Rect>,
    pub balance: Option<Rect>,
    pub receipts: Option<Rect>,
    /// Beside the receipts on wide terminals.
    pub owed: Option<Rect>,
    pub status: Option<Rect>,
    pub footer: Rect,
}

/// How many rows the sized panels have to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Content {
    pub peers: usize,
    pub in_flight: usize,
}

impl Content {
    /// A table of `rows` rows, whole; an empty one shows a one-line hint.
    fn wants(rows: usize) -> u16 {
        TABLE_CHROME.saturating_add(u16::try_from(rows.max(1)).unwrap_or(u16::MAX))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    TooSmall(Rect),
    Dashboard(Areas),
}

pub(crate) fn plan(area: Rect, content: Content) -> Plan {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return Plan::TooSmall(area);
    }
    let header_h = if area.height >= 16 { 2 } else { 1 };
    let status_h = u16::from(area.height >= 20);
    let footer_h = 1;
    let body_h = area.height - header_h - status_h - footer_h;

    let mut rows = Rows::new(area);
    let header = rows.take(header_h);
    let mut areas = Areas {
        header,
        ..Areas::default()
    };

    let peers_want = Content::wants(content.peers);
    let flight_want = Content::wants(content.in_flight);
    if body_h >= 18 && area.width >= 40 {
        let middle_h = if body_h >= 30 { 8 } else { 6 };
        let rest = body_h - middle_h;
        let (peers_h, flight_h) = sized(rest, peers_want, flight_want);
        areas.peers = rows.take(peers_h);
        areas.in_flight = Some(rows.take(flight_h));
        split_middle(rows.take(middle_h), &mut areas);
        split_bottom(rows.take(rest - peers_h - flight_h), &mut areas);
    } else if body_h >= 12 {
        let (peers_h, flight_h) = sized(body_h, peers_want, flight_want);
        areas.peers = rows.take(peers_h);
        areas.in_flight = Some(rows.take(flight_h));
        areas.receipts = Some(rows.take(body_h - peers_h - flight_h));
    } else if body_h >= 8 {
        let flight_h = TABLE_CHROME + 1;
        areas.peers = rows.take(body_h - flight_h);
        areas.in_flight = Some(rows.take(flight_h));
    } else {
        areas.peers = rows.take(body_h);
    }
    if status_h > 0 {
        areas.status = Some(rows.take(status_h));
    }
    areas.footer = rows.take(footer_h);
    Plan::Dashboard(areas)
}

/// Heights of the peers and in-flight panels in `rest` (at least 12) rows, the receipts
/// taking what is left: each sized panel gets what it wants up to its share, the
/// in-flight panel a quarter (at least its headings and a row), the peers what the
/// receipts can spare while keeping a third of the remainder (at least `RECEIPTS_MIN`),
/// but never less than their own headings and a row.
fn sized(rest: u16, peers_want: u16, flight_want: u16) -> (u16, u16) {
    let one_row = TABLE_CHROME + 1;
    let flight_h = flight_want.min((rest / 4).max(one_row));
    let left = rest.saturating_sub(flight_h);
    let peers_min = peers_want.min(one_row);
    let receipts_h = (left / 3)
        .max(RECEIPTS_MIN)
        .min(left.saturating_sub(peers_min));
    let peers_h = peers_want.min(left.saturating_sub(receipts_h));
    (peers_h, flight_h)
}

/// Queue | exclusions | balance side by side; the queue goes first when width is short.
fn split_middle(middle: Rect, areas: &mut Areas) {
    let width = middle.width;
    if width >= 70 {
        let queue_w = if width >= 100 { 24 } else { 18 };
        let balance_w = if width >= 100 { 36 } else { 30 };
        let exclusions_w = width - queue_w - balance_w;
        areas.queue = Some(Rect {
            width: queue_w,
            ..middle
        });
        areas.exclusions = Some(Rect {
            x: middle.x + queue_w,
            width: exclusions_w,
            ..middle
        });
        areas.balance = Some(Rect {
            x: middle.x + queue_w + exclusions_w,
            width: balance_w,
            ..middle
        });
    } else {
        let half = width / 2;
        areas.exclusions = Some(Rect {
            width: half,
            ..middle
        });
        areas.balance = Some(Rect {
            x: middle.x + half,
            width: width - half,
            ..middle
        });
    }
}

/// Receipts | owed; the owed table only where the receipts keep enough width.
fn split_bottom(bottom: Rect, areas: &mut Areas) {
    if bottom.width < OWED_FROM_WIDTH {
        areas.receipts = Some(bottom);
        return;
    }
    let receipts_w = bottom.width - OWED_WIDTH;
    areas.receipts = Some(Rect {
        width: receipts_w,
        ..bottom
    });
    areas.owed = Some(Rect {
        x: bottom.x + receipts_w,
        width: OWED_WIDTH,
        ..bottom
    });
}

/// Hands out full-width horizontal bands from the top down.
struct Rows {
    area: Rect,
    next_y: u16,
}

impl Rows {
    fn new(area: Rect) -> Self {
        Rows {
            area,
            next_y: area.y,
        }
    }

    fn take(&mut self, height: u16) -> Rect {
        let bottom = self.area.y.saturating_add(self.area.height);
        let height = height.min(bottom.saturating_sub(self.next_y));
        let rect = Rect {
            x: self.area.x,
            y: self.next_y,
            width: self.area.width,
            height,
        };
        self.next_y = self.next_y.saturating_add(height);
        rect
    }
}

/// A `width`×`height` rectangle centred in `area`, shrunk to fit.
pub(crate) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dashboard(width: u16, height: u16) -> Areas {
        let content = Content {
            peers: 5,
            in_flight: 1,
        };
        match plan(Rect::new(0, 0, width, height), content) {
            Plan::Dashboard(areas) => areas,
            Plan::TooSmall(_) => panic!("{width}x{height} should draw the dashboard"),
        }
    }

    #[test]
    fn full_layout_at_80x24_and_120x40() {
        for (w, h) in [(80, 24), (120, 40)] {
            let a = dashboard(w, h);
            assert!(a.queue.is_some() && a.exclusions.is_some() && a.balance.is_some());
            assert!(a.receipts.is_some() && a.status.is_some());
            assert_eq!(
                a.footer.y + a.footer.height,
                h,
                "footer sits on the last row"
            );
            assert!(a.peers.height >= 6);
        }
        assert!(dashboard(80, 24).owed.is_none());
        assert!(dashboard(80, 24).in_flight.is_some());
        let wide = dashboard(120, 40);
        let (receipts, owed) = (wide.receipts.unwrap(), wide.owed.unwrap());
        assert_eq!((owed.x, owed.width), (receipts.width, 38));
        assert_eq!((owed.y, owed.height), (receipts.y, receipts.height));
    }

    #[test]
    fn panels_drop_as_the_terminal_shrinks() {
        let a = dashboard(60, 24);
        assert!(a.queue.is_none() && a.balance.is_some());
        let a = dashboard(80, 14);
        assert!(a.balance.is_none() && a.receipts.is_some() && a.status.is_none());
        let a = dashboard(30, 6);
        assert!(a.receipts.is_none());
        assert_eq!(
            plan(Rect::new(0, 0, 29, 24), Content::default()),
            Plan::TooSmall(Rect::new(0, 0, 29, 24))
        );
    }

    #[test]
    fn every_area_stays_inside_the_terminal() {
        for w in 0..130 {
            for h in 0..45 {
                let area = Rect::new(0, 0, w, h);
                for (peers, in_flight) in [(0, 0), (1, 1), (30, 5), (1_000, 64)] {
                    let content = Content { peers, in_flight };
                    if let Plan::Dashboard(a) = plan(area, content) {
                        let all = [Some(a.header), Some(a.peers), a.in_flight, a.queue]
                            .into_iter()
                            .chain([a.exclusions, a.balance, a.receipts, a.owed])
                            .chain([a.status, Some(a.footer)])
                            .flatten();
                        let mut covered = 0;
                        for rect in all {
                            assert_eq!(area.intersection(rect), rect, "{w}x{h}: {rect:?}");
                            covered += u32::from(rect.height) * u32::from(rect.width);
                        }
                        // No band overlaps another or is left out: every cell is drawn once.
                        assert_eq!(covered, u32::from(w) * u32::from(h), "{w}x{h} {content:?}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod sizing {
    use super::*;

    fn areas(w: u16, h: u16, peers: usize, in_flight: usize) -> Areas {
        match plan(Rect::new(0, 0, w, h), Content { peers, in_flight }) {
            Plan::Dashboard(a) => a,
            Plan::TooSmall(_) => panic!("{w}x{h} is a dashboard"),
        }
    }

    /// (size, peers, in flight) → peers height, in-flight height, receipts height.
    #[test]
    fn sized_panels_table() {
        let cases = [
            // One peer: its panel is its row and chrome, not ten empty rows.
            ((120, 36), 1, 0, 4, 4, 16),
            ((120, 36), 1, 1, 4, 4, 16),
            ((120, 36), 1, 3, 4, 6, 14),
            // Thirty: as many as leave a third to the receipts.
            ((120, 36), 30, 1, 14, 4, 6),
            ((120, 36), 30, 20, 12, 6, 6),
            ((80, 24), 1, 1, 4, 4, 6),
            ((80, 24), 30, 1, 6, 4, 4),
            ((80, 24), 30, 0, 6, 4, 4),
        ];
        for ((w, h), peers, in_flight, peers_h, flight_h, receipts_h) in cases {
            let a = areas(w, h, peers, in_flight);
            let got = (
                a.peers.height,
                a.in_flight.map_or(0, |r| r.height),
                a.receipts.map_or(0, |r| r.height),
            );
            assert_eq!(
                got,
                (peers_h, flight_h, receipts_h),
                "{w}x{h} {peers} {in_flight}"
            );
        }
    }
}
