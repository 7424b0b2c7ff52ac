// glibc's malloc gives each of the runtime's threads its own arena and returns little
// of it; a daemon that serves for months grows by fragmentation alone. mimalloc keeps
// resident memory near what is live (see the README's performance section).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lobstah::cli::main()
}
