//! `lobstah doctor`: what is set up and what answers, with or without a node running.
//! It loads the configuration as the node would, builds the configured engine and asks
//! it for its models; then, when `node.json` names a running node, asks that node's
//! router and worker what they serve. Exit 1 when something checked is wrong, each
//! problem with a line saying what to do.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::node_cmds::{NodeFlags, node_deps};
use crate::core::config::{self, Config, EngineKind};
use crate::core::control::files;
use crate::core::describe;
use crate::core::engine::EngineError;
use crate::core::node::{Roles, build_engine};
use crate::core::paths::Paths;
use crate::core::protocol::wire;
use crate::core::router::ROUTER_ENDPOINTS;

/// Long enough for an engine listing its models, short enough that a doctor run on a
/// machine where nothing answers still ends at once.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What to do when a server node.json names does not answer.
const RESTART: &str = "if the node has stopped (node.json is then stale) or hangs, start it \
                       again: `lobstah --headless` or `lobstah tui`; its log says why";

/// Everything found, as `--json` prints it (the field names are stable).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    ok: bool,
    config_file: PathBuf,
    config_file_exists: bool,
    /// Null when the configuration does not load (that is then a problem).
    engine: Option<EngineCheck>,
    /// Null when no node runs on this home.
    node: Option<NodeCheck>,
    problems: Vec<Problem>,
}

#[derive(Serialize)]
struct Problem {
    what: String,
    fix: String,
}

/// The checks' shared state: one HTTP client, and the problems found so far.
struct Doctor {
    http: reqwest::Client,
    problems: Vec<Problem>,
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct EngineCheck {
    kind: String,
    url: Option<String>,
    /// Where `engine.kind` came from: default, env VAR, flag --engine, file:line.
    source: String,
    reachable: bool,
    models: Vec<String>,
    /// Null when the engine could not be set up from the configuration.
    serves_embeddings: Option<bool>,
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NodeCheck {
    pid: u32,
    pubkey: String,
    control_url: String,
    router: Option<RouterCheck>,
    worker: Option<WorkerCheck>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RouterCheck {
    url: String,
    reachable: bool,
    version: Option<String>,
    ollama_api_version: Option<String>,
    /// `/v1/models` as the router serves it: id, peers, capabilities.
    models: Vec<Value>,
    error: Option<String>,
    /// `ROUTER_ENDPOINTS` at this router: method, path, url, description.
    endpoints: Vec<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkerCheck {
    url: String,
    reachable: bool,
    #[serde(flatten)]
    capacity: Capacity,
    error: Option<String>,
}

/// What doctor reads of a worker's `/capacity`; a worker from before `capabilities`
/// was listed serves chat only, and says nothing.
#[derive(Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Capacity {
    models: Vec<String>,
    queue_depth: Option<u64>,
    concurrency: Option<u64>,
    capabilities: Vec<String>,
}

pub(super) fn run(paths: &Paths, flags: &NodeFlags, as_json: bool) -> anyhow::Result<ExitCode> {
    let report = super::runtime()?.block_on(examine(paths, flags))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, paths));
    }
    Ok(ExitCode::from(u8::from(!report.ok)))
}

async fn examine(paths: &Paths, flags: &NodeFlags) -> anyhow::Result<Report> {
    let http = reqwest::Client::builder()
        // The node's servers are local: no proxy from the environment between us.
        .no_proxy()
        .connect_timeout(PROBE_TIMEOUT)
        .timeout(PROBE_TIMEOUT)
        .build()
        .context("cannot build the HTTP client")?;
    let problems = Vec::new();
    let mut d = Doctor { http, problems };
    let config_file = config::config_file(paths);
    // A configuration that does not load is itself the finding, and the node is still
    // worth checking: so it is reported, not returned as an error.
    let engine = match Config::load(paths, &flags.overrides()) {
        Ok(config) => Some(d.engine(&config).await),
        Err(e) => {
            let fix = "fix the value named (in config.toml, a LOBSTAH_* variable or a flag); \
                       `lobstah config show` lists every setting and where it comes from";
            d.problem(format!("the configuration does not load: {e}"), fix);
            None
        }
    };
    let node = d.node(paths).await;
    Ok(Report {
        ok: d.problems.is_empty(),
        config_file_exists: config_file.exists(),
        config_file,
        engine,
        node,
        problems: d.problems,
    })
}

impl Doctor {
    fn problem(&mut self, what: String, fix: impl Into<String>) {
        let fix = fix.into();
        self.problems.push(Problem { what, fix });
    }

