//! Talking to a worker the way a router does, or pretending to: signed requests with any
//! identity and any claimed requester, unsigned ones, replays of a request as sent, and
//! confirmations.

use lobstah::core::protocol::{
    Confirmation, ConfirmedReceipt, Identity, PublicKey, RequestAuth, RequestTarget,
    SignedConfirmation, SignedReceipt,
};
use serde_json::Value;

/// One request as it went out, so a test can send it again byte for byte.
#[derive(Clone)]
pub struct Sent {
    pub method: reqwest::Method,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Sent {
    /// A POST of `body` to `path` on `worker`, signed by `signer` (or unsigned when
    /// `None`), naming `claimed` as requester.
    pub fn post(
        path: &str,
        body: &Value,
        worker: &PublicKey,
        signer: Option<&Identity>,
        claimed: &PublicKey,
        now_ms: u64,
    ) -> Sent {
        let body = serde_json::to_vec(body).expect("body");
        Sent::new(
            reqwest::Method::POST,
            path,
            body,
            worker,
            signer,
            claimed,
            now_ms,
        )
    }

    /// A GET or DELETE of `path`, with no body; otherwise as `post`.
    pub fn bodiless(
        method: reqwest::Method,
        path: &str,
        worker: &PublicKey,
        signer: Option<&Identity>,
        claimed: &PublicKey,
        now_ms: u64,
    ) -> Sent {
        Sent::new(method, path, Vec::new(), worker, signer, claimed, now_ms)
    }

    fn new(
        method: reqwest::Method,
        path: &str,
        body: Vec<u8>,
        worker: &PublicKey,
        signer: Option<&Identity>,
        claimed: &PublicKey,
        now_ms: u64,
    ) -> Sent {
        let mut headers = vec![("x-lobstah-requester".to_string(), claimed.to_string())];
        if !body.is_empty() {
            headers.push(("content-type".to_string(), "application/json".to_string()));
        }
        if let Some(signer) = signer {
            let auth = RequestAuth::sign(
                signer,
                RequestTarget {
                    method: method.as_str(),
                    path,
                    body: &body,
                    worker,
                },
                now_ms,
            );
            headers.extend(
                auth.header_values()
                    .into_iter()
                    .map(|(n, v)| (n.to_string(), v)),
            );
        }
        Sent {
            method,
            path: path.to_string(),
            headers,
            body,
        }
    }

    pub async fn send(&self, client: &reqwest::Client, base: &str) -> reqwest::Response {
        let mut request = client.request(self.method.clone(), format!("{base}{}", self.path));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        request
            .body(self.body.clone())
            .send()
            .await
            .expect("request reaches the worker")
    }
}

/// The receipt in a whole answer's header.
pub fn receipt_of(response: &reqwest::Response) -> SignedReceipt {
    let header = response
        .headers()
        .get("x-lobstah-receipt")
        .expect("a receipt header")
        .to_str()
        .expect("ASCII");
    SignedReceipt::from_base64(header).expect("a receipt")
}

/// `requester`'s signed confirmation of `receipts` for `worker`.
pub fn confirmation(
    requester: &Identity,
    worker: PublicKey,
    receipts: &[&SignedReceipt],
    now_ms: u64,
) -> SignedConfirmation {
    SignedConfirmation::sign(
        Confirmation {
            version: 1,
            requester_pubkey: requester.public(),
            worker_pubkey: worker,
            confirmed_at: now_ms,
            receipts: receipts.iter().map(|r| ConfirmedReceipt::of(r)).collect(),
        },
        requester,
    )
    .expect("sign a confirmation")
}

/// The error type of an OpenAI-shaped error answer.
pub async fn error_type(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let kind = body
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    (status, kind)
}
