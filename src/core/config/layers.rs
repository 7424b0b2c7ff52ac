//! The raw layers a configuration is resolved from: command-line flags, `LOBSTAH_*`
//! environment variables and config.toml, each value tagged with its source. Typing
//! happens later, in one place, whatever layer a value came from.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::keys::{self, KEYS};
use super::{ConfigError, Source};

/// A value before typing: text from flags and the environment, TOML's own types from
/// the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<String>),
}

impl Raw {
    pub fn text(&self) -> Option<&str> {
        match self {
            Raw::Text(t) => Some(t),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Raw::Text(_) => "text",
            Raw::Int(_) => "a whole number",
            Raw::Float(_) => "a decimal number",
            Raw::Bool(_) => "true/false",
            Raw::List(_) => "a list",
        }
    }
}

/// Values given on the command line, by setting name.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    values: Vec<(&'static str, String, String)>,
}

impl Overrides {
    /// Sets `key` (a name from `KEYS`) to `value`, given as `flag`.
    pub fn set(&mut self, key: &'static str, flag: &str, value: impl ToString) {
        debug_assert!(keys::find(key).is_some(), "{key} is not in KEYS");
        self.values.retain(|(k, _, _)| *k != key);
        self.values.push((key, value.to_string(), flag.to_string()));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

type Layer = HashMap<&'static str, (Raw, Source)>;

/// Flags, environment and file, highest precedence first.
#[derive(Debug, Clone, Default)]
pub struct Layers {
    flags: Layer,
    env: Layer,
    file: Layer,
}

impl Layers {
    /// Reads every layer. A missing config file is an empty layer; an unreadable or
    /// invalid one is an error naming the file, the line and the key.
    pub fn read(
        file: &Path,
        env: impl Fn(&str) -> Option<String>,
        flags: &Overrides,
    ) -> Result<Self, ConfigError> {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ConfigError::Read {
                    path: file.to_path_buf(),
                    source,
                });
            }
        };
        Ok(Layers {
            flags: flag_layer(flags),
            env: env_layer(env),
            file: match text {
                Some(text) => file_layer(file, &text)?,
                None => Layer::new(),
            },
        })
    }

    /// Layers from config.toml text alone (tests, and `config show` of a given file).
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        Ok(Layers {
            file: file_layer(path, text)?,
            ..Layers::default()
        })
    }

    /// The value of `key` from the highest layer that sets it.
    pub fn get(&self, key: &str) -> Option<&(Raw, Source)> {
        self.flags
            .get(key)
            .or_else(|| self.env.get(key))
            .or_else(|| self.file.get(key))
    }
}

fn flag_layer(flags: &Overrides) -> Layer {
    flags
        .values
        .iter()
        .map(|(key, value, flag)| {
            (
                *key,
                (
                    Raw::Text(value.clone()),
                    Source::Flag { flag: flag.clone() },
                ),
            )
        })
        .collect()
}

/// An empty variable counts as unset, as shells make unsetting awkward.
fn env_layer(env: impl Fn(&str) -> Option<String>) -> Layer {
    KEYS.iter()
        .filter_map(|k| {
            let value = env(k.env).filter(|v| !v.is_empty())?;
            Some((
                k.name,
                (
                    Raw::Text(value),
                    Source::Env {
                        var: k.env.to_string(),
                    },
                ),
            ))
        })
        .collect()
}

fn file_layer(path: &Path, text: &str) -> Result<Layer, ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().to_string(),
        }
    })?;
    let mut layer = Layer::new();
    let at = |offset: usize| Source::File {
        path: path.to_path_buf(),
        line: line_col(text, offset).0,
    };
    let unknown = |key: String, offset: usize| ConfigError::UnknownKey {
        path: PathBuf::from(path),
        line: line_col(text, offset).0,
        key,
    };
    for (section, value) in doc.get_ref().iter() {
        let DeValue::Table(table) = value.get_ref() else {
            return Err(unknown(section.get_ref().to_string(), section.span().start));
        };
        for (name, value) in table.iter() {
            let full = format!("{}.{}", section.get_ref(), name.get_ref());
            let Some(key) = keys::find(&full) else {
                return Err(unknown(full, name.span().start));
            };
            let source = at(value.span().start);
            let raw = to_raw(value.get_ref()).map_err(|message| ConfigError::Invalid {
                key: key.name,
                origin: source.clone(),
                message,
            })?;
            layer.insert(key.name, (raw, source));
        }
    }
    Ok(layer)
}

fn to_raw(value: &DeValue<'_>) -> Result<Raw, String> {
    Ok(match value {
        DeValue::String(s) => Raw::Text(s.to_string()),
        DeValue::Integer(i) => Raw::Int(
            i64::from_str_radix(i.as_str(), i.radix())
                .map_err(|_| format!("{i} is out of range"))?,
        ),
        DeValue::Float(f) => Raw::Float(
            f.as_str()
                .parse()
                .map_err(|_| format!("{f} is not a number"))?,
        ),
        DeValue::Boolean(b) => Raw::Bool(*b),
        DeValue::Array(items) => Raw::List(
            items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(s) => Ok(s.to_string()),
                    other => Err(format!(
                        "expected a list of text, found {}",
                        other.type_str()
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        other => return Err(format!("unexpected {}", other.type_str())),
    })
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}
