//! The built `lobstah` binary as the tests run it: its home in a temporary directory and
//! none of the developer's own `LOBSTAH_*` settings, so a test sees only what it sets.

use std::path::Path;
use std::process::Command;

pub fn lobstah(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lobstah"));
    clean_env(&mut c, home);
    c
}

/// The binary run inside network namespace `netns` (`ip netns exec`, which execs it, so
/// the child's pid is lobstah's own and signals reach it).
pub fn lobstah_in_netns(netns: &str, home: &Path) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", netns, env!("CARGO_BIN_EXE_lobstah")]);
    clean_env(&mut c, home);
    c
}

fn clean_env(c: &mut Command, home: &Path) {
    c.env("LOBSTAH_HOME", home)
        .env_remove("RUST_LOG")
        .env("NO_PROXY", "127.0.0.1");
    for (var, _) in std::env::vars() {
        if var.starts_with("LOBSTAH_") && var != "LOBSTAH_HOME" {
            c.env_remove(var);
        }
    }
}

/// Runs `lobstah ARGS` to the end: whether it succeeded, and stdout then stderr.
pub fn run(home: &Path, args: &[&str]) -> (bool, String) {
    let out = lobstah(home).args(args).output().expect("run lobstah");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}
