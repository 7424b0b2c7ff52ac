//! Table tests of `update`: keys, the add-peer form's validation, confirmations, quitting,
//! help and navigation. `update` does no IO, so each case is state in, commands out.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use lobstah::core::node::NodeCommand;
use lobstah::tui::fixture::{FIXED_NOW_MS, pubkey, sample_snapshot};
use lobstah::tui::modal::{Field, FieldState, Modal};
use lobstah::tui::{App, Cmd, Msg, Panel, Theme, Tone, update};

fn loaded() -> App {
    let mut app = App::new(Theme::monochrome());
    update(
        &mut app,
        Msg::SnapshotLoaded(Box::new(sample_snapshot(FIXED_NOW_MS))),
    );
    app
}

fn key(code: KeyCode) -> Msg {
    let modifiers = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    Msg::Key(KeyEvent::new(code, modifiers))
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn press(app: &mut App, code: KeyCode) -> Vec<Cmd> {
    update(app, key(code))
}

fn type_text(app: &mut App, text: &str) -> Vec<Cmd> {
    text.chars()
        .flat_map(|c| press(app, KeyCode::Char(c)))
        .collect()
}

fn form_state(app: &App, field: Field) -> FieldState {
    match &app.modal {
        Some(Modal::AddPeer(form)) => form.state(field),
        other => panic!("expected the add-peer form, found {other:?}"),
    }
}

/// Fills the form (pubkey pasted, as operators do; the rest typed) and presses Enter.
fn submit_form(app: &mut App, pubkey: &str, url: &str, label: &str) -> Vec<Cmd> {
    assert!(press(app, KeyCode::Char('a')).is_empty());
    update(app, Msg::Paste(pubkey.to_string()));
    press(app, KeyCode::Tab);
    type_text(app, url);
    press(app, KeyCode::Tab);
    type_text(app, label);
    press(app, KeyCode::Enter)
}

const VALID_URL: &str = "http://10.0.0.5:17474";

#[test]
fn add_peer_validation_table() {
    let good = pubkey(77);
    let upper = format!("lob1{}", "AB".repeat(32));
    let long_label = "x".repeat(65);
    // (pubkey, url, label, field expected wrong and a word of its message)
    let refused: &[(&str, &str, &str, Field, &str)] = &[
        (
            "npub1abc",
            VALID_URL,
            "",
            Field::Pubkey,
            "must start with lob1",
        ),
        (&upper, VALID_URL, "", Field::Pubkey, "0-9 and a-f"),
        ("lob1abcd", VALID_URL, "", Field::Pubkey, "has 4"),
        ("", VALID_URL, "", Field::Pubkey, "required"),
        (&good, "10.0.0.5:17474", "", Field::Url, "no scheme"),
        (&good, "ftp://10.0.0.5", "", Field::Url, "http or https"),
        (&good, "http://", "", Field::Url, ""),
        (&good, "", "", Field::Url, "required"),
        (&good, VALID_URL, &long_label, Field::Label, "64"),
    ];
    for &(pubkey, url, label, field, words) in refused {
        let mut app = loaded();
        let cmds = submit_form(&mut app, pubkey, url, label);
        assert!(cmds.is_empty(), "{pubkey} {url} {label}: sent {cmds:?}");
        match form_state(&app, field) {
            FieldState::Invalid(reason) => assert!(reason.contains(words), "{reason}"),
            other => panic!("{pubkey} {url}: {field:?} is {other:?}"),
        }
        let Some(Modal::AddPeer(form)) = &app.modal else {
            unreachable!()
        };
        assert_eq!(form.focus(), field, "the cursor goes to the wrong field");
        assert_eq!(app.status.as_ref().map(|s| s.tone), Some(Tone::Error));
    }

    let accepted = [
        (VALID_URL, "box", VALID_URL, Some("box")),
        (
            "HTTP://Worker.Example:80/",
            "",
            "http://worker.example",
            None,
        ),
        (
            "https://w.example/",
            "  spaced  ",
            "https://w.example",
            Some("spaced"),
        ),
    ];
    for (url, label, want_url, want_label) in accepted {
        let mut app = loaded();
        let cmds = submit_form(&mut app, &good, url, label);
        let expected = NodeCommand::AddPeer {
            pubkey: good.clone(),
            url: want_url.to_string(),
            label: want_label.map(str::to_string),
        };
        assert_eq!(cmds, vec![Cmd::SendCommand(expected)]);
        assert!(app.modal.is_none(), "the form closes once sent");
    }
}

#[test]
fn fields_validate_while_typing() {
    let mut app = loaded();
    press(&mut app, KeyCode::Char('a'));
    assert_eq!(
        form_state(&app, Field::Pubkey),
        FieldState::Empty,
        "no complaint before typing"
    );
    type_text(&mut app, "lob1");
    assert!(
        matches!(form_state(&app, Field::Pubkey), FieldState::Invalid(r) if r.contains("has 0"))
    );
    type_text(&mut app, &pubkey(5)[4..]);
    assert_eq!(form_state(&app, Field::Pubkey), FieldState::Valid);
    press(&mut app, KeyCode::Backspace);
    assert!(
        matches!(form_state(&app, Field::Pubkey), FieldState::Invalid(r) if r.contains("has 63"))
    );
    assert_eq!(
        form_state(&app, Field::Label),
        FieldState::Empty,
        "the label is optional"
    );
}

#[test]
fn form_keys_tab_paste_and_letters_go_to_the_form() {
    let mut app = loaded();
    press(&mut app, KeyCode::Char('a'));
    // Letters that are dashboard keys are text here.
    assert!(type_text(&mut app, "qsdA?").is_empty());
    let Some(Modal::AddPeer(form)) = &app.modal else {
        panic!("form closed")
    };
    assert_eq!(form.text(Field::Pubkey), "qsdA?");
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::BackTab);
    update(&mut app, Msg::Paste("http://a.example\r\n:17474".into()));
    let Some(Modal::AddPeer(form)) = &app.modal else {
        panic!("form closed")
    };
    assert_eq!(form.focus(), Field::Url);
    assert_eq!(
        form.text(Field::Url),
        "http://a.example:17474",
        "line breaks dropped"
    );
}

