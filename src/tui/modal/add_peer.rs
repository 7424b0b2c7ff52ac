//! The add-peer form: three single-line text areas (public key, worker URL, label) that
//! validate as the operator types, with the same rules the core's peer book applies, so
//! the form never sends something the node would refuse for its shape.

use crossterm::event::KeyEvent;
use ratatui::style::{Modifier, Style};
use ratatui_textarea::{Input, Key, TextArea};

use crate::core::node::NodeCommand;
use crate::core::peers::{normalize_label, normalize_url};
use crate::core::protocol::PublicKey;
use crate::tui::format::peer_name;
use crate::tui::text;
use crate::tui::theme::Theme;

/// The form's fields, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Pubkey,
    Url,
    Label,
}

impl Field {
    pub const ALL: [Field; 3] = [Field::Pubkey, Field::Url, Field::Label];

    fn index(self) -> usize {
        match self {
            Field::Pubkey => 0,
            Field::Url => 1,
            Field::Label => 2,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Field::Pubkey => text::FIELD_PUBKEY,
            Field::Url => text::FIELD_URL,
            Field::Label => text::FIELD_LABEL,
        }
    }

    fn placeholder(self) -> &'static str {
        match self {
            Field::Pubkey => text::PLACEHOLDER_PUBKEY,
            Field::Url => text::PLACEHOLDER_URL,
            Field::Label => text::PLACEHOLDER_LABEL,
        }
    }
}

/// What the form says about one field right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldState {
    /// Nothing typed and nothing to complain about yet.
    Empty,
    Valid,
    Invalid(String),
}

pub struct AddPeerForm {
    fields: [TextArea<'static>; 3],
    focus: Field,
    /// After a refused Enter, empty required fields are reported too, not just wrong ones.
    tried_submit: bool,
}

impl std::fmt::Debug for AddPeerForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddPeerForm")
            .field("pubkey", &self.text(Field::Pubkey))
            .field("url", &self.text(Field::Url))
            .field("label", &self.text(Field::Label))
            .field("focus", &self.focus)
            .finish()
    }
}

impl AddPeerForm {
    pub fn new(theme: Theme) -> Self {
        let fields = Field::ALL.map(|field| {
            let mut area = TextArea::default();
            area.set_placeholder_text(field.placeholder());
            area.set_placeholder_style(theme.dim());
            // The library underlines the cursor line, which in a one-line field underlines
            // the whole value; reverse video marks the selection in either colour mode.
            area.set_cursor_line_style(Style::new());
            area.set_selection_style(Style::new().add_modifier(Modifier::REVERSED));
            area
        });
        let mut form = AddPeerForm {
            fields,
            focus: Field::Pubkey,
            tried_submit: false,
        };
        form.show_cursor_in_focus();
        form
    }

    pub fn focus(&self) -> Field {
        self.focus
    }

