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
    // Training allocates and frees tensors of megabytes every step; glibc hands each one back to
    // the kernel (mmap/munmap above 128 KiB) and the next one page-faults its pages in zeroed
    // again: 7 % of a ResNet-56 step in the kernel (BENCHMARKS.md). Keep freed memory instead.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called before any other thread exists; both are documented glibc parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    let cli = pare::cli::Cli::parse();
    // The library's progress lines go to stderr, beside its progress bars.
    // Lines and errors can carry names from model files (layers, labels): control characters
    // in them are escaped before they reach the terminal.
    pare::progress::set_sink(|line| eprintln!("{}", pare::cli::common::terminal_safe(line)));
    // Before any thread exists (setting the environment later races with C code reading it).
    pare::gpu::quiet_window_system();
    // The whole command on a worker of the CPU backend's thread pool (8 MiB stacks, as the main
    // thread's): each parallel kernel is then split from inside the pool, where calling it from
    // outside parked this thread and woke a worker per call, hundreds of times per training step
    // (BENCHMARKS.md, "Training throughput vs PyTorch on CPU": +8 % on ResNet-56).
    let pool = rayon::ThreadPoolBuilder::new().stack_size(8 << 20).build_global();
    let result = if pool.is_ok() { rayon::scope(|_| pare::cli::run(cli)) } else { pare::cli::run(cli) };
    if let Err(e) = result {
        eprintln!("error: {}", pare::cli::common::terminal_safe(&format!("{e:#}")));
        std::process::exit(pare::cli::common::exit_status(&e));
    }
}