#[test]
fn paste_outside_a_form_does_nothing() {
    let mut app = loaded();
    assert!(update(&mut app, Msg::Paste("q".into())).is_empty());
    assert!(app.modal.is_none() && !app.help_open);
}

#[test]
fn escape_closes_the_modal_before_it_quits() {
    let mut app = loaded();
    press(&mut app, KeyCode::Char('a'));
    assert!(press(&mut app, KeyCode::Esc).is_empty());
    assert!(app.modal.is_none());
    assert_eq!(press(&mut app, KeyCode::Esc), vec![Cmd::Quit]);

    let mut app = loaded();
    press(&mut app, KeyCode::Char('d'));
    assert!(press(&mut app, KeyCode::Esc).is_empty(), "Esc answers no");
    assert!(app.modal.is_none());

    let mut app = loaded();
    press(&mut app, KeyCode::Char('?'));
    assert!(press(&mut app, KeyCode::Esc).is_empty(), "Esc closes help");
    assert!(!app.help_open);
}

#[test]
fn quitting_table() {
    // (keys before, the key, whether it quits)
    let cases: Vec<(Vec<Msg>, Msg, bool)> = vec![
        (vec![], key(KeyCode::Char('q')), true),
        (vec![], key(KeyCode::Esc), true),
        (vec![], ctrl('c'), true),
        (vec![key(KeyCode::Char('a'))], ctrl('c'), true),
        (
            vec![key(KeyCode::Char('a'))],
            key(KeyCode::Char('q')),
            false,
        ),
        (vec![key(KeyCode::Char('?'))], key(KeyCode::Char('q')), true),
        (
            vec![key(KeyCode::Char('d'))],
            key(KeyCode::Char('q')),
            false,
        ),
        (vec![], Msg::Terminate, true),
        (vec![], key(KeyCode::Char('Q')), false),
    ];
    for (before, msg, quits) in cases {
        let mut app = loaded();
        for m in before.clone() {
            update(&mut app, m);
        }
        let cmds = update(&mut app, msg.clone());
        assert_eq!(cmds.contains(&Cmd::Quit), quits, "{before:?} then {msg:?}");
    }
}

#[test]
fn remove_peer_asks_and_sends_the_selected_key() {
    let mut app = loaded();
    press(&mut app, KeyCode::Char('j'));
    assert!(
        press(&mut app, KeyCode::Char('d')).is_empty(),
        "nothing sent before yes"
    );
    match &app.modal {
        Some(Modal::Confirm(confirm)) => assert!(confirm.body.contains("gpu-box")),
        other => panic!("expected a confirmation, got {other:?}"),
    }
    assert!(press(&mut app, KeyCode::Char('n')).is_empty());
    assert!(app.modal.is_none());

    press(&mut app, KeyCode::Delete);
    let cmds = press(&mut app, KeyCode::Char('y'));
    assert_eq!(
        cmds,
        vec![Cmd::SendCommand(NodeCommand::RemovePeer {
            pubkey: pubkey(2)
        })]
    );
    assert!(app.modal.is_none());
}

