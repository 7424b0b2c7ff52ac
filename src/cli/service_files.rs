//! The service definitions `lobstah service install` writes: a launchd agent plist and a
//! systemd user unit, from the templates in assets/ (embedded in the binary), with the
//! binary path, arguments and log paths filled in and quoted for each format.

use std::path::{Path, PathBuf};

pub(super) const PLIST_TEMPLATE: &str = include_str!("../../assets/io.lobstah.node.plist");
pub(super) const UNIT_TEMPLATE: &str = include_str!("../../assets/lobstah.service");
pub(super) const LAUNCHD_LABEL: &str = "io.lobstah.node";
pub(super) const SYSTEMD_UNIT: &str = "lobstah.service";

/// What the service runs and where its output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ServiceSpec {
    pub binary: PathBuf,
    /// Passed as `--home` when the operator uses a non-default data directory.
    pub home: Option<PathBuf>,
    /// launchd only; systemd keeps output in the journal.
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

impl ServiceSpec {
    /// The command line: `lobstah [--home DIR] --headless`.
    pub(super) fn arguments(&self) -> Vec<String> {
        let mut args = vec![self.binary.display().to_string()];
        if let Some(home) = &self.home {
            args.push("--home".into());
            args.push(home.display().to_string());
        }
        args.push("--headless".into());
        args
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub(super) fn render_plist(spec: &ServiceSpec) -> String {
    let args: Vec<String> = spec
        .arguments()
        .iter()
        .map(|a| format!("        <string>{}</string>", xml_escape(a)))
        .collect();
    PLIST_TEMPLATE
        .replace("{{PROGRAM_ARGUMENTS}}", &args.join("\n"))
        .replace(
            "{{STDOUT_PATH}}",
            &xml_escape(&spec.stdout.display().to_string()),
        )
        .replace(
            "{{STDERR_PATH}}",
            &xml_escape(&spec.stderr.display().to_string()),
        )
}

/// One ExecStart word: quoted when it holds anything systemd would split or expand;
/// `%` (specifiers) and `$` (variables) are doubled either way.
fn systemd_word(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-_.,:+=@%$".contains(c));
    if plain {
        return escaped;
    }
    format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
}

pub(super) fn render_unit(spec: &ServiceSpec) -> String {
    let exec: Vec<String> = spec.arguments().iter().map(|a| systemd_word(a)).collect();
    UNIT_TEMPLATE.replace("{{EXEC_START}}", &exec.join(" "))
}

/// `~/Library/LaunchAgents/io.lobstah.node.plist`
pub(super) fn plist_path(home_dir: &Path) -> PathBuf {
    home_dir
        .join("Library/LaunchAgents")
        .join(format!("{LAUNCHD_LABEL}.plist"))
}

/// `<config dir>/systemd/user/lobstah.service`
pub(super) fn unit_path(config_dir: &Path) -> PathBuf {
    config_dir.join("systemd/user").join(SYSTEMD_UNIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(home: Option<&str>) -> ServiceSpec {
        ServiceSpec {
            binary: "/Applications/lob stah/bin/lobstah".into(),
            home: home.map(PathBuf::from),
            stdout: "/Users/me/Library/Logs/lobstah/out.log".into(),
            stderr: "/Users/me/Library/Logs/lobstah/err & more.log".into(),
        }
    }

    #[test]
    fn the_plist_parses_and_has_the_keys_launchd_needs() {
        let text = render_plist(&spec(Some("/Users/me/.lob<stah>")));
        let value = plist::Value::from_reader_xml(text.as_bytes()).expect("a property list");
        let dict = value.as_dictionary().expect("a dictionary");
        assert_eq!(
            dict.get("Label").and_then(|v| v.as_string()),
            Some(LAUNCHD_LABEL)
        );
        let args: Vec<&str> = dict
            .get("ProgramArguments")
            .and_then(|v| v.as_array())
            .expect("ProgramArguments")
            .iter()
            .filter_map(|v| v.as_string())
            .collect();
        assert_eq!(
            args,
            [
                "/Applications/lob stah/bin/lobstah",
                "--home",
                "/Users/me/.lob<stah>",
                "--headless"
            ]
        );
        assert_eq!(
            dict.get("RunAtLoad").and_then(|v| v.as_boolean()),
            Some(true)
        );
        assert_eq!(
            dict.get("KeepAlive").and_then(|v| v.as_boolean()),
            Some(true)
        );
        assert_eq!(
            dict.get("StandardOutPath").and_then(|v| v.as_string()),
            Some("/Users/me/Library/Logs/lobstah/out.log")
        );
        assert_eq!(
            dict.get("StandardErrorPath").and_then(|v| v.as_string()),
            Some("/Users/me/Library/Logs/lobstah/err & more.log")
        );
    }

    #[test]
    fn the_unit_starts_headless_and_restarts_on_failure() {
        let text = render_unit(&spec(None));
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("an ExecStart line");
        assert_eq!(exec, "\"/Applications/lob stah/bin/lobstah\" --headless");
        assert!(text.lines().any(|l| l == "Restart=on-failure"), "{text}");
        assert!(
            text.lines().any(|l| l == "WantedBy=default.target"),
            "{text}"
        );
        assert!(!text.contains("{{"), "{text}");
    }

    #[test]
    fn systemd_quoting_table() {
        let cases = [
            ("/usr/bin/lobstah", "/usr/bin/lobstah"),
            ("--headless", "--headless"),
            ("/a b", "\"/a b\""),
            ("/100%", "/100%%"),
            ("/$HOME", "/$$HOME"),
            ("/q\"uote", "\"/q\\\"uote\""),
            ("", "\"\""),
        ];
        for (word, want) in cases {
            assert_eq!(systemd_word(word), want, "{word:?}");
        }
    }
}
