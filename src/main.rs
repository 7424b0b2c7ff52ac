fn main() -> std::process::ExitCode {
    lobstah::cli::main()
}
