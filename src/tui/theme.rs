//! Styles by meaning (ok, excluded, earned, selected…), in colour or, when `NO_COLOR` is
//! set, with bold, reverse and underline only. Panels ask the theme for a meaning and never
//! name a colour themselves, so the monochrome screen carries the same information.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    color: bool,
}

impl Default for Theme {
    fn default() -> Self {
        Theme::colored()
    }
}

impl Theme {
    pub const fn colored() -> Self {
        Theme { color: true }
    }

    pub const fn monochrome() -> Self {
        Theme { color: false }
    }

    /// Honours <https://no-color.org>: any non-empty `NO_COLOR` turns colour off. Called once
    /// by the runtime; render code only sees the result.
    pub fn from_env() -> Self {
        match std::env::var_os("NO_COLOR") {
            Some(value) if !value.is_empty() => Theme::monochrome(),
            _ => Theme::colored(),
        }
    }

    pub fn has_color(&self) -> bool {
        self.color
    }

    fn pick(&self, colored: Style, mono: Style) -> Style {
        if self.color { colored } else { mono }
    }

    fn fg(color: Color) -> Style {
        Style::new().fg(color)
    }

    pub fn plain(&self) -> Style {
        Style::new()
    }

    pub fn bold(&self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    /// Secondary text: column headers, hints, units.
    pub fn dim(&self) -> Style {
        self.pick(Self::fg(Color::DarkGray), Style::new())
    }

    pub fn app_name(&self) -> Style {
        self.pick(
            Self::fg(Color::Cyan).add_modifier(Modifier::BOLD),
            self.bold(),
        )
    }

    /// The DEMO badge must be impossible to miss in either mode.
    pub fn demo(&self) -> Style {
        self.pick(
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        )
    }

    pub fn ok(&self) -> Style {
        self.pick(Self::fg(Color::Green), Style::new())
    }

    pub fn warn(&self) -> Style {
        self.pick(Self::fg(Color::Yellow), self.bold())
    }

    pub fn bad(&self) -> Style {
        self.pick(
            Self::fg(Color::Red).add_modifier(Modifier::BOLD),
            Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        )
    }

    pub fn earned(&self) -> Style {
        self.pick(Self::fg(Color::Green), self.bold())
    }

    pub fn spent(&self) -> Style {
        self.pick(Self::fg(Color::Magenta), Style::new())
    }

    pub fn border(&self, focused: bool) -> Style {
        match (focused, self.color) {
            (true, true) => Self::fg(Color::Cyan).add_modifier(Modifier::BOLD),
            (true, false) => self.bold(),
            (false, true) => Self::fg(Color::DarkGray),
            (false, false) => Style::new(),
        }
    }

    /// The selected row: reverse video reads the same with or without colour.
    pub fn selected(&self, focused: bool) -> Style {
        if focused {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new().add_modifier(Modifier::BOLD)
        }
    }

    pub fn key(&self) -> Style {
        self.pick(
            Self::fg(Color::Cyan).add_modifier(Modifier::BOLD),
            self.bold(),
        )
    }

    pub fn sparkline(&self) -> Style {
        self.pick(Self::fg(Color::Green), Style::new())
    }

    pub fn error_text(&self) -> Style {
        self.bad()
    }
}
