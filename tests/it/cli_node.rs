//! The real binary's configuration and service commands, with LOBSTAH_HOME in a
//! temporary directory: `config show` (every value and its source, flag > env > file >
//! default; errors naming file, line and key) and `service install|uninstall --dry-run`
//! (a plist that parses, a unit that starts `--headless`).

use std::process::Output;

use serde_json::{Value, json};
use support::bin::lobstah;

use crate::support;

fn output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn config_show_reports_each_value_and_its_source() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "[router]\nport = 1001\n\n[worker]\nport = 1002\nconcurrency = 3\n",
    )
    .unwrap();
    let out = lobstah(home.path())
        .args(["--router-port", "3001", "config", "show", "--json"])
        .env("LOBSTAH_WORKER_PORT", "2002")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    let setting = |key: &str| {
        shown["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap()
    };
    let table = [
        (
            "router.port",
            json!(3001),
            json!({"kind": "flag", "flag": "--router-port"}),
        ),
        (
            "worker.port",
            json!(2002),
            json!({"kind": "env", "var": "LOBSTAH_WORKER_PORT"}),
        ),
        (
            "worker.concurrency",
            json!(3),
            json!({"kind": "file", "path": home.path().join("config.toml"), "line": 6}),
        ),
        ("control.port", json!(17477), json!({"kind": "default"})),
        (
            "advertise.enabled",
            json!(false),
            json!({"kind": "default"}),
        ),
    ];
    for (key, value, source) in table {
        let s = setting(key);
        assert_eq!((&s["value"], &s["source"]), (&value, &source), "{key}");
    }
    let text = output(
        &lobstah(home.path())
            .args(["config", "show"])
            .output()
            .unwrap(),
    );
    assert!(
        text.lines().any(|l| l.starts_with("router.port")
            && l.contains("1001")
            && l.contains("config.toml:2")),
        "{text}"
    );

    std::fs::write(
        home.path().join("config.toml"),
        "[router]\nport = 1\n[worker]\ntier = \"fast\"\n",
    )
    .unwrap();
    let bad = lobstah(home.path())
        .args(["config", "show"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let text = output(&bad);
    assert!(text.contains("config.toml:4"), "{text}");
    assert!(text.contains("worker.tier"), "{text}");
    let headless = lobstah(home.path()).arg("--headless").output().unwrap();
    assert_eq!(
        headless.status.code(),
        Some(1),
        "a bad config stops --headless before it starts"
    );
    assert!(output(&headless).contains("worker.tier"));
}

#[test]
fn service_install_dry_run_prints_a_valid_plist_and_unit() {
    let home = tempfile::tempdir().unwrap();
    let out = lobstah(home.path())
        .args(["service", "install", "--dry-run", "--kind", "launchd"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", output(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let start = text.find("<?xml").expect("the plist");
    let end = text.find("</plist>").expect("the plist's end") + "</plist>".len();
    let plist = plist::Value::from_reader_xml(&text.as_bytes()[start..end])
        .expect("parses as a property list");
    let dict = plist.as_dictionary().unwrap();
    assert_eq!(
        dict.get("Label").and_then(|v| v.as_string()),
        Some("io.lobstah.node")
    );
    let args: Vec<&str> = dict
        .get("ProgramArguments")
        .and_then(|v| v.as_array())
        .unwrap()
        .iter()
        .filter_map(|v| v.as_string())
        .collect();
    assert_eq!(args.last(), Some(&"--headless"));
    assert!(
        args.contains(&"--home"),
        "LOBSTAH_HOME is carried into the service: {args:?}"
    );
    assert!(text.contains("$ launchctl bootstrap gui/"), "{text}");
    assert!(
        !home.path().join("Library").exists(),
        "a dry run writes nothing"
    );

    let out = lobstah(home.path())
        .args(["service", "install", "--dry-run", "--kind", "systemd"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(exec.ends_with("--headless"), "{exec}");
    assert!(exec.contains("lobstah"), "{exec}");
    assert!(
        text.contains("$ systemctl --user enable --now lobstah.service"),
        "{text}"
    );
    let out = lobstah(home.path())
        .args(["service", "uninstall", "--dry-run", "--kind", "systemd"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("$ systemctl --user disable --now lobstah.service")
    );
}

/// An engine URL that is no address is refused at start, before anything listens, with
/// the value and what to give instead.
#[test]
fn worker_start_refuses_an_engine_url_that_is_no_address() {
    let home = tempfile::tempdir().unwrap();
    let keygen = lobstah(home.path()).arg("keygen").output().unwrap();
    assert!(keygen.status.success(), "{}", output(&keygen));
    let o = lobstah(home.path())
        .args([
            "worker",
            "start",
            "--engine",
            "openai",
            "--engine-url",
            "notaurl",
            "--port",
            "0",
        ])
        .output()
        .unwrap();
    let text = output(&o);
    assert!(!o.status.success(), "refused: {text}");
    assert!(
        text.contains("\"notaurl\"") && text.contains("no scheme and no port"),
        "says which value and why: {text}"
    );
    assert!(!text.contains("listening on"), "nothing listens: {text}");
}