    async fn engine(&mut self, config: &Config) -> EngineCheck {
        let kind = config.engine.kind;
        let source = config.source("engine.kind");
        let mut check = EngineCheck {
            kind: kind.as_str().to_string(),
            url: config.engine.url.clone(),
            source: source.map_or_else(|| "default".into(), ToString::to_string),
            ..EngineCheck::default()
        };
        // The key the node would send, read where the node reads it.
        let api_key = node_deps(Roles::BOTH).engine_api_key;
        let setup = match build_engine(&config.engine, api_key) {
            Ok(setup) => setup,
            Err(e) => {
                let fix = "set engine.url in config.toml, LOBSTAH_ENGINE_URL or --engine-url";
                self.problem(format!("the engine cannot be set up: {e}"), fix);
                check.error = Some(e);
                return check;
            }
        };
        // The URL actually used: for Ollama the default comes from OLLAMA_HOST.
        check.url = setup.url.clone();
        check.serves_embeddings = Some(setup.engine.serves_embeddings());
        let error = match tokio::time::timeout(PROBE_TIMEOUT, setup.engine.list_models()).await {
            Ok(Ok(models)) => {
                check.reachable = true;
                check.models = models;
                return check;
            }
            // Said once: the report's own words already say "unreachable".
            Ok(Err(EngineError::Unreachable(detail))) => detail,
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
        };
        let at = check.url.clone().unwrap_or_default();
        let fix = match kind {
            EngineKind::Ollama => format!(
                "is Ollama running? start it with `ollama serve`; or point lobstah at it with \
                 --engine-url URL, LOBSTAH_ENGINE_URL or engine.url (now {at})"
            ),
            _ => format!(
                "is the server (llama.cpp, vLLM…) running at {at}? set its address with \
                 --engine-url URL, LOBSTAH_ENGINE_URL or engine.url; its key goes in \
                 LOBSTAH_ENGINE_API_KEY"
            ),
        };
        let what = format!("the {} engine at {at} does not answer", check.kind);
        self.problem(what, fix);
        check.error = Some(error);
        check
    }

    /// The node `node.json` names: only its public servers are asked, so no token is
    /// needed and doctor works for any user who can read the file.
    async fn node(&mut self, paths: &Paths) -> Option<NodeCheck> {
        // No node.json: no node runs here, which is a fine state to be in.
        let info = files::read_node_info(paths.data_dir())?;
        let (pid, pubkey, control_url) = (info.pid, info.pubkey, info.control_url);
        let mut check = NodeCheck {
            pid,
            pubkey,
            control_url,
            router: None,
            worker: None,
        };
        if let Some(url) = info.router_url {
            check.router = Some(self.router(url).await);
        }
        if let Some(url) = info.worker_url {
            check.worker = Some(self.worker(url).await);
        }
        Some(check)
    }

    /// `GET url` as JSON; a failure in a few words.
    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, String> {
        let transport = |e: reqwest::Error| format!("{url}: {}", describe::transport(&e));
        let response = self.http.get(url).send().await.map_err(transport)?;
        let status = response.status();
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(format!("{url} answered {status}: {}", text.trim()));
        }
        serde_json::from_str(&text).map_err(|e| format!("{url} answered something not JSON: {e}"))
    }

    /// An answer's value, or the default and the error, noted as a problem.
    fn answered<T: Default>(&mut self, of: &str, r: Result<T, String>) -> (T, Option<String>) {
        match r {
            Ok(value) => (value, None),
            Err(e) => {
                self.problem(format!("the node's {of} does not answer: {e}"), RESTART);
                (T::default(), Some(e))
            }
        }
    }

    async fn router(&mut self, url: String) -> RouterCheck {
        let endpoint = |&(method, path, description)| {
            let url = format!("{url}{path}");
            json!({"method": method, "path": path, "url": url, "description": description})
        };
        let endpoints = ROUTER_ENDPOINTS.iter().map(endpoint).collect();
        let models = self.get_json(&format!("{url}{}", wire::MODELS_PATH)).await;
        let version = self.get_json(&format!("{url}/api/version")).await;
        let answer = models.and_then(|models| version.map(|version| (models, version)));
        let ((models, version), error): ((Value, Value), _) = self.answered("router", answer);
        RouterCheck {
            url,
            reachable: error.is_none(),
            // `/api/version` answers the Ollama API level, and lobstah's own version.
            version: version["lobstah"].as_str().map(str::to_string),
            ollama_api_version: version["version"].as_str().map(str::to_string),
            models: models["data"].as_array().cloned().unwrap_or_default(),
            error,
            endpoints,
        }
    }

    async fn worker(&mut self, url: String) -> WorkerCheck {
        let capacity = format!("{url}{}", wire::CAPACITY_PATH);
        let answer = self.get_json(&capacity).await;
        let (capacity, error) = self.answered("worker", answer);
        let reachable = error.is_none();
        WorkerCheck {
            url,
            reachable,
            capacity,
            error,
        }
    }
}

