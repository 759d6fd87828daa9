//! The pipeline through the library, no command line: `pare::pipeline::run` on a tiny model
//! and the built-in synthetic data with a small budget, its report checked against figures
//! computed here independently (the architecture's cost, the exported file's MACs, host
//! emulation of the exported file); and a stop flag set before pruning ending the run with
//! nothing exported. Needs QEMU (`qemu-system-arm`), as board_qemu does.

use pare::pipeline::{Observer, PipelineError, PipelineRequest};
use pare::prune::schedule::Budget;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// One epoch of `tiny`, 20 fine-tuning steps, 100 evaluation images, 5 on the board.
fn small(out: &std::path::Path) -> PipelineRequest {
    PipelineRequest {
        epochs: 1,
        eval_limit: Some(100),
        calib_samples: 64,
        budget: Some(Budget::Steps(20)),
        samples: 5,
        out: out.into(),
        json: Some(out.join("summary.json")),
        ..PipelineRequest::default()
    }
}

#[test]
fn the_library_pipeline_reaches_its_target_and_the_board_agrees_with_host_emulation() {
    let dir = tempfile::tempdir().unwrap();
    let req = small(dir.path());
    let r = pare::pipeline::run(&req).unwrap();

    // FLOPs: before is the zoo architecture's own cost; after is what the exported file
    // computes; the default target (half the FLOPs) is reached.
    let arch = pare::model::zoo::by_name("tiny", 10).unwrap();
    let (macs, params) = arch.cost().unwrap();
    assert_eq!((r.macs.before, r.params.before), (macs, params));
    let bytes = std::fs::read(&r.model).unwrap();
    assert_eq!(r.model, dir.path().join("model.pare"));
    assert_eq!(r.model_bytes, bytes.len());
    let rt = pare_device::Runtime::from_bytes(&bytes).unwrap();
    assert_eq!(r.macs.after, pare::flash::macs_of(&rt));
    assert_eq!(r.board.macs, r.macs.after);
    assert!(r.macs.reduction() >= 0.5 && r.macs.after > 0, "{:?}", r.macs);
    assert!(r.params.after < r.params.before, "{:?}", r.params);
    assert_eq!(r.pruning.history.last().map(|i| i.macs), Some(r.macs.after));

    // Host emulation of the exported file, here, gives the report's int8 host top-1, and its
    // predictions on the board's 5 samples are what the board got right.
    let eval = pare::data::load("synthetic", "test").unwrap().take(100);
    let em = pare::emulate::emulate(&bytes, &eval).unwrap();
    assert_eq!(r.top1.pruned_int8_host, em.evaluation.top1);
    let correct = (0..5).filter(|&i| em.evaluation.predictions[i] == usize::from(eval.labels[i])).count() as u64;

    // The board: every sample equals host emulation, prediction and raw bytes.
    let b = &r.board.result;
    assert_eq!((b.samples, b.agree, b.exact, b.correct), (5, 5, 5, correct), "{b:?}");
    assert!(b.errors.is_empty() && b.per_inference > 0 && b.unit == "instructions", "{b:?}");
    assert_eq!(r.top1.pruned_int8_board, correct as f64 / 5.0);
    assert!(r.board.passed() && r.passed() && r.verification.is_none());

    // What it wrote: report.md is the report's text; the summary and board JSON are there.
    assert_eq!(std::fs::read_to_string(dir.path().join("report.md")).unwrap(), r.markdown);
    assert!(r.markdown.contains("board agreement 5/5"), "{}", r.markdown);
    let summary = std::fs::read_to_string(dir.path().join("summary.json")).unwrap();
    assert!(summary.contains(&format!("\"after\": {}", r.macs.after)), "{summary}");
    assert!(dir.path().join("board.json").is_file());
}

/// Stops pruning before it starts.
struct StopAtOnce;

impl Observer for StopAtOnce {
    fn pruning(&mut self) -> Option<Arc<AtomicBool>> {
        Some(Arc::new(AtomicBool::new(true)))
    }
}

#[test]
fn a_stop_flag_ends_the_pipeline_after_pruning_saves_with_nothing_exported() {
    let dir = tempfile::tempdir().unwrap();
    let e = pare::pipeline::run_with(&small(dir.path()), &mut StopAtOnce).unwrap_err();
    match e {
        PipelineError::Interrupted { dir: saved } => assert_eq!(saved, dir.path().join("prune")),
        other => panic!("{other}"),
    }
    assert!(dir.path().join("prune/state.json").is_file());
    assert!(!dir.path().join("model.pare").exists());
}
