//! The `pare` command line: one module per subcommand, shared options here.

pub mod bench;
pub mod budget;
pub mod common;
pub mod data;
pub mod eval;
pub mod export;
pub mod flash;
pub mod pipeline;
pub mod prune;
pub mod run;
pub mod score;
pub mod train;

use clap::{Parser, Subcommand};

/// pare: prune CNNs by attribution, quantise them, and prove they still work on a microcontroller.
#[derive(Parser, Debug)]
#[command(name = "pare", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Arithmetic of the CPU backend's convolutions when training: `f32` (the default), `bf16`
    /// (products in bfloat16, sums in float32, on CPUs with AVX-512 BF16: faster, experimental,
    /// accuracy not yet measured against f32) or `auto` (bf16 where the CPU has it).
    #[arg(long, global = true, value_enum, default_value = "f32")]
    pub precision: Precision,
}

/// `--precision`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    Bf16,
    Auto,
}

/// Applies `--precision` to the CPU backend, saying what it chose when not plain f32.
fn apply_precision(p: Precision) -> anyhow::Result<()> {
    let want = match p {
        Precision::F32 => false,
        Precision::Bf16 | Precision::Auto => true,
    };
    let on = burn_flex::ops::bf16_products(want);
    match (p, on) {
        (Precision::Bf16, false) => {
            anyhow::bail!("--precision bf16 needs a CPU with AVX-512 BF16, which this one lacks: use f32 or auto")
        }
        (_, true) => {
            eprintln!("precision: bf16 products with f32 sums in the CPU backend's convolutions (AVX-512 BF16)")
        }
        (Precision::Auto, false) => eprintln!("precision: f32 (this CPU has no AVX-512 BF16)"),
        (Precision::F32, false) => {}
    }
    Ok(())
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The main job: train (or load), attribution-prune, fine-tune, int8-export, check on a board.
    Pipeline(Box<pipeline::PipelineArgs>),
    /// Train a zoo model (or continue a checkpoint) with SGD.
    Train(train::TrainArgs),
    /// Datasets: `pare data fetch cifar10 --to DIR`.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Top-1, per-class accuracy and confusion matrix of a model on a dataset split.
    Eval(eval::EvalArgs),
    /// Score every conv filter (attribution, taylor-guided, taylor, l1, bn-scale, random).
    Score(score::ScoreArgs),
    /// Iteratively remove the weakest filters (physically), fine-tune, report.
    Prune(Box<prune::PruneArgs>),
    /// Fold BatchNorm, optionally quantise to int8, and write a .pare file for the device.
    Export(export::ExportArgs),
    /// Run a .pare file through the device runtime on this machine (host emulation).
    Run(run::RunArgs),
    /// Build board firmware with a model and test samples, run it (QEMU) or flash it
    /// (probe-rs), and check every prediction against host emulation.
    Flash(flash::FlashArgs),
    /// Throughput benchmarks (`pare bench train`).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// List the boards `pare flash` supports, with flash and RAM sizes.
    Boards,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    apply_precision(cli.precision)?;
    match cli.command {
        Command::Pipeline(a) => pipeline::run(*a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Data(c) => data::run(c),
        Command::Score(a) => score::run(a),
        Command::Prune(a) => prune::run(*a),
        Command::Export(a) => export::run(a),
        Command::Run(a) => run::run(a),
        Command::Flash(a) => flash::run(a),
        Command::Bench(c) => bench::run(c),
        Command::Boards => {
            flash::boards();
            Ok(())
        }
    }
}
