//! `pare score`: per-filter importance, written as JSON for inspection and comparison.

use super::common::{DataArgs, ModelArgs};
use crate::model::Node;
use crate::prune::criteria::{normalize, score, spearman, Criterion, IbaConfig, Normalize, ScoreConfig};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value = "attribution")]
    pub criterion: Criterion,
    /// Per-layer normalisation (default: l2, except none for `taylor`).
    #[arg(long, value_enum)]
    pub normalize: Option<Normalize>,
    /// Calibration split (dataset order, no augmentation).
    #[arg(long, default_value = "train")]
    pub calib_split: String,
    #[arg(long, default_value_t = 512, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub calib_samples: usize,
    #[arg(long, default_value_t = 128, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Attribution: one bottleneck at a time (faithful to IBA) instead of all jointly.
    #[arg(long)]
    pub per_layer: bool,
    /// Attribution: run both modes and report their rank agreement (Spearman).
    #[arg(long)]
    pub compare_modes: bool,
    #[command(flatten)]
    pub scorer: super::common::ScorerArgs,
    /// Write `{"criterion", "normalize", "layers": {"<layer>": [...]}}`.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(a: ScoreArgs) -> anyhow::Result<()> {
    if let Some(json) = &a.json {
        let mut inputs = a.model.inputs();
        inputs.push(a.data.input());
        crate::atomic::check_distinct(&[("--json", json)], &inputs)?;
    }
    let device = a.model.device.device()?;
    let net = a.model.load(&device)?;
    let calib = a.data.load_at(&a.calib_split, net.arch.input.h)?.take(a.calib_samples);
    super::common::check_classes(&net, &calib)?;
    let how = a.normalize.unwrap_or(a.criterion.default_normalize());
    let settings = a.scorer.settings(a.per_layer);
    let iba = settings.iba;
    let cfg = ScoreConfig {
        criterion: a.criterion,
        calib: &calib,
        batch_size: a.batch_size,
        seed: a.seed,
        iba,
        sss: settings.sss,
        variational: settings.variational,
    };
    let started = std::time::Instant::now();
    let scores = normalize(&score(&net, &cfg, &device), how);
    eprintln!(
        "scored {} filters with {} in {:.1} s",
        scores.values().map(Vec::len).sum::<usize>(),
        a.criterion.name(),
        started.elapsed().as_secs_f64()
    );
    let names: Vec<String> = net
        .arch
        .nodes
        .iter()
        .map(|n| if let Node::Conv { name, .. } = n { name.clone() } else { String::new() })
        .collect();
    if a.compare_modes && a.criterion == Criterion::Attribution {
        let other = ScoreConfig { iba: IbaConfig { per_layer: !a.per_layer, ..iba }, ..cfg };
        let other = normalize(&score(&net, &other, &device), how);
        let flat = |s: &crate::prune::criteria::Scores| s.values().flatten().copied().collect::<Vec<f64>>();
        println!(
            "rank agreement joint vs per-layer (Spearman, all filters): {:.3}",
            spearman(&flat(&scores), &flat(&other))
        );
        for (i, v) in &scores {
            println!("  {:<16} {:.3}", super::common::terminal_safe(&names[*i]), spearman(v, &other[i]));
        }
    }
    let layers: serde_json::Map<String, serde_json::Value> =
        scores.iter().map(|(i, v)| (names[*i].clone(), serde_json::json!(v))).collect();
    let doc = serde_json::json!({ "criterion": a.criterion.name(), "normalize": how, "layers": layers });
    match a.json {
        Some(p) => crate::report::write_json(&p, &doc)?,
        None => println!("{}", serde_json::to_string_pretty(&doc)?),
    }
    Ok(())
}
