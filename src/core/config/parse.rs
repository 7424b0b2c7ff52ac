//! Turning raw values (text from flags and the environment, TOML types from the file)
//! into typed settings, with messages that say what was expected.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::Raw;
use crate::core::protocol::PublicKey;

pub(super) fn parse_ip(raw: &Raw) -> Result<IpAddr, String> {
    let text = raw
        .text()
        .ok_or("expected an IP address such as 127.0.0.1")?;
    text.trim()
        .parse()
        .map_err(|_| format!("{text:?} is not an IP address (write 127.0.0.1, not a host name)"))
}

pub(super) fn parse_int<T: TryFrom<i64> + fmt::Display>(raw: &Raw) -> Result<T, String> {
    let n = match raw {
        Raw::Int(n) => *n,
        Raw::Text(t) => t
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{t:?} is not a whole number"))?,
        other => return Err(format!("expected a whole number, got {}", other.kind())),
    };
    T::try_from(n).map_err(|_| format!("{n} is out of range"))
}

pub(super) fn parse_positive<T: TryFrom<i64> + fmt::Display + PartialEq + From<u8>>(
    raw: &Raw,
) -> Result<T, String> {
    let n: T = parse_int(raw)?;
    if n == T::from(0) {
        return Err("must be at least 1".into());
    }
    Ok(n)
}

pub(super) fn parse_rate(raw: &Raw) -> Result<f64, String> {
    let n = match raw {
        Raw::Int(n) => *n as f64,
        Raw::Float(f) => *f,
        Raw::Text(t) => t
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("{t:?} is not a number"))?,
        other => return Err(format!("expected a number, got {}", other.kind())),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{n} is not a rate (0 or more tokens per second)"));
    }
    Ok(n)
}

pub(super) fn parse_bool(raw: &Raw) -> Result<bool, String> {
    match raw {
        Raw::Bool(b) => Ok(*b),
        Raw::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(format!("{t:?} is not true or false")),
        },
        other => Err(format!("expected true or false, got {}", other.kind())),
    }
}

pub(super) fn parse_text<T: FromStr<Err = String>>(raw: &Raw) -> Result<T, String> {
    let text = raw
        .text()
        .ok_or_else(|| format!("expected text, got {}", raw.kind()))?;
    text.trim().parse()
}

pub(super) fn parse_optional_text(raw: &Raw) -> Result<Option<String>, String> {
    let text = raw
        .text()
        .ok_or_else(|| format!("expected text, got {}", raw.kind()))?;
    let text = text.trim();
    if text.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok((!text.is_empty()).then(|| text.to_string()))
}

pub(super) fn parse_optional_url(raw: &Raw) -> Result<Option<String>, String> {
    match parse_optional_text(raw)? {
        None => Ok(None),
        Some(text) => check_url(&text).map(Some),
    }
}

pub(super) fn check_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

pub(super) fn parse_list(raw: &Raw) -> Result<Vec<String>, String> {
    let items = match raw {
        Raw::List(items) => items.clone(),
        Raw::Text(t) => t.split(',').map(str::to_string).collect(),
        other => return Err(format!("expected a list, got {}", other.kind())),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

/// Public keys (`lob1…`), as a list.
pub(super) fn parse_pubkeys(raw: &Raw) -> Result<Vec<PublicKey>, String> {
    parse_list(raw)?
        .iter()
        .map(|k| PublicKey::parse(k).map_err(|e| e.to_string()))
        .collect()
}

pub(super) fn parse_models(raw: &Raw) -> Result<Vec<String>, String> {
    let models = parse_list(raw)?;
    if models.is_empty() {
        return Err("name at least one model".into());
    }
    Ok(models)
}

pub(super) fn parse_urls(raw: &Raw) -> Result<Vec<String>, String> {
    parse_list(raw)?.iter().map(|u| check_url(u)).collect()
}

/// Origins for `browser.allowed_origins`: `scheme://host[:port]`, `null` or `*`.
pub(super) fn parse_origins(raw: &Raw) -> Result<Vec<String>, String> {
    parse_list(raw)?
        .iter()
        .map(|o| crate::core::net::normalize_origin(o))
        .collect()
}

/// Host names for `browser.allowed_hosts`, or `*`.
pub(super) fn parse_hosts(raw: &Raw) -> Result<Vec<String>, String> {
    parse_list(raw)?
        .iter()
        .map(|h| crate::core::net::normalize_host(h))
        .collect()
}

/// Nostr relay URLs: ws:// or wss:// with a host.
pub(super) fn parse_relay_urls(raw: &Raw) -> Result<Vec<String>, String> {
    parse_list(raw)?
        .iter()
        .map(|text| {
            let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
            if !matches!(url.scheme(), "ws" | "wss") || url.host_str().is_none() {
                return Err(format!("{text:?} is not a ws(s):// relay URL"));
            }
            Ok(url.as_str().trim_end_matches('/').to_string())
        })
        .collect()
}
