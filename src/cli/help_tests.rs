//! The help is part of the interface: every argument of every command says what it is.

use clap::CommandFactory;

use super::Cli;

fn undescribed(command: &clap::Command, path: &str, out: &mut Vec<String>) {
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        if arg.get_help().is_none() && arg.get_long_help().is_none() {
            out.push(format!("{path} {id}"));
        }
    }
    for sub in command.get_subcommands() {
        undescribed(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

#[test]
fn every_argument_of_every_command_is_described() {
    let mut missing = Vec::new();
    undescribed(&Cli::command(), "lobstah", &mut missing);
    assert!(
        missing.is_empty(),
        "arguments without help:\n{}",
        missing.join("\n")
    );
}
