use clap::Parser;

fn main() {
    let cli = pare::cli::Cli::parse();
    if let Err(e) = pare::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
