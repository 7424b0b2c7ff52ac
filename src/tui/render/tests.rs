//! Screens of the console on ratatui's `TestBackend` at 120×36 and 80×24, with one peer
//! and with thirty: the speed figures are under their own headings in the peer's row,
//! the URL keeps its port, the peers panel is as tall as its rows, this router's
//! requests in flight have a panel of their own with the node's totals on its border,
//! and the sparkline has a scale. Each check reads cells of the drawn screen.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::core::node::Snapshot;
use crate::tui::fixture::{FIXED_NOW_MS, large_snapshot, one_peer_snapshot, sample_snapshot};
use crate::tui::{App, Msg, Theme, render, update};

const NOW: u64 = FIXED_NOW_MS;

fn screen(snapshot: Snapshot, width: u16, height: u16) -> Vec<String> {
    let mut app = App::new(Theme::monochrome());
    update(&mut app, Msg::SnapshotLoaded(Box::new(snapshot)));
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| render(frame, &app, NOW)).unwrap();
    let buffer = terminal.backend().buffer();
    buffer
        .content
        .chunks(usize::from(width))
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect()
}

/// The row index of the first line containing `needle`.
fn row_of(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} on screen:\n{}", lines.join("\n")))
}

/// The column (in cells) where `needle` starts in `line`.
fn column_of(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in {line:?}"));
    line[..at].chars().count()
}

/// The column where the heading `word` starts: a whole word of the header row.
fn heading_at(line: &str, word: &str) -> usize {
    let chars: Vec<char> = line.chars().collect();
    let target: Vec<char> = word.chars().collect();
    let edge = |c: Option<&char>| c.is_none_or(|c| *c == ' ' || *c == '│' || *c == '┃');
    (0..chars.len())
        .find(|&i| {
            chars[i..].starts_with(&target)
                && edge(i.checked_sub(1).and_then(|j| chars.get(j)))
                && edge(chars.get(i + target.len()))
        })
        .unwrap_or_else(|| panic!("no heading {word:?} in {line:?}"))
}

/// The last row of a panel: its bottom border, thin or (focused) thick.
fn is_bottom(line: &str) -> bool {
    line.starts_with('└') || line.starts_with('┗')
}

