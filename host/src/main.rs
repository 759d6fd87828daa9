use clap::Parser;

fn main() {
    let cli = pare::cli::Cli::parse();
    // Before any thread exists (setting the environment later races with C code reading it).
    pare::gpu::quiet_window_system();
    if let Err(e) = pare::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
