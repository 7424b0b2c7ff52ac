//! `lobstah jobs submit|get|cancel|list`: async jobs through a router — the one `--router`
//! names, else the running node's (its `node.json`), else the configured router port on
//! this machine.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::output::utc_time;
use crate::core::config::Config;
use crate::core::control::files;
use crate::core::jobs::{JobStatus, JobView};
use crate::core::paths::Paths;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Queue a job: a chat request from a JSON file (- for stdin), or --model and --prompt.
    /// Prints the job id.
    Submit(SubmitArgs),
    /// Show a job; with --wait, poll until it has ended and print the answer.
    Get {
        /// The job id `jobs submit` printed.
        id: String,
        /// Poll until the job is done, failed or cancelled.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds (0: never).
        #[arg(long, default_value_t = 0, value_name = "SECS")]
        timeout: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Cancel a job that has not started yet.
    Cancel {
        /// The job id `jobs submit` printed.
        id: String,
        #[command(flatten)]
        target: Target,
    },
    /// The router's jobs, newest first.
    List {
        /// Only jobs in this state: queued, running, done, error or cancelled.
        #[arg(long)]
        status: Option<JobStatus>,
        /// How many jobs at most.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Args)]
pub struct Target {
    /// The router, e.g. http://127.0.0.1:17475 (default: the running node's router).
    #[arg(long, env = "LOBSTAH_ROUTER_URL", value_name = "URL")]
    pub router: Option<String>,
    /// Print the job object(s) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// A chat request as JSON (OpenAI's shape, optional "metadata"); - reads stdin.
    #[arg(conflicts_with = "prompt")]
    pub file: Option<PathBuf>,
    /// The model to ask (with --prompt).
    #[arg(long, requires = "prompt")]
    pub model: Option<String>,
    /// The user message.
    #[arg(long, requires = "model")]
    pub prompt: Option<String>,
    /// Metadata to keep with the job (repeatable): --meta batch=7 --meta item=42.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Sent as Idempotency-Key: submitting again with the same key returns the same job.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

pub(super) fn run(
    paths: &Paths,
    config: anyhow::Result<Config>,
    command: JobsCommand,
) -> anyhow::Result<ExitCode> {
    let target = match &command {
        JobsCommand::Submit(a) => &a.target,
        JobsCommand::Get { target, .. }
        | JobsCommand::Cancel { target, .. }
        | JobsCommand::List { target, .. } => target,
    };
    let router = router_url(paths, target.router.as_deref(), config)?;
    let as_json = target.json;
    super::runtime()?.block_on(async move {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        let api = Api { client, router };
        match command {
            JobsCommand::Submit(args) => submit(&api, args, as_json).await,
            JobsCommand::Get {
                id, wait, timeout, ..
            } => get(&api, &id, wait, timeout, as_json).await,
            JobsCommand::Cancel { id, .. } => cancel(&api, &id, as_json).await,
            JobsCommand::List { status, limit, .. } => list(&api, status, limit, as_json).await,
        }
    })
}

/// `--router`, else the running node's router, else the configured port on loopback.
pub(super) fn router_url(
    paths: &Paths,
    flag: Option<&str>,
    config: anyhow::Result<Config>,
) -> anyhow::Result<String> {
    if let Some(url) = flag {
        return Ok(url.trim_end_matches('/').to_string());
    }
    if let Some(url) = files::read_node_info(paths.data_dir()).and_then(|info| info.router_url) {
        return Ok(url);
    }
    let config = config?;
    let host = if config.router.host.is_unspecified() {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        config.router.host
    };
    Ok(format!(
        "http://{}",
        std::net::SocketAddr::new(host, config.router.port)
    ))
}

struct Api {
    client: reqwest::Client,
    router: String,
}

impl Api {
    /// Sends, and turns the answer into JSON or a sentence (the router's error message).
    async fn call(&self, request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the router at {} (is a node or `lobstah router start` running? --router URL)",
                self.router
            )
        })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            let message = body
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("no details");
            bail!("the router answered {status}: {message}");
        }
        Ok((status, body))
    }

    async fn job(&self, id: &str) -> anyhow::Result<(Value, JobView)> {
        let (_, body) = self
            .call(self.client.get(format!("{}/v1/jobs/{id}", self.router)))
            .await?;
        let view =
            serde_json::from_value(body.clone()).context("the router's answer is not a job")?;
        Ok((body, view))
    }
}

