//! What a web page in the user's browser may do with a lobstah listener. Every server
//! runs this check before any other (so a refused request never reaches a handler, and
//! nothing is billed or ledgered for it):
//!
//! - Host (loopback listeners only): a request must be addressed to a loopback name or
//!   address (`localhost`, `*.localhost`, `127.x.y.z`, `[::1]`, any port) or to a name
//!   in `allowed-hosts`. A foreign Host is how DNS rebinding reaches 127.0.0.1: the page
//!   is same-origin with the rebound name, so Origin alone does not catch its GETs.
//! - Origin: a request that carries one (browsers add it to cross-site requests and to
//!   every POST) is refused unless the origin is in `allowed-origins` (`*`: any) or is
//!   the listener's own loopback origin. Allowed origins get CORS answers: preflights
//!   204 with the allow headers, other answers `Access-Control-Allow-Origin`.
//! - Content type: a body sent with POST/PUT/PATCH/DELETE under a Content-Type that is
//!   not JSON is refused 415. `text/plain` and form types are what a page may send
//!   cross-site without a preflight; no lobstah endpoint takes them. A body without a
//!   Content-Type is still served: existing network clients and some SDKs omit it, and a
//!   browser always names one for a body.
//!
//! Other loopback origins (a page from any local web server) are not allowed by default,
//! unlike Ollama's: the router spends credits with no credential, and a local dev server
//! or notebook that renders untrusted pages would get to spend them. Programs (SDKs,
//! curl, agents) send no Origin and a loopback Host, so none of this touches them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::core::api_error::ApiError;

/// The operator's allow-lists, shared by every listener of a process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrowserPolicy {
    /// Origins (`scheme://host[:port]`, normalized by [`normalize_origin`]) whose pages
    /// may use the listener; `*` allows any.
    pub allowed_origins: Vec<String>,
    /// Host names (lower case, no port) a loopback listener answers to beside loopback
    /// ones, e.g. a name for this machine on the LAN; `*` allows any.
    pub allowed_hosts: Vec<String>,
}

/// Headers a page may send: those lobstah reads, plus whatever the preflight asks for
/// (browser SDKs add their own), since the origin is one the operator allowed.
const ALLOW_HEADERS: &str = "authorization, content-type, last-event-id, x-lobstah-requester, \
     x-lobstah-timestamp, x-lobstah-nonce, x-lobstah-signature, x-lobstah-job-id";
/// Answer headers a page may read (a receipt is what it pays for).
const EXPOSE_HEADERS: &str =
    "x-lobstah-receipt, x-lobstah-served-by, x-lobstah-job-id, retry-after";
const ALLOW_METHODS: &str = "GET, POST, DELETE, OPTIONS";
const MAX_AGE_SECS: &str = "600";

/// The policy as one listener applies it.
#[derive(Debug, Clone)]
pub(super) struct Browser {
    policy: Arc<BrowserPolicy>,
    /// Bound to a loopback address. Only then is Host checked: peers reach a worker or
    /// a tracker on the network by whatever IP or name they know it by, which it cannot
    /// list, and what a rebinding page gains there any host on that network has anyway.
    loopback: bool,
    port: u16,
}

impl Browser {
    pub(super) fn new(policy: BrowserPolicy, bound: SocketAddr) -> Self {
        Browser {
            policy: Arc::new(policy),
            loopback: bound.ip().to_canonical().is_loopback(),
            port: bound.port(),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        let Some(name) = host_name(host) else {
            return false;
        };
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        is_loopback_name(&name)
            || self
                .policy
                .allowed_hosts
                .iter()
                .any(|h| h == "*" || *h == name)
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        if self.policy.allowed_origins.iter().any(|o| o == "*") {
            return true;
        }
        let Ok(normal) = normalize_origin(origin) else {
            return false;
        };
        self.policy.allowed_origins.contains(&normal) || self.is_own_origin(&normal)
    }

    /// `http://<loopback>:<our port>`: a page only this listener could have served, and
    /// it serves no pages, only JSON.
    fn is_own_origin(&self, normal: &str) -> bool {
        let Ok(url) = url::Url::parse(normal) else {
            return false;
        };
        let host = url.host_str().unwrap_or("");
        self.loopback
            && url.scheme() == "http"
            && url.port_or_known_default() == Some(self.port)
            && is_loopback_name(host.trim_start_matches('[').trim_end_matches(']'))
    }
}

/// An origin as compared: `scheme://host[:port]`, lower case, default port dropped, no
/// path. `*` and `null` (sandboxed frames, files) are kept as they are.
pub fn normalize_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text == "*" || text == "null" {
        return Ok(text.to_string());
    }
    let url = url::Url::parse(text).map_err(|e| format!("{text:?} is not an origin: {e}"))?;
    let origin = url.origin();
    if !origin.is_tuple() {
        return Err(format!(
            "{text:?} is not an origin such as http://localhost:3000"
        ));
    }
    Ok(origin.ascii_serialization())
}