/// The word of `line` that starts at cell `x`.
fn word_at(line: &str, x: usize) -> String {
    line.chars()
        .skip(x)
        .take_while(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

/// Under each heading of the header row that holds `header`, the value in the first
/// row below it that holds `row`.
fn under(lines: &[String], header: &str, row: &str, headings: &[&str]) -> Vec<String> {
    let at = row_of(lines, header);
    let line = &lines[at + 1 + row_of(&lines[at + 1..], row)];
    headings
        .iter()
        .map(|h| word_at(line, heading_at(&lines[at], h)))
        .collect()
}

fn one_peer() -> Snapshot {
    let mut snap = one_peer_snapshot(NOW);
    // Short enough to show whole: the scale must name its top and bottom.
    snap.net_history = vec![-300, 0, 400, 930, 100];
    snap
}

#[test]
fn one_peer_at_120x36_shows_its_figures_port_and_request_in_flight() {
    let lines = screen(one_peer(), 120, 36);
    let text = lines.join("\n");
    let peer = row_of(&lines, "demo-alpha");
    // Sized to content: heading, the one row, then the border; not ten empty rows.
    assert!(lines[peer - 1].contains(" tok/s "), "{text}");
    assert!(is_bottom(&lines[peer + 1]), "{text}");
    assert!(lines[peer].contains("http://127.0.0.1:17474"), "{text}");
    assert!(lines[peer - 2].contains("Peers (1) · speeds over the last minute"));
    let figures = under(
        &lines,
        " tok/s ",
        "demo-alpha",
        &["tok/s", "ttft", "answer"],
    );
    assert_eq!(figures, ["118", "38ms", "1.4s"], "{text}");
    for heading in [
        "url", "models", "state", "ok/fail", "refused", "declined", "source",
    ] {
        assert!(lines[peer - 1].contains(heading), "{heading}: {text}");
    }

    // The router's own request, under the peers, with the totals on its border.
    let title = row_of(&lines, "Router in flight (1)");
    assert!(title > peer, "{text}");
    assert!(
        lines[title].contains("consumed 118 tok/s · served 12 tok/s"),
        "{text}"
    );
    let flight = under(
        &lines,
        " elapsed ",
        "synthetic ",
        &["peer", "model", "kind", "elapsed", "ttft", "tokens"],
    );
    assert_eq!(
        flight,
        ["demo-alpha", "synthetic", "stream", "1.7s", "38ms", "96"],
        "{text}"
    );
    assert!(lines.iter().any(|l| l.contains("Worker queue")), "{text}");

    // The sparkline's scale: its top and bottom values, the top above.
    let top = row_of(&lines, "+930 ");
    let bottom = row_of(&lines, "-300 ");
    assert!(
        top < bottom && column_of(&lines[top], "+930") > 80,
        "{text}"
    );
}

#[test]
fn one_peer_at_80x24_keeps_url_port_models_source_and_speeds() {
    let lines = screen(one_peer(), 80, 24);
    let text = lines.join("\n");
    let peer = row_of(&lines, "demo-alpha");
    assert!(is_bottom(&lines[peer + 1]), "{text}");
    for heading in [
        "url", "models", "state", "tok/s", "ttft", "answer", "source",
    ] {
        assert!(lines[peer - 1].contains(heading), "{heading}: {text}");
    }
    let cells = under(
        &lines,
        " tok/s ",
        "demo-alpha",
        &["url", "models", "tok/s", "ttft", "answer", "source"],
    );
    // The URL is cut where it cannot mislead: the scheme goes, the port stays.
    assert_eq!(
        cells,
        [
            "127.0.0.1:17474",
            "synthetic",
            "118",
            "38ms",
            "1.4s",
            "manual"
        ],
        "{text}"
    );
    assert!(!lines[peer].contains("127.0.0.1:…"), "{text}");
    let title = row_of(&lines, "Router in flight (1)");
    assert!(lines[title].contains("consumed 118 tok/s"), "{text}");
    assert!(lines[title].contains("served 12 tok/s"), "{text}");
    let flight = under(
        &lines,
        " elapsed ",
        "demo-alpha",
        &["model", "elapsed", "tokens"],
    );
    assert_eq!(flight, ["synthetic", "1.7s", "96"], "{text}");
    // One row of chart: the scale is the range.
    assert!(text.contains("-300‥+930"), "{text}");
}

#[test]
fn thirty_peers_fill_their_share_and_leave_the_rest_of_the_screen() {
    for (width, height, shown) in [(120, 36, 9), (80, 24, 3)] {
        let lines = screen(large_snapshot(NOW, 30, 50), width, height);
        let text = lines.join("\n");
        let title = row_of(&lines, "Peers (30)");
        let rows: Vec<&String> = lines[title..]
            .iter()
            .take_while(|l| !is_bottom(l))
            .filter(|l| l.contains("peer-00"))
            .collect();
        assert_eq!(rows.len(), shown, "{width}x{height}\n{text}");
        for row in &rows {
            assert!(row.contains(":17474"), "port cut in {row:?}");
        }
        let figures = under(&lines, " tok/s ", "peer-0000", &["tok/s", "ttft", "answer"]);
        assert_eq!(
            figures,
            ["5.0", "40ms", "900ms"],
            "{width}x{height}\n{text}"
        );
        // peer-0001 has not answered this minute: dashes, not zeros.
        let idle = under(&lines, " tok/s ", "peer-0001", &["tok/s", "ttft", "answer"]);
        assert_eq!(idle, ["—", "—", "—"], "{width}x{height}\n{text}");
        assert!(text.contains("Router in flight (4)"), "{text}");
        assert!(text.contains("consumed 513 tok/s"), "{text}");
        // The receipts keep their headings and at least one row.
        let receipts = row_of(&lines, "Receipts (");
        assert!(
            lines[receipts + 2].contains("spent"),
            "{width}x{height}\n{text}"
        );
        let flight = under(
            &lines,
            " elapsed ",
            "peer-0000 ",
            &["peer", "elapsed", "tokens"],
        );
        assert_eq!(
            flight,
            ["peer-0000", "4.0s", "160"],
            "{width}x{height}\n{text}"
        );
    }
}

#[test]
fn the_sample_node_labels_each_timing_and_shows_both_requests_in_flight() {
    let lines = screen(sample_snapshot(NOW), 120, 36);
    let text = lines.join("\n");
    let studio = under(
        &lines,
        " tok/s ",
        "mac-studio",
        &["tok/s", "ttft", "answer"],
    );
    assert_eq!(studio, ["85", "84ms", "4.1s"], "{text}");
    // The laptop answered whole only: no time to first token.
    let laptop = under(&lines, " tok/s ", "laptop ", &["tok/s", "ttft", "answer"]);
    assert_eq!(laptop, ["4.5", "—", "1.2s"], "{text}");
    let flight = under(
        &lines,
        " elapsed ",
        "qwen2.5:7b ",
        &["peer", "kind", "elapsed", "ttft", "tokens"],
    );
    assert_eq!(flight, ["laptop", "whole", "800ms", "—", "—"], "{text}");
    assert!(text.contains("Router in flight (2)"), "{text}");
}

#[test]
fn nothing_in_flight_says_so_and_the_totals_stay() {
    let mut snap = one_peer();
    snap.traffic.in_flight.clear();
    snap.traffic.in_flight_total = 0;
    snap.traffic.consumed_per_sec = 0.0;
    for (width, height) in [(120, 36), (80, 24)] {
        let lines = screen(snap.clone(), width, height);
        let title = row_of(&lines, "Router in flight (0)");
        assert!(lines[title].contains("consumed 0 tok/s"), "{lines:?}");
        assert!(lines[title + 1].contains("Nothing in flight"), "{lines:?}");
    }
}
