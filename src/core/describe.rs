//! How failures are put into words for the operator and for clients, in one place: a
//! transport failure in short (what failover notes and `status` show), an error with its
//! whole cause chain on one line (what an engine's failure says), and a ledger that
//! cannot be written.

/// Short, operator-readable reasons for transport failures.
pub fn transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else if e.is_body() || e.is_decode() {
        format!("broken response body: {e}")
    } else {
        e.to_string()
    }
}

/// The error and its causes on one line (reqwest's own message is often just
/// "error sending request", with the useful part in the source chain).
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// "ledger unavailable: disk full" when the operating system said so, else the cause.
pub fn ledger_failure(cause: &dyn std::fmt::Display) -> String {
    let text = cause.to_string();
    let disk_full = text.contains("No space left") || text.contains("os error 28");
    if disk_full {
        "ledger unavailable: disk full".to_string()
    } else {
        format!("ledger unavailable: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_join_on_one_line_and_a_full_disk_is_named() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(with_causes(&e), "outer: inner");
        let full = std::io::Error::from_raw_os_error(28);
        assert_eq!(ledger_failure(&full), "ledger unavailable: disk full");
        assert_eq!(
            ledger_failure(&"the writer stopped"),
            "ledger unavailable: the writer stopped"
        );
    }
}