fn request_body(args: &SubmitArgs) -> anyhow::Result<Value> {
    let mut body = match (&args.file, &args.model, &args.prompt) {
        (Some(path), _, _) => {
            let text = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
            };
            serde_json::from_str(&text).context("the request is not valid JSON")?
        }
        (None, Some(model), Some(prompt)) => {
            json!({"model": model, "messages": [{"role": "user", "content": prompt}]})
        }
        _ => bail!("give a request file (or - for stdin), or --model and --prompt"),
    };
    let Some(object) = body.as_object_mut() else {
        bail!("the request must be a JSON object");
    };
    if !args.meta.is_empty() {
        let metadata = object
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(metadata) = metadata.as_object_mut() else {
            bail!("the request's \"metadata\" is not an object");
        };
        for pair in &args.meta {
            let Some((key, value)) = pair.split_once('=') else {
                bail!("--meta {pair:?}: expected KEY=VALUE");
            };
            metadata.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
    Ok(body)
}

async fn submit(api: &Api, args: SubmitArgs, as_json: bool) -> anyhow::Result<ExitCode> {
    let body = request_body(&args)?;
    let mut request = api
        .client
        .post(format!("{}/v1/jobs", api.router))
        .json(&body);
    if let Some(key) = &args.key {
        request = request.header(crate::core::jobs::IDEMPOTENCY_HEADER, key);
    }
    let (status, job) = api.call(request).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&job)?);
        return Ok(ExitCode::SUCCESS);
    }
    let id = job["id"]
        .as_str()
        .context("the router's answer has no job id")?;
    println!("{id}");
    let how = if status == 200 {
        "already submitted with this key"
    } else {
        "queued"
    };
    eprintln!("{how}; follow it with: lobstah jobs get {id} --wait");
    Ok(ExitCode::SUCCESS)
}

async fn get(
    api: &Api,
    id: &str,
    wait: bool,
    timeout: u64,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let until = (timeout > 0).then(|| tokio::time::Instant::now() + Duration::from_secs(timeout));
    let mut pause = Duration::from_millis(250);
    let (body, view) = loop {
        let (body, view) = api.job(id).await?;
        if !wait || view.status.is_terminal() {
            break (body, view);
        }
        if until.is_some_and(|u| tokio::time::Instant::now() >= u) {
            eprintln!("job {id} is still {} after {timeout} s", view.status);
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        println!("{}", summary(&view));
        if let Some(text) = view.answer_text() {
            println!("{text}");
        }
        if let Some(e) = &view.error {
            println!("{}: {}", e.kind, e.message);
        }
    }
    Ok(match view.status {
        JobStatus::Error | JobStatus::Cancelled => ExitCode::FAILURE,
        _ => ExitCode::SUCCESS,
    })
}

/// `job ID done · model · served by lob1… · 12 tokens credited`
fn summary(v: &JobView) -> String {
    let mut out = format!("job {} {} · {}", v.id, v.status, v.model);
    if let Some(peer) = &v.served_by {
        out.push_str(&format!(
            " · served by {}…",
            peer.chars().take(12).collect::<String>()
        ));
    }
    if let Some(r) = &v.receipt {
        out.push_str(&format!(" · {} tokens {}", r.tokens, r.status));
        if let Some(reason) = &r.reason {
            out.push_str(&format!(" ({reason})"));
        }
    }
    out
}

async fn cancel(api: &Api, id: &str, as_json: bool) -> anyhow::Result<ExitCode> {
    let (_, body) = api
        .call(api.client.delete(format!("{}/v1/jobs/{id}", api.router)))
        .await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        println!("job {id} cancelled");
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(
    api: &Api,
    status: Option<JobStatus>,
    limit: usize,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let mut url = format!("{}/v1/jobs?limit={limit}", api.router);
    if let Some(s) = status {
        url.push_str(&format!("&status={s}"));
    }
    let (_, body) = api.call(api.client.get(url)).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let jobs: Vec<JobView> = serde_json::from_value(body["data"].clone())
        .context("the router's answer is not a job list")?;
    if jobs.is_empty() {
        println!("no jobs");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<36}  {:<9}  {:<20}  {:<16}  {:<14}  metadata",
        "id", "status", "created", "model", "served by"
    );
    for j in jobs {
        let served = j
            .served_by
            .as_deref()
            .map(|p| p.chars().take(12).collect::<String>() + "…")
            .unwrap_or_else(|| "-".into());
        let metadata: Vec<String> = j.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{:<36}  {:<9}  {:<20}  {:<16}  {:<14}  {}",
            j.id,
            j.status.as_str(),
            utc_time(j.created_at),
            j.model.chars().take(16).collect::<String>(),
            served,
            metadata.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        file: Option<&str>,
        model: Option<&str>,
        prompt: Option<&str>,
        meta: &[&str],
    ) -> SubmitArgs {
        SubmitArgs {
            file: file.map(PathBuf::from),
            model: model.map(str::to_string),
            prompt: prompt.map(str::to_string),
            meta: meta.iter().map(|m| m.to_string()).collect(),
            key: None,
            target: Target {
                router: None,
                json: false,
            },
        }
    }

    #[test]
    fn bodies_from_flags_and_files_with_metadata() {
        let body =
            request_body(&args(None, Some("m"), Some("hi"), &["batch=7", "note=a=b"])).unwrap();
        assert_eq!(body["messages"][0]["content"], "hi");
        assert_eq!(body["metadata"], json!({"batch": "7", "note": "a=b"}));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.json");
        std::fs::write(
            &file,
            r#"{"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"a":"1"}}"#,
        )
        .unwrap();
        let body = request_body(&args(file.to_str(), None, None, &["b=2"])).unwrap();
        assert_eq!(body["metadata"], json!({"a": "1", "b": "2"}));
        for (bad, needle) in [
            (args(None, None, None, &[]), "request file"),
            (args(None, Some("m"), Some("x"), &["novalue"]), "KEY=VALUE"),
        ] {
            let err = request_body(&bad).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