#[test]
fn remove_with_no_peers_says_so() {
    let mut app = App::new(Theme::monochrome());
    assert!(press(&mut app, KeyCode::Char('d')).is_empty());
    assert!(app.modal.is_none());
    assert_eq!(
        app.status.as_ref().map(|s| s.text.as_str()),
        Some("no peer selected")
    );
}

#[test]
fn advertising_on_asks_first_and_off_does_not() {
    let mut app = loaded();
    assert!(press(&mut app, KeyCode::Char('A')).is_empty());
    match &app.modal {
        Some(Modal::Confirm(confirm)) => {
            assert!(
                confirm.body.contains("http://127.0.0.1:17474"),
                "says what is published"
            );
            assert!(confirm.body.contains("llama3.1:8b"));
            assert!(confirm.body.contains("tracker.example"));
        }
        other => panic!("expected a confirmation, got {other:?}"),
    }
    assert!(press(&mut app, KeyCode::Esc).is_empty());
    press(&mut app, KeyCode::Char('A'));
    let on = NodeCommand::SetAdvertising { on: true };
    assert_eq!(press(&mut app, KeyCode::Enter), vec![Cmd::SendCommand(on)]);

    app.snapshot.advertising.on = true;
    let off = NodeCommand::SetAdvertising { on: false };
    assert_eq!(
        press(&mut app, KeyCode::Char('A')),
        vec![Cmd::SendCommand(off)]
    );
    assert!(app.modal.is_none(), "turning off needs no confirmation");
}

#[test]
fn sync_sends_at_once() {
    let mut app = loaded();
    let cmds = press(&mut app, KeyCode::Char('s'));
    assert_eq!(cmds, vec![Cmd::SendCommand(NodeCommand::SyncPeers)]);
}

#[test]
fn help_toggles_and_swallows_dashboard_keys() {
    let mut app = loaded();
    press(&mut app, KeyCode::Char('?'));
    assert!(app.help_open);
    assert!(press(&mut app, KeyCode::Char('a')).is_empty());
    assert!(press(&mut app, KeyCode::Char('s')).is_empty());
    assert!(app.modal.is_none(), "keys under the help do not act");
    press(&mut app, KeyCode::Char('?'));
    assert!(!app.help_open);
}

#[test]
fn navigation_stays_in_bounds() {
    let mut app = loaded();
    let peers = app.snapshot.peers.len();
    press(&mut app, KeyCode::Char('k'));
    assert_eq!(app.selection.peers, 0);
    for _ in 0..(peers + 3) {
        press(&mut app, KeyCode::Down);
    }
    assert_eq!(app.selection.peers, peers - 1);
    press(&mut app, KeyCode::Char('g'));
    assert_eq!(app.selection.peers, 0);
    press(&mut app, KeyCode::End);
    assert_eq!(app.selection.peers, peers - 1);
    press(&mut app, KeyCode::PageUp);
    assert_eq!(app.selection.peers, 0);
    press(&mut app, KeyCode::PageDown);
    assert_eq!(app.selection.peers, peers - 1);

    let order: Vec<Panel> = (0..4)
        .map(|_| {
            press(&mut app, KeyCode::Tab);
            app.focus
        })
        .collect();
    assert_eq!(
        order,
        [
            Panel::Exclusions,
            Panel::Receipts,
            Panel::Peers,
            Panel::Exclusions
        ]
    );
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.focus, Panel::Peers);

    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char('j'));
    assert_eq!(app.selection.exclusions, 0, "one exclusion: nowhere to go");
    assert_eq!(
        app.selection.peers,
        peers - 1,
        "other panels keep their selection"
    );

    let mut empty = App::new(Theme::monochrome());
    press(&mut empty, KeyCode::Char('j'));
    press(&mut empty, KeyCode::End);
    assert_eq!(empty.selection.peers, 0);
}

#[test]
fn key_releases_are_ignored() {
    let mut app = loaded();
    let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
    release.kind = KeyEventKind::Release;
    assert!(update(&mut app, Msg::Key(release)).is_empty());
}