fn list(items: &[String]) -> String {
    let all = items.join(", ");
    if all.is_empty() { "none".into() } else { all }
}

fn known<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "?".into(), |v| v.to_string())
}

/// ` at URL`, or nothing for an engine without one (synthetic).
fn at(url: Option<&String>) -> String {
    url.map(|u| format!(" at {u}")).unwrap_or_default()
}

// The label column of the text report, as wide as `lobstah status`'s.
const NODE: &str = "node         ";
const WORKER: &str = "  worker     ";
const ROUTER: &str = "  router     ";
const MORE: &str = "             ";

/// The text report, shaped like `lobstah status`: a label column, then the facts.
fn render(r: &Report, paths: &Paths) -> String {
    let mut l = Vec::new();
    let exists = r.config_file_exists;
    let absent = if exists { "" } else { " (absent)" };
    l.push(format!("config       {}{absent}", r.config_file.display()));
    if let Some(e) = &r.engine {
        let (kind, url, source) = (&e.kind, at(e.url.as_ref()), &e.source);
        l.push(format!("engine       {kind}{url}  (engine.kind: {source})"));
        l.push(match (&e.error, e.serves_embeddings) {
            (None, _) => format!("{MORE}reachable, models: {}", list(&e.models)),
            (Some(error), None) => format!("{MORE}NOT SET UP: {error}"),
            (Some(error), _) => format!("{MORE}UNREACHABLE: {error}"),
        });
        if let Some(embeds) = e.serves_embeddings {
            let served = if embeds { "served" } else { "not served" };
            l.push(format!("{MORE}embeddings: {served}"));
        }
    }
    l.push(String::new());
    let Some(n) = &r.node else {
        let home = paths.data_dir().display();
        let how = "start one with `lobstah --headless` (or `lobstah tui` for the console)";
        l.push(format!("{NODE}none running on {home}; {how}"));
        return finish(l, r);
    };
    let (pubkey, pid, control) = (&n.pubkey, n.pid, &n.control_url);
    l.push(format!("{NODE}{pubkey} (pid {pid}), control {control}"));
    let not_run = "-  (not run by this node)";
    match &n.worker {
        None => l.push(format!("{WORKER}{not_run}")),
        Some(w) if !w.reachable => l.push(format!("{WORKER}{}  NOT ANSWERING", w.url)),
        Some(w) => {
            let (c, url) = (&w.capacity, &w.url);
            l.push(format!("{WORKER}{url}  models: {}", list(&c.models)));
            let (depth, of) = (known(c.queue_depth), known(c.concurrency));
            let can = format!("can: {}", list(&c.capabilities));
            l.push(format!("{MORE}queue {depth} (concurrency {of}), {can}"));
        }
    }
    let Some(rt) = &n.router else {
        l.push(format!("{ROUTER}{not_run}"));
        return finish(l, r);
    };
    let base = &rt.url;
    if rt.reachable {
        let ids: Vec<String> = rt.models.iter().map(|m| known(m["id"].as_str())).collect();
        let v = known(rt.version.as_ref());
        let api = known(rt.ollama_api_version.as_ref());
        l.push(format!("{ROUTER}{base}  lobstah {v} (Ollama API {api})"));
        l.push(format!("{MORE}models: {}", list(&ids)));
    } else {
        l.push(format!("{ROUTER}{base}  NOT ANSWERING"));
    }
    l.push(format!("{MORE}OpenAI base URL {base}/v1, Ollama {base}"));
    l.push(String::new());
    l.push(format!("endpoints ({})", rt.endpoints.len()));
    for (method, path, description) in ROUTER_ENDPOINTS {
        let url = format!("{base}{path}");
        l.push(format!("  {method:<6} {url:<48} {description}"));
    }
    finish(l, r)
}

/// The verdict, and what to do about each problem.
fn finish(mut l: Vec<String>, r: &Report) -> String {
    l.push(String::new());
    if r.ok {
        l.push("ok: everything checked answers".into());
    } else {
        let s = if r.problems.len() == 1 { "" } else { "s" };
        l.push(format!("{} problem{s}:", r.problems.len()));
        for p in &r.problems {
            l.push(format!("  !! {}", p.what));
            l.push(format!("     → {}", p.fix));
        }
    }
    l.push(String::new());
    l.join("\n")
}
