//! `lobstah models`: what the router can serve now, from its `GET /v1/models`: each
//! model, how many healthy peers serve it, and what it can do.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

use crate::core::config::Config;
use crate::core::paths::Paths;

pub(super) fn run(
    paths: &Paths,
    config: anyhow::Result<Config>,
    router: Option<&str>,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let router = super::jobs_cmds::router_url(paths, router, config)?;
    let url = format!("{router}/v1/models");
    let list: Value = super::runtime()?.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?;
        let response = client.get(&url).send().await.with_context(|| {
            format!("cannot reach the router at {router} (is `lobstah router start` or the node running?)")
        })?;
        let status = response.status();
        let text = response.text().await.context("the router's answer broke off")?;
        anyhow::ensure!(status.is_success(), "the router answered {status}: {text}");
        serde_json::from_str(&text).with_context(|| format!("the router answered something that is not a model list: {text}"))
    })?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    let models = list["data"].as_array().cloned().unwrap_or_default();
    if models.is_empty() {
        println!(
            "no model is served now: no healthy peer (see `lobstah status` or `lobstah peers list`)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<40} {:>5}  can", "model", "peers");
    for m in &models {
        let can: Vec<&str> = m["capabilities"]
            .as_array()
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        println!(
            "{:<40} {:>5}  {}",
            m["id"].as_str().unwrap_or("?"),
            m["peers"].as_u64().unwrap_or(0),
            can.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
