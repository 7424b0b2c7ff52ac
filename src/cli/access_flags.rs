//! Who may use the servers. The worker's access flags (who is served and how much),
//! shared by `lobstah` (the node) and `lobstah worker start`, feed the `access.*`
//! settings; the browser flags (which web pages, by which Host names), shared by every
//! command that serves, feed `browser.*`. Both beat the environment and config.toml like
//! every other flag.

use clap::Args;

use crate::core::config::Overrides;

#[derive(Debug, Clone, Default, Args)]
pub struct AccessFlags {
    /// Refuse unsigned requests (routers that do not sign) instead of serving them a
    /// small anonymous quota.
    #[arg(long)]
    pub require_signed: bool,
    /// Serve only these requester keys (repeatable or comma-separated): friends.
    #[arg(long = "serve-only", value_name = "PUBKEY", value_delimiter = ',')]
    pub serve_only: Vec<String>,
    /// Serve this requester key without credit checks (repeatable): your own machines.
    #[arg(long = "trust", value_name = "PUBKEY", value_delimiter = ',')]
    pub trust: Vec<String>,
    /// Tokens a requester may leave unconfirmed here before it is refused (0: no cap).
    #[arg(long, value_name = "TOKENS")]
    pub max_unconfirmed_tokens: Option<String>,
    /// Requests one requester may have in flight here (0: no limit).
    #[arg(long, value_name = "N")]
    pub per_requester_concurrency: Option<String>,
    /// Requests one requester may start per minute (0: no limit).
    #[arg(long, value_name = "N")]
    pub per_requester_per_minute: Option<String>,
    /// Tokens all unsigned requests together may use per hour (0: refuse them).
    #[arg(long, value_name = "TOKENS")]
    pub anonymous_tokens_per_hour: Option<String>,
}

impl AccessFlags {
    pub fn apply(&self, o: &mut Overrides) {
        if self.require_signed {
            o.set("access.require_signed", "--require-signed", "true");
        }
        if !self.serve_only.is_empty() {
            o.set(
                "access.serve_only",
                "--serve-only",
                self.serve_only.join(","),
            );
        }
        if !self.trust.is_empty() {
            o.set("access.trusted", "--trust", self.trust.join(","));
        }
        let text = [
            (
                "access.max_unconfirmed_tokens",
                "--max-unconfirmed-tokens",
                &self.max_unconfirmed_tokens,
            ),
            (
                "access.per_requester_concurrency",
                "--per-requester-concurrency",
                &self.per_requester_concurrency,
            ),
            (
                "access.per_requester_per_minute",
                "--per-requester-per-minute",
                &self.per_requester_per_minute,
            ),
            (
                "access.anonymous_tokens_per_hour",
                "--anonymous-tokens-per-hour",
                &self.anonymous_tokens_per_hour,
            ),
        ];
        for (key, flag, value) in text {
            if let Some(v) = value {
                o.set(key, flag, v);
            }
        }
    }
}

/// Which web pages may use a server; programs that send no Origin are not affected.
#[derive(Debug, Clone, Default, Args)]
pub struct BrowserFlags {
    /// Web origins whose pages may call this server, e.g. http://localhost:3000
    /// (repeatable or comma-separated; * for any). Default: none.
    #[arg(long = "allowed-origins", value_name = "ORIGIN", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Host names a loopback server answers to beside localhost and loopback addresses
    /// (repeatable or comma-separated), e.g. a name this machine has on the LAN.
    #[arg(long = "allowed-hosts", value_name = "HOST", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
}

impl BrowserFlags {
    pub fn apply(&self, o: &mut Overrides) {
        if !self.allowed_origins.is_empty() {
            o.set(
                "browser.allowed_origins",
                "--allowed-origins",
                self.allowed_origins.join(","),
            );
        }
        if !self.allowed_hosts.is_empty() {
            o.set(
                "browser.allowed_hosts",
                "--allowed-hosts",
                self.allowed_hosts.join(","),
            );
        }
    }
}
