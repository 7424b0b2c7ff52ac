//! Screenshots of the console on ratatui's `TestBackend`, from a fixed snapshot and a fixed
//! clock, compared with the text committed in `tests/snapshots/`. After an intended change
//! of the screen, regenerate them with `UPDATE_SNAPSHOTS=1 cargo test --test tui_render`
//! and review the diff. Also: NO_COLOR output has no colour at all, and no terminal size
//! (down to 1×1, with any overlay open) makes rendering panic.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lobstah::tui::fixture::{FIXED_NOW_MS, large_snapshot, sample_snapshot};
use lobstah::tui::{App, Msg, Panel, Theme, render, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

fn loaded_app(theme: Theme) -> App {
    let mut app = App::new(theme);
    update(
        &mut app,
        Msg::SnapshotLoaded(Box::new(sample_snapshot(FIXED_NOW_MS))),
    );
    app
}

fn press(app: &mut App, code: KeyCode) {
    let modifiers = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    update(app, Msg::Key(KeyEvent::new(code, modifiers)));
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

fn draw(app: &App, width: u16, height: u16, now_ms: u64) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|frame| render(frame, app, now_ms))
        .expect("draw on a test backend");
    terminal.backend().buffer().clone()
}

/// The buffer as text, one line per row, trailing blanks trimmed for readable diffs.
fn screen_text(buffer: &Buffer) -> String {
    let width = usize::from(buffer.area.width);
    let mut out = String::new();
    for row in buffer.content.chunks(width.max(1)) {
        let line: String = row.iter().map(|cell| cell.symbol()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Compares with `tests/snapshots/<name>.txt`, or writes it when `UPDATE_SNAPSHOTS=1`.
fn assert_snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("snapshot dir")).expect("create dir");
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; create it with UPDATE_SNAPSHOTS=1\n{actual}",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "screen differs from {} (UPDATE_SNAPSHOTS=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

#[test]
fn dashboard_120x40() {
    let app = loaded_app(Theme::colored());
    assert_snapshot(
        "tui_dashboard_120x40",
        &screen_text(&draw(&app, 120, 40, FIXED_NOW_MS)),
    );
}

#[test]
fn dashboard_80x24() {
    let app = loaded_app(Theme::colored());
    assert_snapshot(
        "tui_dashboard_80x24",
        &screen_text(&draw(&app, 80, 24, FIXED_NOW_MS)),
    );
}

#[test]
fn add_peer_form_with_inline_errors_80x24() {
    let mut app = loaded_app(Theme::colored());
    press(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "lob1XYZ");
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "10.0.0.5:17474");
    assert_snapshot(
        "tui_add_peer_80x24",
        &screen_text(&draw(&app, 80, 24, FIXED_NOW_MS)),
    );
}

#[test]
fn advertising_confirmation_80x24() {
    let mut app = loaded_app(Theme::colored());
    press(&mut app, KeyCode::Char('A'));
    assert_snapshot(
        "tui_confirm_advertise_80x24",
        &screen_text(&draw(&app, 80, 24, FIXED_NOW_MS)),
    );
}

#[test]
fn help_overlay_120x40() {
    let mut app = loaded_app(Theme::colored());
    press(&mut app, KeyCode::Char('?'));
    assert_snapshot(
        "tui_help_120x40",
        &screen_text(&draw(&app, 120, 40, FIXED_NOW_MS)),
    );
}

#[test]
fn help_overlay_scrolls_at_80x24_to_reach_every_binding() {
    let mut app = loaded_app(Theme::colored());
    press(&mut app, KeyCode::Char('?'));
    let top = screen_text(&draw(&app, 80, 24, FIXED_NOW_MS));
    assert!(top.contains("↓ more"), "{top}");
    for _ in 0..40 {
        press(&mut app, KeyCode::Down);
    }
    let bottom = screen_text(&draw(&app, 80, 24, FIXED_NOW_MS));
    assert!(
        bottom.contains("Quit at once, even from a form"),
        "{bottom}"
    );
    assert!(!bottom.contains("↓ more"), "{bottom}");
}

/// The column (in cells) where `needle` starts in the first row containing `row`, and
/// that row's index, found in the screen's text.
fn locate(text: &str, row: &str, needle: &str) -> (u16, u16) {
    let (y, line) = text
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(row))
        .unwrap_or_else(|| panic!("no row with {row:?} in\n{text}"));
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in row {line:?}"));
    let x = line[..at].chars().count();
    (
        u16::try_from(x).expect("fits"),
        u16::try_from(y).expect("fits"),
    )
}

#[test]
fn refused_receipts_and_declines_are_in_the_peers_table_and_refusals_stand_out() {
    let app = loaded_app(Theme::colored());
    // At 80 columns the speeds, URL, models and source take the room; the counters
    // come back from 110.
    for (width, height) in [(110, 30), (120, 40)] {
        let buffer = draw(&app, width, height, FIXED_NOW_MS);
        let text = screen_text(&buffer);
        let (refused_x, header_y) = locate(&text, "refused", "refused");
        let (declined_x, _) = locate(&text, "refused", "declined");
        let cell_at = |row: &str, x: u16| {
            let (_, y) = locate(&text, row, row);
            assert!(y > header_y, "{row} is below the header in\n{text}");
            buffer[(x, y)].clone()
        };
        // gpu-box: 4 receipts refused, in the warning colour; declined us 12 times.
        let refused = cell_at("gpu-box", refused_x);
        assert_eq!(refused.symbol(), "4", "{width}x{height}\n{text}");
        assert_eq!(refused.fg, Color::Yellow, "{width}x{height}");
        assert_eq!(cell_at("gpu-box", declined_x).symbol(), "1");
        assert_eq!(cell_at("gpu-box", declined_x + 1).symbol(), "2");
        // mac-studio: nothing refused, not highlighted; declined once.
        let clean = cell_at("mac-studio", refused_x);
        assert_eq!(clean.symbol(), "0", "{width}x{height}\n{text}");
        assert_ne!(clean.fg, Color::Yellow, "{width}x{height}");
        assert_eq!(cell_at("mac-studio", declined_x).symbol(), "1");
        // What was there before the counters is still there.
        assert!(
            text.contains("excluded 24s") && text.contains("1,234/2"),
            "{text}"
        );
    }
}

#[test]
fn pending_credits_show_under_earned_and_spent_only_when_there_are_some() {
    let app = loaded_app(Theme::colored());
    for (width, height) in [(80, 24), (120, 40)] {
        let text = screen_text(&draw(&app, width, height, FIXED_NOW_MS));
        let (earned_x, earned_y) = locate(&text, "earned 5,120", "earned 5,120");
        let (spent_x, _) = locate(&text, "earned 5,120", "spent 3,870");
        let (pending_x, pending_y) = locate(&text, "pending 320", "pending 320");
        let (pending_spent_x, _) = locate(&text, "pending 320", "pending 150");
        assert_eq!(
            (pending_x, pending_y),
            (earned_x, earned_y + 1),
            "{width}x{height}\n{text}"
        );
        assert_eq!(pending_spent_x, spent_x, "{width}x{height}\n{text}");
        let (_, net_y) = locate(&text, "net +930", "net +930");
        assert_eq!(net_y, earned_y + 2, "{width}x{height}\n{text}");
    }

    let mut snapshot = sample_snapshot(FIXED_NOW_MS);
    snapshot.balance.pending_earned = 0;
    snapshot.balance.pending_spent = 0;
    let mut settled = App::new(Theme::colored());
    update(&mut settled, Msg::SnapshotLoaded(Box::new(snapshot)));
    let text = screen_text(&draw(&settled, 80, 24, FIXED_NOW_MS));
    assert!(!text.contains("pending"), "{text}");
    let (_, earned_y) = locate(&text, "earned 5,120", "earned 5,120");
    let (_, net_y) = locate(&text, "net +930", "net +930");
    assert_eq!(net_y, earned_y + 1, "{text}");
}

#[test]
fn owed_rows_age_with_the_clock_and_warn_near_the_cap() {
    let mut snapshot = sample_snapshot(FIXED_NOW_MS);
    snapshot.owed.rows[0].tokens = 41_000;
    let mut app = App::new(Theme::colored());
    update(&mut app, Msg::SnapshotLoaded(Box::new(snapshot)));
    let buffer = draw(&app, 120, 40, FIXED_NOW_MS);
    let text = screen_text(&buffer);
    let (near_x, near_y) = locate(&text, "41,000", "41,000");
    assert!(
        text.lines()
            .nth(usize::from(near_y))
            .is_some_and(|l| l.contains("82%")),
        "{text}"
    );
    assert_eq!(buffer[(near_x, near_y)].fg, Color::Yellow, "{text}");
    let (_, calm_y) = locate(&text, "2h   0%", "2h");
    assert_ne!(buffer[(near_x + 5, calm_y)].fg, Color::Yellow, "{text}");
    // Ages come from the frame's clock: no refresh is needed for them to move.
    let later = screen_text(&draw(&app, 120, 40, FIXED_NOW_MS + 3 * 3_600_000));
    let owed_part = |text: &str, row: &str| {
        let line = text.lines().find(|l| l.contains(row)).unwrap_or_default();
        line.chars().skip(82).collect::<String>()
    };
    assert!(owed_part(&later, "41,000").contains(" 3h "), "{later}");
    assert!(owed_part(&later, "    50 ").contains(" 5h "), "{later}");
    // Under 100 columns the receipts keep the width; the owed table is left to `status`.
    assert!(!screen_text(&draw(&app, 80, 24, FIXED_NOW_MS)).contains("Owed"));
}

#[test]
fn exclusion_countdown_follows_the_clock_it_is_given() {
    let app = loaded_app(Theme::colored());
    let now = screen_text(&draw(&app, 120, 40, FIXED_NOW_MS));
    let later = screen_text(&draw(&app, 120, 40, FIXED_NOW_MS + 10_000));
    let expired = screen_text(&draw(&app, 120, 40, FIXED_NOW_MS + 60_000));
    assert!(now.contains("excluded 24s"), "{now}");
    assert!(later.contains("excluded 14s"), "{later}");
    assert!(expired.contains("readmitting"), "{expired}");
}

#[test]
fn demo_nodes_are_labelled_and_unloaded_nodes_say_connecting() {
    let mut app = App::new(Theme::colored());
    let first_line = |app: &App| {
        screen_text(&draw(app, 80, 24, FIXED_NOW_MS))
            .lines()
            .next()
            .map(str::to_string)
    };
    assert!(first_line(&app).is_some_and(|l| l.contains("connecting")));
    let mut snapshot = sample_snapshot(FIXED_NOW_MS);
    snapshot.demo = true;
    update(&mut app, Msg::SnapshotLoaded(Box::new(snapshot)));
    assert!(first_line(&app).is_some_and(|l| l.contains(" DEMO ")));
}

#[test]
fn no_color_draws_without_any_colour() {
    let mut app = loaded_app(Theme::monochrome());
    let colourless = |buffer: &Buffer| {
        buffer
            .content
            .iter()
            .all(|cell| cell.fg == Color::Reset && cell.bg == Color::Reset)
    };
    assert!(colourless(&draw(&app, 120, 40, FIXED_NOW_MS)));
    press(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "lob1bad");
    assert!(
        colourless(&draw(&app, 80, 24, FIXED_NOW_MS)),
        "the form too"
    );
    press(&mut app, KeyCode::Esc);
    press(&mut app, KeyCode::Char('?'));
    assert!(
        colourless(&draw(&app, 80, 24, FIXED_NOW_MS)),
        "the help too"
    );

    let coloured = loaded_app(Theme::colored());
    assert!(
        !colourless(&draw(&coloured, 120, 40, FIXED_NOW_MS)),
        "sanity: colour mode has colour"
    );
}

#[test]
fn tiny_terminals_never_panic_with_any_overlay() {
    let mut apps = vec![loaded_app(Theme::colored()), App::new(Theme::colored())];
    let mut form = loaded_app(Theme::colored());
    press(&mut form, KeyCode::Char('a'));
    type_text(&mut form, "lob1zz");
    apps.push(form);
    let mut confirm = loaded_app(Theme::colored());
    press(&mut confirm, KeyCode::Char('d'));
    apps.push(confirm);
    let mut help = loaded_app(Theme::colored());
    press(&mut help, KeyCode::Char('?'));
    apps.push(help);

    for app in &apps {
        for (width, height) in [(1, 1), (10, 3), (2, 40), (200, 1), (29, 5), (30, 6)] {
            draw(app, width, height, FIXED_NOW_MS);
        }
        for width in (1..=90).step_by(7) {
            for height in 1..=26 {
                draw(app, width, height, FIXED_NOW_MS);
            }
        }
    }
}

#[test]
fn tiny_terminal_shows_a_notice() {
    let app = loaded_app(Theme::colored());
    let text = screen_text(&draw(&app, 28, 3, FIXED_NOW_MS));
    assert!(text.contains("too small"), "{text}");
}

#[test]
fn the_selected_row_of_a_long_table_stays_on_screen() {
    let mut app = App::new(Theme::colored());
    update(
        &mut app,
        Msg::SnapshotLoaded(Box::new(large_snapshot(FIXED_NOW_MS, 1_000, 500))),
    );
    press(&mut app, KeyCode::End);
    assert_eq!(app.selection.peers, 999);
    let text = screen_text(&draw(&app, 120, 40, FIXED_NOW_MS));
    assert!(text.contains("peer-0999"), "{text}");
    assert!(text.contains("Peers (1000)"), "{text}");

    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Panel::Receipts);
    press(&mut app, KeyCode::End);
    let text = screen_text(&draw(&app, 120, 40, FIXED_NOW_MS));
    assert!(
        text.contains("peer-0499"),
        "the oldest receipt is shown:\n{text}"
    );
}

#[test]
fn text_from_the_network_cannot_write_terminal_escapes() {
    let mut snapshot = sample_snapshot(FIXED_NOW_MS);
    snapshot.peers[0].label = Some("\u{1b}[2Jevil".into());
    snapshot.receipts[0].model = "m\u{7}odel".into();
    snapshot.engine.kind = "\u{1b}]0;title\u{7}".into();
    snapshot.identity = "\u{1b}[31mnot-a-key".into();
    let mut app = App::new(Theme::colored());
    update(&mut app, Msg::SnapshotLoaded(Box::new(snapshot)));
    let text = screen_text(&draw(&app, 120, 40, FIXED_NOW_MS));
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains("[2Jevil"), "shown, harmlessly: {text}");
}
