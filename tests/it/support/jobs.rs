//! Helpers for the job tests: request bodies, the three calls, and waiting for a job to
//! reach a state with a hard deadline.

use std::time::Duration;

use serde_json::{Value, json};

pub fn job_body(model: &str, text: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": 8,
        "messages": [{"role": "user", "content": text}],
        "metadata": {"text": text},
    })
}

/// `POST {url}/v1/jobs`, with a requester header (for a worker) and an idempotency key.
pub async fn submit(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    requester: Option<&str>,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = client.post(format!("{url}/v1/jobs")).json(body);
    if let Some(r) = requester {
        req = req.header("x-lobstah-requester", r);
    }
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let r = req.send().await.expect("submit");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn get(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    requester: Option<&str>,
) -> (u16, Value) {
    let mut req = client.get(format!("{url}/v1/jobs/{id}"));
    if let Some(r) = requester {
        req = req.header("x-lobstah-requester", r);
    }
    let r = req.send().await.expect("get");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub async fn cancel(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    requester: Option<&str>,
) -> (u16, Value) {
    let mut req = client.delete(format!("{url}/v1/jobs/{id}"));
    if let Some(r) = requester {
        req = req.header("x-lobstah-requester", r);
    }
    let r = req.send().await.expect("cancel");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Polls `GET /v1/jobs/{id}` until its status is `status` (panics after `deadline`).
pub async fn wait_for(
    client: &reqwest::Client,
    url: &str,
    id: &str,
    requester: Option<&str>,
    status: &str,
    deadline: Duration,
) -> Value {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let (code, job) = get(client, url, id, requester).await;
        if code == 200 && job["status"] == status {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "job {id} never became {status}: {code} {job}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
