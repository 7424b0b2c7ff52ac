//! Validation and normal forms of what goes into the peer book: a URL the router can dial
//! and a label the dashboard can draw.

use super::PeerError;

/// Longest label kept, in characters: enough for a host name, short enough for a table.
pub const MAX_LABEL_CHARS: usize = 64;
/// Longest URL accepted; anything longer is a mistake or an attack, not a worker address.
pub const MAX_URL_CHARS: usize = 2_048;

/// Validates a peer URL and returns its normal form (scheme and host lowercased, default
/// port dropped, no trailing slash), so one worker is not booked twice under two spellings.
pub fn normalize_url(input: &str) -> Result<String, PeerError> {
    let trimmed = input.trim();
    let chars = trimmed.chars().count();
    if chars > MAX_URL_CHARS {
        return Err(PeerError::UrlTooLong { chars });
    }
    let url = trimmed.to_string();
    // "host:port" is the likeliest slip, and the parser would read "host" as a scheme or
    // call it relative; say what was meant instead.
    let reads_as_host = |u: url::Url| u.username().is_empty() && u.password().is_none();
    if !trimmed.contains("://")
        && url::Url::parse(&format!("http://{trimmed}")).is_ok_and(reads_as_host)
    {
        return Err(PeerError::UrlNoScheme { url });
    }
    let parsed = url::Url::parse(trimmed).map_err(|e| PeerError::UrlUnparsable {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(PeerError::UrlScheme { url });
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(PeerError::UrlNoHost { url });
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(PeerError::UrlUserinfo { url });
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(PeerError::UrlQueryOrFragment { url });
    }
    let normal = parsed.as_str().trim_end_matches('/').to_string();
    // Percent-encoding can lengthen a URL past the limit; refusing that here keeps the
    // normal form normal (a second pass would refuse it, as the fuzzer found).
    let chars = normal.chars().count();
    if chars > MAX_URL_CHARS {
        return Err(PeerError::UrlTooLong { chars });
    }
    Ok(normal)
}

/// Trims a label; an empty one means no label. Refuses long or unprintable labels, which
/// would break the dashboard's tables or smuggle terminal escapes into it.
pub fn normalize_label(input: Option<&str>) -> Result<Option<String>, PeerError> {
    let Some(label) = input.map(str::trim).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    let chars = label.chars().count();
    if chars > MAX_LABEL_CHARS {
        return Err(PeerError::LabelTooLong {
            label: label.chars().take(MAX_LABEL_CHARS).collect::<String>() + "…",
            chars,
        });
    }
    if label.chars().any(char::is_control) {
        return Err(PeerError::LabelNotPrintable {
            label: label.to_string(),
        });
    }
    Ok(Some(label.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_normalization_table() {
        let cases = [
            ("http://127.0.0.1:17474", "http://127.0.0.1:17474"),
            ("http://127.0.0.1:17474/", "http://127.0.0.1:17474"),
            ("  HTTPS://Worker.Example:443/  ", "https://worker.example"),
            ("http://host:80/", "http://host"),
            ("https://host/lobstah/", "https://host/lobstah"),
            ("http://[::1]:17474", "http://[::1]:17474"),
        ];
        for (input, normal) in cases {
            assert_eq!(normalize_url(input).unwrap(), normal, "{input:?}");
        }
    }

    /// A URL within the limit whose percent-encoded form is not (found by fuzzing the
    /// control commands): refused, so every normal form normalizes to itself.
    #[test]
    fn the_normal_form_is_a_fixed_point_also_at_the_length_limit() {
        let spaced = format!("http://h/{}", "a b".repeat(MAX_URL_CHARS / 4));
        assert!(spaced.chars().count() <= MAX_URL_CHARS);
        assert!(matches!(
            normalize_url(&spaced),
            Err(PeerError::UrlTooLong { .. })
        ));
        let fits = format!("http://h/{}", "a b".repeat(MAX_URL_CHARS / 8));
        let normal = normalize_url(&fits).unwrap();
        assert_eq!(normalize_url(&normal).unwrap(), normal);
    }

    #[test]
    fn invalid_urls_and_labels_table() {
        let long_url = format!("http://h/{}", "a".repeat(MAX_URL_CHARS));
        let urls = [
            ("ftp://x", "peer URL \"ftp://x\" must use http or https"),
            ("file:///etc/passwd", "must use http or https"),
            ("x", "has no scheme"),
            ("http:///", "is not a valid URL"),
            ("", "is not a valid URL"),
            (
                "127.0.0.1:17474",
                "has no scheme: write http://127.0.0.1:17474",
            ),
            ("localhost:17474", "has no scheme"),
            ("mailto:someone@example.org", "must use http or https"),
            ("http://", "is not a valid URL"),
            (
                "http://user:pw@host",
                "must not carry a user name or password",
            ),
            ("http://user@host", "must not carry a user name or password"),
            ("http://host/?a=1", "must not have a query"),
            ("http://host/?", "must not have a query"),
            ("http://host/#top", "or fragment"),
            (long_url.as_str(), "the limit is 2048"),
        ];
        for (input, message) in urls {
            let err = normalize_url(input).unwrap_err().to_string();
            assert!(err.contains(message), "{input:?}: {err}");
        }

        let long_label = "x".repeat(MAX_LABEL_CHARS + 1);
        let labels = [
            (
                Some(long_label.as_str()),
                Err("65 characters long; the limit is 64"),
            ),
            (Some("tab\there"), Err("contains control characters")),
            (Some("esc\u{1b}[2J"), Err("contains control characters")),
            (Some("   "), Ok(None)),
            (None, Ok(None)),
            (Some(" ünïcødé mac 🦞 "), Ok(Some("ünïcødé mac 🦞"))),
        ];
        let exact = "é".repeat(MAX_LABEL_CHARS);
        assert_eq!(normalize_label(Some(&exact)).unwrap(), Some(exact.clone()));
        for (input, expect) in labels {
            match (normalize_label(input), expect) {
                (Ok(got), Ok(want)) => assert_eq!(got.as_deref(), want, "{input:?}"),
                (Err(e), Err(message)) => {
                    assert!(e.to_string().contains(message), "{input:?}: {e}")
                }
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
