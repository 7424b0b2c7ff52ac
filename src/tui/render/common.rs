//! Pieces the table panels share: the panel frame, the visible window of a long table
//! (only rows on screen are built, which keeps a 1,000-peer frame cheap), and fitting
//! columns to a width by dropping the least important ones first.

use ratatui::layout::Constraint;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

use crate::tui::theme::Theme;

/// A bordered panel with its title; the focused panel's border stands out.
pub(super) fn panel<'a>(title: String, focused: bool, theme: &Theme) -> Block<'a> {
    let border_type = if focused {
        BorderType::Thick
    } else {
        BorderType::Plain
    };
    Block::default()
        .borders(Borders::ALL)
        .border_type(border_type)
        .border_style(theme.border(focused))
        .title(Line::from(Span::styled(
            format!(" {title} "),
            theme.bold().patch(if focused {
                theme.border(true)
            } else {
                Style::new()
            }),
        )))
}

/// The rows `[offset, offset + visible)` to draw so that `selected` is on screen, and the
/// selected row's index within that window.
pub(super) fn window(selected: usize, len: usize, visible: usize) -> (usize, usize) {
    if visible == 0 || len == 0 {
        return (0, 0);
    }
    let selected = selected.min(len - 1);
    let offset = (selected + 1).saturating_sub(visible);
    (offset, selected - offset)
}

/// A column a table may show: its minimum width, whether it takes spare width, and how
/// important it is (lower numbers are kept longest).
#[derive(Debug, Clone, Copy)]
pub(super) struct ColumnSpec<C> {
    pub column: C,
    pub title: &'static str,
    pub min: u16,
    /// Share of the spare width this column takes, relative to other growing columns.
    pub grow: u16,
    pub priority: u8,
}

/// Picks the columns that fit `width` (with one space between columns) by priority, keeps
/// them in display order, and gives spare width to the growing ones.
pub(super) fn fit_columns<C: Copy>(
    specs: &[ColumnSpec<C>],
    width: u16,
) -> Vec<(C, &'static str, u16)> {
    let mut by_priority: Vec<usize> = (0..specs.len()).collect();
    by_priority.sort_by_key(|&i| specs[i].priority);
    let mut chosen = vec![false; specs.len()];
    let mut used: u16 = 0;
    for i in by_priority {
        let gap = u16::from(used > 0);
        let need = used.saturating_add(gap).saturating_add(specs[i].min);
        if need <= width {
            chosen[i] = true;
            used = need;
        }
    }
    let spare = width.saturating_sub(used);
    let total_grow: u32 = specs
        .iter()
        .zip(&chosen)
        .filter(|(_, c)| **c)
        .map(|(s, _)| u32::from(s.grow))
        .sum();
    let mut given: u16 = 0;
    let mut out: Vec<(C, &'static str, u16)> = Vec::new();
    for (spec, _) in specs.iter().zip(&chosen).filter(|(_, c)| **c) {
        let extra = (u32::from(spare) * u32::from(spec.grow))
            .checked_div(total_grow)
            .map_or(0, |e| e as u16);
        given += extra;
        out.push((spec.column, spec.title, spec.min + extra));
    }
    // Rounding leftovers go to the column that grows most, the one that wants width most.
    let chosen_specs = specs
        .iter()
        .zip(&chosen)
        .filter(|(_, c)| **c)
        .map(|(s, _)| s);
    if let Some((index, _)) = chosen_specs
        .enumerate()
        .filter(|(_, s)| s.grow > 0)
        .max_by_key(|(i, s)| (s.grow, std::cmp::Reverse(*i)))
    {
        out[index].2 += spare - given;
    }
    out
}

pub(super) fn constraints<C>(columns: &[(C, &'static str, u16)]) -> Vec<Constraint> {
    columns
        .iter()
        .map(|(_, _, w)| Constraint::Length(*w))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_selection_visible() {
        assert_eq!(window(0, 100, 10), (0, 0));
        assert_eq!(window(9, 100, 10), (0, 9));
        assert_eq!(window(10, 100, 10), (1, 9));
        assert_eq!(window(500, 100, 10), (90, 9));
        assert_eq!(window(3, 0, 10), (0, 0));
        assert_eq!(window(3, 5, 0), (0, 0));
    }

    #[test]
    fn columns_drop_by_priority_and_fill_the_width() {
        let specs = [
            ColumnSpec {
                column: 'a',
                title: "a",
                min: 10,
                grow: 1,
                priority: 0,
            },
            ColumnSpec {
                column: 'b',
                title: "b",
                min: 10,
                grow: 0,
                priority: 2,
            },
            ColumnSpec {
                column: 'c',
                title: "c",
                min: 10,
                grow: 0,
                priority: 1,
            },
        ];
        let fit = fit_columns(&specs, 25);
        assert_eq!(fit.iter().map(|c| c.0).collect::<String>(), "ac");
        assert_eq!(fit.iter().map(|c| c.2).sum::<u16>() + 1, 25);
        let all = fit_columns(&specs, 40);
        assert_eq!(all.len(), 3);
        assert_eq!(all.iter().map(|c| c.2).sum::<u16>() + 2, 40);
        assert!(fit_columns(&specs, 0).is_empty());
    }
}