    pub fn text_area(&self, field: Field) -> &TextArea<'static> {
        &self.fields[field.index()]
    }

    /// The field's text as typed (the text areas are kept to one line).
    pub fn text(&self, field: Field) -> String {
        self.fields[field.index()].lines().concat()
    }

    pub fn focus_next(&mut self) {
        self.set_focus(match self.focus {
            Field::Pubkey => Field::Url,
            Field::Url => Field::Label,
            Field::Label => Field::Pubkey,
        });
    }

    pub fn focus_prev(&mut self) {
        self.set_focus(match self.focus {
            Field::Pubkey => Field::Label,
            Field::Url => Field::Pubkey,
            Field::Label => Field::Url,
        });
    }

    fn set_focus(&mut self, field: Field) {
        self.focus = field;
        self.show_cursor_in_focus();
    }

    /// Only the focused field draws a cursor, so the operator sees where typing goes.
    fn show_cursor_in_focus(&mut self) {
        for field in Field::ALL {
            let style = if field == self.focus {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            self.fields[field.index()].set_cursor_style(style);
        }
    }

    /// Gives a key to the focused field. Keys that would start a second line are dropped:
    /// Enter belongs to the form (submit), never to the text.
    pub fn input(&mut self, key: KeyEvent) {
        let input = Input::from(key);
        let newline = matches!(
            input,
            Input {
                key: Key::Enter,
                ..
            } | Input { key: Key::Tab, .. }
                | Input {
                    key: Key::Char('\n' | '\r'),
                    ..
                }
                | Input {
                    key: Key::Char('m' | 'j'),
                    ctrl: true,
                    ..
                }
        );
        if !newline {
            self.fields[self.focus.index()].input(input);
        }
    }

    /// Pastes into the focused field. Line breaks are removed: a key copied from a wrapped
    /// terminal line arrives in pieces and is still meant as one value.
    pub fn paste(&mut self, pasted: &str) {
        let one_line: String = pasted
            .chars()
            .filter(|c| !matches!(c, '\n' | '\r'))
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.fields[self.focus.index()].insert_str(one_line);
    }

    /// Replaces a field's text (tests, and pre-filling from a clipboard).
    pub fn set_text(&mut self, field: Field, value: &str) {
        let area = &mut self.fields[field.index()];
        area.select_all();
        area.cut();
        area.insert_str(value.replace(['\n', '\r'], ""));
    }

    pub fn state(&self, field: Field) -> FieldState {
        let raw = self.text(field);
        let required = field != Field::Label;
        if raw.trim().is_empty() {
            return match (required && self.tried_submit, field) {
                (false, _) => FieldState::Empty,
                (true, Field::Url) => FieldState::Invalid(text::URL_REQUIRED.into()),
                (true, _) => FieldState::Invalid(text::PUBKEY_REQUIRED.into()),
            };
        }
        let checked = match field {
            Field::Pubkey => check_pubkey(&raw).map(drop),
            Field::Url => normalize_url(&raw).map(drop).map_err(|e| e.to_string()),
            Field::Label => normalize_label(Some(&raw))
                .map(drop)
                .map_err(|e| e.to_string()),
        };
        match checked {
            Ok(()) => FieldState::Valid,
            Err(reason) => FieldState::Invalid(reason),
        }
    }

    pub fn is_valid(&self) -> bool {
        self.command().is_ok()
    }

    /// The command the form describes, or the first field that is wrong.
    pub fn command(&self) -> Result<NodeCommand, Field> {
        let pubkey = check_pubkey(&self.text(Field::Pubkey)).map_err(|_| Field::Pubkey)?;
        let url = normalize_url(&self.text(Field::Url)).map_err(|_| Field::Url)?;
        let label = normalize_label(Some(&self.text(Field::Label))).map_err(|_| Field::Label)?;
        Ok(NodeCommand::AddPeer { pubkey, url, label })
    }

    /// Enter: the command when every field is valid; otherwise the form marks what is wrong
    /// and moves the cursor to the first such field.
    pub fn submit(&mut self) -> Option<NodeCommand> {
        match self.command() {
            Ok(command) => Some(command),
            Err(field) => {
                self.tried_submit = true;
                self.set_focus(field);
                None
            }
        }
    }

    /// How the peer will be called in the status line while it is being added.
    pub fn display_name(&self) -> String {
        let label = self.text(Field::Label);
        peer_name(Some(&label), self.text(Field::Pubkey).trim())
    }
}

/// The pubkey rule (`lob1` + 64 lowercase hex), explained piece by piece: the operator
/// learns which part is wrong instead of reading "bad key".
fn check_pubkey(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let Some(hex) = trimmed.strip_prefix(crate::core::protocol::PUBKEY_PREFIX) else {
        return Err(text::PUBKEY_PREFIX_MISSING.into());
    };
    if !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(text::PUBKEY_NOT_LOWER_HEX.into());
    }
    if hex.len() != 64 {
        return Err(text::pubkey_wrong_length(hex.len()));
    }
    PublicKey::parse(trimmed)
        .map(|key| key.to_string())
        .map_err(|e| e.to_string())
}
