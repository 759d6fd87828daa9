//! The pruning schedule's bookkeeping: an interrupted fine-tune is not recorded as an iteration,
//! and `--resume` redoes it.

use burn::tensor::Device;
use pare::prune::criteria::{Criterion, Normalize};
use pare::prune::schedule::{run, PruneConfig, RunData, StepSize, Target};
use pare::testing::random_net;
use std::sync::atomic::AtomicBool;

#[test]
fn interrupted_finetune_is_not_recorded_and_resume_redoes_it() {
    let device = Device::flex();
    let train = pare::data::load("synthetic", "train").unwrap().take(256);
    let calib = train.clone().take(32);
    let eval = pare::data::load("synthetic", "test").unwrap().take(64);
    let data = RunData { train: &train, calib: &calib, eval: &eval, polish: None };
    let cfg = PruneConfig {
        criterion: Criterion::L1,
        normalize: Normalize::L2,
        internal_only: false,
        step: StepSize::Fraction(0.2),
        min_channels: 2,
        round_to: 1,
        target: Target { kept_ratio: Some(0.6), ..Target::default() },
        calib_samples: 32,
        batch_size: 32,
        seed: 0,
        finetune_steps: 4,
        finetune_lr: 0.01,
        max_iterations: 10,
        distill: None,
        bn_batches: 0,
        min_width: 0.0,
        ..PruneConfig::default()
    };
    let out = tempfile::tempdir().unwrap();
    // Ctrl-C already pressed: the first fine-tune stops after one batch.
    let stopped = AtomicBool::new(true);
    let (_, state) =
        run(Some(random_net("tiny", 1, &device)), &cfg, &data, out.path(), false, &device, &stopped).unwrap();
    assert_eq!(state.history.len(), 1, "only the original model is recorded");
    assert!(!state.done);
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(on_disk["history"].as_array().unwrap().len(), 1);
    assert!(!out.path().join("iter-1.safetensors").exists());

    let go_on = AtomicBool::new(false);
    let (_, state) = run(None, &cfg, &data, out.path(), true, &device, &go_on).unwrap();
    assert!(state.done);
    let ratios: Vec<f64> = state.history.iter().map(|h| h.kept_ratio).collect();
    assert_eq!(ratios.len(), 3, "1.0 → 0.8 → 0.6: {ratios:?}");
    assert!((ratios[2] - 0.6).abs() < 0.05, "{ratios:?}");
}
