//! `vigild`: the Vigil daemon (`vigild --help`; the code is `vigil_cli::daemon`).

/// mimalloc: with glibc's allocator, freeing the many small strings of a page of events
/// (`malloc_consolidate`, `unlink_chunk`) was about a tenth of the API's CPU under load.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    vigil_cli::daemon::main()
}
