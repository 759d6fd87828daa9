//! The `pare` command: parses the arguments and runs `pare::cli`, printing errors plainly.

use clap::Parser;

fn main() {
    // `pare … | head` should end quietly like other Unix tools when the reader goes away, not
    // panic in `println!` with "Broken pipe": restore SIGPIPE's default (Rust ignores it).
    #[cfg(unix)]
    // SAFETY: called first thing, before any other thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = pare::cli::Cli::parse();
    // The library's progress lines go to stderr, beside its progress bars.
    pare::progress::set_sink(|line| eprintln!("{line}"));
    // Before any thread exists (setting the environment later races with C code reading it).
    pare::gpu::quiet_window_system();
    if let Err(e) = pare::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(pare::cli::common::exit_status(&e));
    }
}
