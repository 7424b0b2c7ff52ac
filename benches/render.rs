//! One full console frame for a busy node: 1,000 peers and 500 receipts at 120×40 on
//! ratatui's `TestBackend`. The target is ≤ 5 ms a frame; the panels build rows only for
//! what is on screen, so the cost should not grow with the number of peers.

// A test states what it expects, and its helpers are `pub` for the files that share them.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crossterm::event::{KeyCode, KeyEvent};
use lobstah::tui::fixture::{FIXED_NOW_MS, large_snapshot};
use lobstah::tui::{App, Msg, Theme, render, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn busy_app() -> App {
    let mut app = App::new(Theme::colored());
    let snapshot = large_snapshot(FIXED_NOW_MS, 1_000, 500);
    update(&mut app, Msg::SnapshotLoaded(Box::new(snapshot)));
    // Select a row deep in the table, so the frame scrolls as it would in use.
    for _ in 0..500 {
        update(&mut app, Msg::Key(KeyEvent::from(KeyCode::Down)));
    }
    app
}

fn frames(c: &mut Criterion) {
    let app = busy_app();

    // What the runtime pays per redraw: render, diff against the last frame, flush.
    // The clock moves each frame so countdowns change and the diff is never empty.
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test terminal");
    let mut now = FIXED_NOW_MS;
    c.bench_function("draw 1000 peers 500 receipts 120x40", |b| {
        b.iter(|| {
            now += 1_000;
            terminal
                .draw(|frame| render(frame, black_box(&app), now))
                .expect("draw");
        })
    });

    // The worst case: a fresh terminal, so every cell is new (first frame, resize).
    c.bench_function("first frame 1000 peers 500 receipts 120x40", |b| {
        b.iter(|| {
            let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("test terminal");
            terminal
                .draw(|frame| render(frame, black_box(&app), FIXED_NOW_MS))
                .expect("draw");
        })
    });
}

criterion_group!(benches, frames);
criterion_main!(benches);
