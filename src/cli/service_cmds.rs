//! `lobstah service install|uninstall|status`: run `lobstah --headless` at login under
//! launchd (macOS) or systemd (Linux). `--dry-run` prints the file and the commands
//! instead of writing and running them.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use directories::BaseDirs;

use super::service_files::{
    LAUNCHD_LABEL, SYSTEMD_UNIT, ServiceSpec, plist_path, render_plist, render_unit, unit_path,
};
use crate::core::control::files::read_node_info;
use crate::core::paths::Paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceKind {
    Launchd,
    Systemd,
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// Print the file and the commands instead of writing and running them.
    #[arg(long)]
    pub dry_run: bool,
    /// launchd or systemd (default: this platform's).
    #[arg(long, value_enum)]
    pub kind: Option<ServiceKind>,
}

/// Where things go for the current user.
struct Target {
    kind: ServiceKind,
    file: PathBuf,
    /// launchd's domain, `gui/<uid>`.
    domain: String,
    log_dir: PathBuf,
}

fn target(args: &ServiceArgs) -> anyhow::Result<Target> {
    let kind = match args.kind {
        Some(k) => k,
        None if cfg!(target_os = "macos") => ServiceKind::Launchd,
        None if cfg!(target_os = "linux") => ServiceKind::Systemd,
        None => {
            bail!("no service manager support on this platform: run `lobstah --headless` yourself")
        }
    };
    let dirs = BaseDirs::new().context("cannot find your home directory")?;
    let home = dirs.home_dir();
    Ok(Target {
        kind,
        file: match kind {
            ServiceKind::Launchd => plist_path(home),
            ServiceKind::Systemd => unit_path(dirs.config_dir()),
        },
        domain: format!("gui/{}", uid(home)),
        log_dir: home.join("Library/Logs/lobstah"),
    })
}

/// Our user id, as the owner of our home directory (no libc call needed).
fn uid(home: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(home).map(|m| m.uid()).unwrap_or(0)
    }
    #[cfg(not(unix))]
    {
        let _ = home;
        0
    }
}

fn words(ws: &[&str]) -> Vec<String> {
    ws.iter().map(|w| w.to_string()).collect()
}

/// Runs (or, dry, prints) each command; stops at the first failure unless `tolerate`.
fn run_all(commands: &[Vec<String>], dry_run: bool, tolerate: bool) -> anyhow::Result<()> {
    for command in commands {
        println!("$ {}", command.join(" "));
        if dry_run {
            continue;
        }
        let Some((program, args)) = command.split_first() else {
            continue;
        };
        let output = Command::new(program)
            .args(args)
            .output()
            .with_context(|| format!("cannot run {program}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !stdout.trim().is_empty() {
            println!("{}", stdout.trim_end());
        }
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if tolerate {
                eprintln!("  (ignored: {})", stderr.trim());
                continue;
            }
            bail!(
                "`{}` failed ({}): {}",
                command.join(" "),
                output.status,
                stderr.trim()
            );
        }
    }
    Ok(())
}

pub(super) fn install(home: Option<&Path>, args: &ServiceArgs) -> anyhow::Result<ExitCode> {
    let t = target(args)?;
    let binary = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot find the lobstah binary's path")?;
    let home = match home {
        Some(h) => Some(std::path::absolute(h).context("cannot resolve --home")?),
        None => None,
    };
    let spec = ServiceSpec {
        binary,
        home,
        stdout: t.log_dir.join("lobstah.out.log"),
        stderr: t.log_dir.join("lobstah.err.log"),
    };
    let (content, commands, tolerated) = match t.kind {
        ServiceKind::Launchd => (
            render_plist(&spec),
            vec![words(&[
                "launchctl",
                "bootstrap",
                &t.domain,
                &t.file.display().to_string(),
            ])],
            // Reloading an agent that is loaded already needs it out first.
            vec![words(&[
                "launchctl",
                "bootout",
                &format!("{}/{LAUNCHD_LABEL}", t.domain),
            ])],
        ),
        ServiceKind::Systemd => (
            render_unit(&spec),
            vec![
                words(&["systemctl", "--user", "daemon-reload"]),
                words(&["systemctl", "--user", "enable", "--now", SYSTEMD_UNIT]),
            ],
            Vec::new(),
        ),
    };
    if args.dry_run {
        println!("# would write {}:", t.file.display());
        print!("{content}");
        println!("# would run:");
        run_all(&tolerated, true, true)?;
        run_all(&commands, true, false)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = t.file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    if t.kind == ServiceKind::Launchd {
        std::fs::create_dir_all(&t.log_dir)
            .with_context(|| format!("cannot create {}", t.log_dir.display()))?;
    }
    std::fs::write(&t.file, &content)
        .with_context(|| format!("cannot write {}", t.file.display()))?;
    println!("wrote {}", t.file.display());
    run_all(&tolerated, false, true)?;
    run_all(&commands, false, false)?;
    match t.kind {
        ServiceKind::Launchd => println!(
            "installed: lobstah --headless starts at login; logs in {}",
            t.log_dir.display()
        ),
        ServiceKind::Systemd => println!(
            "installed: lobstah --headless starts at login; logs: journalctl --user -u lobstah"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn uninstall(args: &ServiceArgs) -> anyhow::Result<ExitCode> {
    let t = target(args)?;
    let (stop, after) = match t.kind {
        ServiceKind::Launchd => (
            vec![words(&[
                "launchctl",
                "bootout",
                &format!("{}/{LAUNCHD_LABEL}", t.domain),
            ])],
            Vec::new(),
        ),
        ServiceKind::Systemd => (
            vec![words(&[
                "systemctl",
                "--user",
                "disable",
                "--now",
                SYSTEMD_UNIT,
            ])],
            vec![words(&["systemctl", "--user", "daemon-reload"])],
        ),
    };
    // Stopping something already stopped is not an error worth failing on.
    run_all(&stop, args.dry_run, true)?;
    if args.dry_run {
        println!("# would remove {}", t.file.display());
    } else {
        match std::fs::remove_file(&t.file) {
            Ok(()) => println!("removed {}", t.file.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                println!("{} was not installed", t.file.display());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", t.file.display())),
        }
    }
    run_all(&after, args.dry_run, true)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn status(paths: &Paths, args: &ServiceArgs) -> anyhow::Result<ExitCode> {
    let t = target(args)?;
    let installed = t.file.exists();
    println!(
        "service file: {} ({})",
        t.file.display(),
        if installed {
            "installed"
        } else {
            "not installed"
        }
    );
    let query = match t.kind {
        ServiceKind::Launchd => words(&[
            "launchctl",
            "print",
            &format!("{}/{LAUNCHD_LABEL}", t.domain),
        ]),
        ServiceKind::Systemd => words(&["systemctl", "--user", "is-active", SYSTEMD_UNIT]),
    };
    if installed || args.dry_run {
        run_all(&[query], args.dry_run, true)?;
    }
    match read_node_info(paths.data_dir()) {
        Some(info) => println!(
            "node: running as pid {} (control API {}); `lobstah status` for more",
            info.pid, info.control_url
        ),
        None => println!("node: not running on {}", paths.data_dir().display()),
    }
    Ok(ExitCode::SUCCESS)
}
