// glibc's malloc gives each of the runtime's threads its own arena and returns little
// of it, so a daemon serving for months grows by fragmentation alone. mimalloc keeps
// resident memory near what is live, once told to return freed pages at once (its
// default waits) and not to back them with transparent huge pages (the `no_thp`
// feature). `lobstah bench` measures the result.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v3's include/mimalloc.h, the
/// version Cargo.lock pins): milliseconds before freed pages go back to the system.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // SAFETY: mi_option_set only stores an integer in mimalloc's option table; no other
    // thread exists yet, and the value is one the option documents (0 = purge at once).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    lobstah::cli::main()
}
