//! Precedence (flag > env > file > default), sources, and the errors a bad config.toml
//! gives.

use std::collections::HashMap;
use std::path::Path;

use super::*;

fn resolve(file: &str, env: &[(&str, &str)], flags: &[(&'static str, &str, &str)]) -> Config {
    try_resolve(file, env, flags).unwrap_or_else(|e| panic!("{e}"))
}

fn try_resolve(
    file: &str,
    env: &[(&str, &str)],
    flags: &[(&'static str, &str, &str)],
) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CONFIG_FILE);
    std::fs::write(&path, file).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut overrides = Overrides::default();
    for (key, flag, value) in flags {
        overrides.set(key, flag, value);
    }
    let layers = Layers::read(&path, |var| env.get(var).cloned(), &overrides)?;
    Config::resolve(&layers).map(|c| {
        // Sources name the temporary file; keep only its name so cases compare.
        let entries = c
            .entries
            .iter()
            .cloned()
            .map(|mut e| {
                if let Source::File { line, .. } = e.source {
                    e.source = Source::File {
                        path: CONFIG_FILE.into(),
                        line,
                    };
                }
                e
            })
            .collect();
        Config { entries, ..c }
    })
}

fn file_at(line: usize) -> Source {
    Source::File {
        path: CONFIG_FILE.into(),
        line,
    }
}

fn env(var: &str) -> Source {
    Source::Env { var: var.into() }
}

fn flag(f: &str) -> Source {
    Source::Flag { flag: f.into() }
}

#[test]
fn precedence_table() {
    let file = "[router]\nport = 1001\n\n[worker]\nport = 1002\nconcurrency = 7\n[engine]\nkind = \"synthetic\"\n";
    let env_vars = [
        ("LOBSTAH_ROUTER_PORT", "2001"),
        ("LOBSTAH_WORKER_CONCURRENCY", "9"),
        ("LOBSTAH_CONTROL_PORT", "2003"),
    ];
    let flags = [("router.port", "--router-port", "3001")];
    let c = resolve(file, &env_vars, &flags);
    // (key, value, source): one row per layer winning.
    let cases: [(&str, serde_json::Value, Source); 6] = [
        ("router.port", 3001.into(), flag("--router-port")),
        (
            "worker.concurrency",
            9.into(),
            env("LOBSTAH_WORKER_CONCURRENCY"),
        ),
        ("control.port", 2003.into(), env("LOBSTAH_CONTROL_PORT")),
        ("worker.port", 1002.into(), file_at(5)),
        ("engine.kind", "synthetic".into(), file_at(8)),
        ("worker.max_queue", 64.into(), Source::Default),
    ];
    for (key, value, source) in cases {
        let entry = c.entries().iter().find(|e| e.key == key).unwrap();
        assert_eq!((&entry.value, &entry.source), (&value, &source), "{key}");
    }
    assert_eq!(c.router.port, 3001);
    assert_eq!(c.worker.concurrency, 9);
    assert_eq!(c.worker.port, 1002);
    assert_eq!(c.engine.kind, EngineKind::Synthetic);
    assert_eq!(c.control_port, 2003);
}

#[test]
fn defaults_are_the_documented_ones_and_every_key_is_shown() {
    let c = Config::defaults();
    assert_eq!(c.router.host.to_string(), "127.0.0.1");
    assert_eq!(
        (c.router.port, c.worker.port, c.control_port),
        (17475, 17474, 17477)
    );
    assert_eq!(
        (c.worker.concurrency, c.worker.max_queue, c.worker.max_jobs),
        (4, 64, 1_000)
    );
    assert_eq!(c.worker.max_output_tokens, 4_096);
    assert!(!c.advertise.enabled, "advertising is opt-in");
    assert!(c.trackers.is_empty());
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.shutdown_grace_secs, 10);
    assert_eq!(c.ledger_cache_mib, 8);
    let keys: Vec<&str> = c.entries().iter().map(|e| e.key).collect();
    let listed: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
    assert_eq!(keys, listed);
    assert!(c.entries().iter().all(|e| e.source == Source::Default));
}

#[test]
fn value_forms_from_each_layer() {
    let file = "[discovery]\ntrackers = [\"http://t1.example:17476/\", \"https://t2.example\"]\n[advertise]\nenabled = true\nlabel = \"  my mac \"\n[engine]\nsynthetic_rate = 2.5\n";
    let c = resolve(file, &[("LOBSTAH_ENGINE_SYNTHETIC_MODELS", "a, b,,c")], &[]);
    assert_eq!(
        c.trackers,
        ["http://t1.example:17476", "https://t2.example"]
    );
    assert!(c.advertise.enabled);
    assert_eq!(c.advertise.label.as_deref(), Some("my mac"));
    assert_eq!(c.engine.synthetic_rate, 2.5);
    assert_eq!(c.engine.synthetic_models, ["a", "b", "c"]);
    let c = resolve(
        "",
        &[
            ("LOBSTAH_ADVERTISE", "off"),
            ("LOBSTAH_TRACKERS", "http://t"),
        ],
        &[],
    );
    assert!(!c.advertise.enabled);
    assert_eq!(c.trackers, ["http://t"]);
    // An empty variable is unset, not an error.
    let c = resolve("[router]\nport = 5\n", &[("LOBSTAH_ROUTER_PORT", "")], &[]);
    assert_eq!(c.router.port, 5);
}

#[test]
fn bad_config_errors_name_file_line_and_key() {
    let cases = [
        (
            "[router]\nport = \"abc\"\n",
            "config.toml:2",
            "`router.port`",
            "not a whole number",
        ),
        (
            "[router]\n\nport = 70000\n",
            "config.toml:3",
            "`router.port`",
            "out of range",
        ),
        (
            "[router]\nprot = 1\n",
            "config.toml:2",
            "router.prot",
            "unknown setting",
        ),
        ("port = 1\n", "config.toml:1", "`port`", "unknown setting"),
        (
            "[worker]\ntier = \"fast\"\n",
            "config.toml:2",
            "`worker.tier`",
            "unknown tier",
        ),
        (
            "[worker]\nconcurrency = 0\n",
            "config.toml:2",
            "`worker.concurrency`",
            "at least 1",
        ),
        ("[router]\nport = \n", "config.toml:2", "not valid TOML", ""),
        (
            "[discovery]\ntrackers = [1]\n",
            "config.toml:2",
            "`discovery.trackers`",
            "list of text",
        ),
        (
            "[discovery]\ntrackers = [\"ftp://x\"]\n",
            "config.toml:2",
            "`discovery.trackers`",
            "not an http(s) URL",
        ),
        (
            "[advertise]\nttl_secs = 7200\n",
            "config.toml:2",
            "`advertise.ttl_secs`",
            "over the 3600 s",
        ),
        (
            "[discovery]\nblock_private_addrs = \"yes please\"\n",
            "config.toml:2",
            "`discovery.block_private_addrs`",
            "",
        ),
        (
            "[router]\nhost = \"localhost\"\n",
            "config.toml:2",
            "`router.host`",
            "not an IP address",
        ),
    ];
    for (file, at, key, message) in cases {
        let err = try_resolve(file, &[], &[]).unwrap_err().to_string();
        assert!(err.contains(at), "{file:?}: {err}");
        assert!(err.contains(key), "{file:?}: {err}");
        assert!(err.contains(message), "{file:?}: {err}");
    }
    let err = try_resolve("", &[("LOBSTAH_WORKER_PORT", "x")], &[]).unwrap_err();
    assert!(err.to_string().contains("env LOBSTAH_WORKER_PORT"), "{err}");
    let err = try_resolve("", &[], &[("log.format", "--log-format", "xml")]).unwrap_err();
    assert!(err.to_string().contains("flag --log-format"), "{err}");
}

#[test]
fn a_missing_file_is_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let layers = Layers::read(
        &dir.path().join("nope.toml"),
        |_| None,
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(Config::resolve(&layers).unwrap(), Config::defaults());
    let paths = crate::core::paths::Paths::in_dir(Path::new("/x"));
    assert_eq!(config_file(&paths), Path::new("/x/config.toml"));
}

#[test]
fn discovery_policy_from_env_and_defaults() {
    let c = try_resolve("", &[], &[]).unwrap();
    assert_eq!(c.discovery.url_policy, UrlPolicy::default());
    assert_eq!(
        c.discovery.sync_every_secs, 0,
        "periodic sync is off by default"
    );
    let c = try_resolve(
        "[discovery]\nsync_every_secs = 600\n",
        &[("LOBSTAH_BLOCK_PRIVATE_ADDRS", "1")],
        &[],
    )
    .unwrap();
    assert!(c.discovery.url_policy.block_private);
    assert!(!c.discovery.url_policy.allow_local);
    assert_eq!(c.discovery.sync_every_secs, 600);
}

#[test]
fn browser_allow_lists_from_each_layer() {
    let c = Config::defaults();
    assert!(
        c.browser.allowed_origins.is_empty(),
        "no page is allowed by default"
    );
    assert!(c.browser.allowed_hosts.is_empty());
    let file = "[browser]\nallowed_origins = [\"http://LOCALHOST:3000/\", \"null\"]\nallowed_hosts = [\"Box.lan\"]\n";
    let c = resolve(file, &[], &[]);
    assert_eq!(c.browser.allowed_origins, ["http://localhost:3000", "null"]);
    assert_eq!(c.browser.allowed_hosts, ["box.lan"]);
    let c = resolve(
        file,
        &[(
            "LOBSTAH_ALLOWED_ORIGINS",
            "https://ui.example, http://127.0.0.1:8080",
        )],
        &[("browser.allowed_hosts", "--allowed-hosts", "a.lan,b.lan:80")],
    );
    assert_eq!(
        c.browser.allowed_origins,
        ["https://ui.example", "http://127.0.0.1:8080"]
    );
    assert_eq!(c.browser.allowed_hosts, ["a.lan", "b.lan"]);
    let err = try_resolve("", &[("LOBSTAH_ALLOWED_ORIGINS", "localhost:3000")], &[]).unwrap_err();
    assert!(
        err.to_string().contains("env LOBSTAH_ALLOWED_ORIGINS"),
        "{err}"
    );
    let err = try_resolve(
        "",
        &[],
        &[("browser.allowed_hosts", "--allowed-hosts", "http://x")],
    )
    .unwrap_err();
    assert!(err.to_string().contains("flag --allowed-hosts"), "{err}");
}

#[test]
fn the_output_cap_comes_from_each_layer_and_is_never_zero() {
    let file = "[worker]\nmax_output_tokens = 1000\n";
    assert_eq!(resolve(file, &[], &[]).worker.max_output_tokens, 1_000);
    let env = [("LOBSTAH_WORKER_MAX_OUTPUT_TOKENS", "2000")];
    assert_eq!(resolve(file, &env, &[]).worker.max_output_tokens, 2_000);
    let zero = "[worker]\nmax_output_tokens = 0\n";
    assert!(
        try_resolve(zero, &[], &[]).is_err(),
        "a cap of 0 would refuse every request"
    );
}
