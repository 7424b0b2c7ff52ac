//! Signing what the router sends to workers: every request carries our requester key and
//! a signature over its method, path, body, the worker it is for, a timestamp and a
//! nonce (see `protocol::request_auth`), so a worker can tell us from someone naming us.
//! A request a peer link carries is not signed: the link's handshake proved who we are.
//! A chat request there carries our tag instead (`protocol::link_tag`), which is all a
//! signature was still needed for.

use reqwest::{Method, RequestBuilder, Url};

use super::service::RouterService;
use crate::core::peers::LINK_HOST;
use crate::core::protocol::wire::{REQUEST_TAG_HEADER, REQUESTER_HEADER};
use crate::core::protocol::{PublicKey, RequestProof, RequestTarget};

impl RouterService {
    /// A request to `peer` at `url` (text), signed over `body`.
    pub(crate) fn signed_request(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: &str,
        peer: &PublicKey,
        body: &[u8],
    ) -> RequestBuilder {
        match Url::parse(url) {
            Ok(parsed) => self.signed_request_to(client, method, parsed, peer, body),
            // reqwest reports the bad URL when the request is sent.
            Err(_) => client.request(method, url),
        }
    }

    /// A request to `peer` at an already parsed `url`, signed over `body`.
    pub(crate) fn signed_request_to(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: Url,
        peer: &PublicKey,
        body: &[u8],
    ) -> RequestBuilder {
        if over_link(&url) {
            return client.request(method, url);
        }
        self.signed_request_proved(client, method, url, peer, body)
            .0
    }

    /// [`RouterService::signed_request_to`], with the proof of what was signed: the
    /// receipt that answers the request is ledgered against it, so no second receipt
    /// for the same request is ever taken (see `reconcile`).
    pub(crate) fn signed_request_proved(
        &self,
        client: &reqwest::Client,
        method: Method,
        url: Url,
        peer: &PublicKey,
        body: &[u8],
    ) -> (RequestBuilder, RequestProof) {
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let target = RequestTarget {
            method: method.as_str(),
            path: &path,
            body,
            worker: peer,
        };
        if over_link(&url) {
            let (tag, proof) = RequestProof::tag(&self.config.identity, target, self.now_ms());
            let builder = client
                .request(method, url)
                .header(REQUEST_TAG_HEADER, tag.header_value());
            return (builder, proof);
        }
        let (auth, proof) = RequestProof::sign(&self.config.identity, target, self.now_ms());
        let mut builder = client
            .request(method, url)
            .header(REQUESTER_HEADER, self.requester_header.clone());
        for (name, value) in auth.header_values() {
            builder = builder.header(name, value);
        }
        (builder, proof)
    }
}

/// Whether `url` goes onto a peer link (the bridge's clients are the only ones given it).
fn over_link(url: &Url) -> bool {
    url.host_str() == Some(LINK_HOST)
}