/// A host name for `allowed-hosts`: lower case, without port or trailing dot.
pub fn normalize_host(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text == "*" {
        return Ok(text.into());
    }
    let name = host_name(text)
        .filter(|n| !n.is_empty() && !n.contains(['/', '@', ' ']))
        .ok_or_else(|| format!("{text:?} is not a host name such as my-mac.lan"))?;
    Ok(name.trim_end_matches('.').to_ascii_lowercase())
}

/// The name part of a Host value (`name`, `name:port`, `[v6]:port`), brackets removed.
fn host_name(host: &str) -> Option<&str> {
    let is_port = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        return (after.is_empty() || after.strip_prefix(':').is_some_and(is_port))
            .then_some(inside);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => is_port(port).then_some(name),
        // An IPv6 address must come in brackets.
        Some(_) => None,
        None => Some(host),
    }
}

fn is_loopback_name(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// `application/json` or any `…/…+json`, parameters allowed.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .split_once('/')
            .is_some_and(|(kind, sub)| !kind.is_empty() && sub.len() > 5 && sub.ends_with("+json"))
}

/// A body is on its way: chunked, or a length other than zero.
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes().trim_ascii() != b"0")
}

/// Why a request is refused, if it is.
fn refusal(b: &Browser, request: &Request) -> Option<ApiError> {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string())
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    if b.loopback
        && let Some(host) = host
        && !b.host_allowed(&host)
    {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            "forbidden_host",
            format!(
                "Host {host:?} is not this machine: this listener is on loopback and answers only requests addressed to localhost or a loopback address (a foreign Host is how DNS rebinding reaches it); add the name to allowed-hosts to serve it"
            ),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("\u{fffd}");
        if !b.origin_allowed(origin) {
            return Some(refuse(
                StatusCode::FORBIDDEN,
                "forbidden_origin",
                format!(
                    "requests from web pages at {origin:?} are not allowed here: add the origin to allowed-origins (--allowed-origins, LOBSTAH_ALLOWED_ORIGINS) to let its pages use this server"
                ),
            ));
        }
    }
    let writes = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let content_type = headers.get(header::CONTENT_TYPE);
    if writes
        && has_body(headers)
        && let Some(ct) = content_type
        && !ct.to_str().is_ok_and(is_json)
    {
        let shown = String::from_utf8_lossy(ct.as_bytes()).into_owned();
        return Some(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body is sent as {shown:?}, which is not JSON: send content-type: application/json"
            ),
        ));
    }
    None
}

/// In OpenAI's shape, with the kebab-case `reason` the tracker's clients act on.
fn refuse(status: StatusCode, kind: &'static str, message: String) -> ApiError {
    ApiError::new(status, kind, message).with_extra("reason", Value::String(kind.replace('_', "-")))
}

pub(super) async fn browser(State(b): State<Browser>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    if let Some(error) = refusal(&b, &request) {
        tracing::debug!(
            kind = error.kind,
            path = request.uri().path(),
            "browser check refused a request"
        );
        let mut response = error.into_response();
        // The body, if any, is left unread; it must not be taken for the next request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        if let Some(origin) = origin.filter(|o| o.to_str().is_ok_and(|o| b.origin_allowed(o))) {
            allow(response.headers_mut(), origin);
        }
        return response;
    }
    let Some(origin) = origin else {
        return next.run(request).await;
    };
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let asked = request.headers();
        let h = response.headers_mut();
        allow(h, origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(ALLOW_METHODS),
        );
        let headers = match asked.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            Some(more) => HeaderValue::from_bytes(
                &[ALLOW_HEADERS.as_bytes(), b", ", more.as_bytes()].concat(),
            )
            .unwrap_or(HeaderValue::from_static(ALLOW_HEADERS)),
            None => HeaderValue::from_static(ALLOW_HEADERS),
        };
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, headers);
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static(MAX_AGE_SECS),
        );
        // Chrome's Private Network Access: a public page asking for a loopback server.
        if asked.contains_key("access-control-request-private-network") {
            h.insert(
                "access-control-allow-private-network",
                HeaderValue::from_static("true"),
            );
        }
        h.append(
            header::VARY,
            HeaderValue::from_static(
                "access-control-request-method, access-control-request-headers",
            ),
        );
        return response;
    }
    let mut response = next.run(request).await;
    allow(response.headers_mut(), origin);
    response
}

fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE_HEADERS),
    );
    headers.append(header::VARY, HeaderValue::from_static("origin"));
}

#[cfg(test)]
mod tests;
