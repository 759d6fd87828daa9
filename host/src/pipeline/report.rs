//! The pipeline's last stages — int8 export, host emulation, the board check and, under board
//! budgets, the check of every budget as measured — and its report: [`PipelineReport`],
//! `report.md`, the `--json` summary and the plots.

use super::prune::Pruned;
use super::{Observer, PipelineError, PipelineRequest};
use crate::budget::verify::Verification;
use crate::data::Dataset;
use crate::export::{export, Quant};
use crate::flash::{FlashReport, FlashRequest};
use crate::prune::schedule::RunState;
use burn::module::Module;
use std::path::PathBuf;
use std::time::Instant;

/// Top-1 accuracy (a fraction) at each stage.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Top1 {
    /// The model before pruning (f32, burn), on the evaluation split.
    pub original_f32: f64,
    /// Pruned and fine-tuned (f32, burn), on the evaluation split.
    pub pruned_f32: f64,
    /// The exported int8 model in host emulation of the device runtime, on the evaluation split.
    pub pruned_int8_host: f64,
    /// The exported int8 model on the board, on its samples.
    pub pruned_int8_board: f64,
}

/// A count before and after pruning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BeforeAfter {
    pub before: u64,
    pub after: u64,
}

impl BeforeAfter {
    /// The share removed: `1 - after / before` (the pruning ratio).
    pub fn reduction(&self) -> f64 {
        1.0 - self.after as f64 / self.before as f64
    }
}

/// What a pipeline run produced. A run whose board check failed, or whose final model misses
/// a board budget as measured, still returns its report: [`PipelineReport::passed`] judges.
#[derive(Debug, Clone)]
pub struct PipelineReport {
    /// `report.md`: the pruning report, the board budgets when there were any, the summary.
    pub markdown: String,
    pub top1: Top1,
    /// Multiply-accumulates of one inference.
    pub macs: BeforeAfter,
    pub params: BeforeAfter,
    /// The exported model (`model.pare` in the output folder) and its size.
    pub model: PathBuf,
    pub model_bytes: usize,
    /// The board check of the exported model.
    pub board: FlashReport,
    /// Under board budgets: every budget, predicted against measured on the board.
    pub verification: Option<Verification>,
    /// The pruning run: its configuration and every iteration.
    pub pruning: RunState,
    /// Wall time of the run, in seconds.
    pub seconds: f64,
}

impl PipelineReport {
    /// Whether the board check passed ([`FlashReport::passed`]) and every board budget holds as
    /// measured.
    pub fn passed(&self) -> bool {
        self.board.passed() && self.verification.as_ref().is_none_or(|v| v.holds)
    }
}

/// Exports the pruned model as int8, emulates it on the host, checks it on the board and
/// writes `model.pare`, `board.json`, the `--json` summary, `report.md` and the plots.
pub(super) fn finish(
    req: &PipelineRequest,
    pruned: Pruned,
    eval_ds: &Dataset,
    started: Instant,
    observer: &mut dyn Observer,
) -> Result<PipelineReport, PipelineError> {
    crate::say!("[3/5] int8 quantisation and export");
    let Pruned { net, state, calib, board_target } = pruned;
    let (Some(first), Some(last)) = (state.history.first(), state.history.last()) else {
        return Err(PipelineError::NoIterations);
    };
    let macs = BeforeAfter { before: first.macs, after: last.macs };
    let params = BeforeAfter { before: first.params, after: last.params };
    let prov = crate::prune::ProvenanceRecord {
        criterion: req.criterion.name().into(),
        kept_filter_ratio: last.kept_ratio as f32,
        flops_before: macs.before,
        flops_after: macs.after,
        params_before: params.before,
        params_after: params.after,
    };
    let bytes = export(&net.valid(), Quant::Int8, Some(&calib), Some(prov.as_format()))?;
    let model = req.out.join("model.pare");
    crate::atomic::write(&model, &bytes)?;
    crate::say!("[4/5] host emulation of the device runtime on {}", eval_ds.source);
    let em = crate::emulate::emulate(&bytes, eval_ds)?;
    crate::say!("[5/5] on-device check on {}", req.board);
    let board = crate::flash::run(&FlashRequest {
        model: model.clone(),
        board: req.board.clone(),
        samples: req.samples,
        data: req.data.clone(),
        input_size: req.input_size,
        split: req.eval_split.clone(),
        spread: false,
        dry_run: false,
    })?;
    observer.board_checked(&board);
    let path = req.out.join("board.json");
    crate::report::write_json(&path, &board.result)
        .map_err(|cause| crate::flash::FlashError::Io { what: path.display().to_string(), cause })?;
    let r = &board.result;
    let top1 = Top1 {
        original_f32: first.top1,
        pruned_f32: last.top1,
        pruned_int8_host: em.evaluation.top1,
        pruned_int8_board: r.correct as f64 / r.samples.max(1) as f64,
    };
    let mut markdown = crate::report::prune_report(&net.arch.labels, &state, &eval_ds.source);
    // Under a board budget: the model that ran, predicted against measured.
    let verification = match &board_target {
        Some(t) => Some(verify(t, &net.arch, &board, &bytes)?),
        None => None,
    };
    if let Some(v) = &verification {
        markdown += &v.markdown();
    }
    markdown += &summary(req, &top1, macs, params, bytes.len(), &board, started);
    let report = PipelineReport {
        markdown,
        top1,
        macs,
        params,
        model,
        model_bytes: bytes.len(),
        board,
        verification,
        pruning: state,
        seconds: 0.0,
    };
    if let Some(p) = &req.json {
        crate::report::write_json(p, &json(&report, started))?;
    }
    crate::atomic::write(&req.out.join("report.md"), report.markdown.as_bytes())?;
    if let Err(e) = crate::plots::write(&req.out, &report.pruning) {
        crate::say!("warning: plots not written: {e:#}");
    }
    Ok(PipelineReport { seconds: started.elapsed().as_secs_f64(), ..report })
}

/// The exported model's board run against the target's predictions, budget by budget.
fn verify(
    t: &crate::budget::BoardTarget,
    arch: &crate::model::Arch,
    board: &FlashReport,
    bytes: &[u8],
) -> Result<Verification, PipelineError> {
    let b = crate::boards::find(&t.board).ok_or_else(|| PipelineError::UnknownBoard(t.board.clone()))?;
    let r = &board.result;
    let counts = crate::budget::measure::steps(r, arch.nodes.len())?;
    let kinds: Vec<String> = std::iter::once("input".to_string())
        .chain(
            (0..arch.nodes.len())
                .map(|i| r.layers.iter().find(|l| l.op == Some(i as u32)).map_or(String::new(), |l| l.kind.clone())),
        )
        .collect();
    let rt = pare_device::Runtime::from_bytes(bytes)?;
    let runtime = crate::budget::measure::runtime_bytes(b, bytes, r.samples as usize)?;
    let arena = u64::from(rt.arena_bytes());
    Ok(Verification::new(t, arch, &kinds, &counts, arena, bytes.len() as u64 + runtime)?)
}

/// The report's summary: top-1 at each stage, then FLOPs, parameters, size, board and time.
fn summary(
    req: &PipelineRequest,
    top1: &Top1,
    macs: BeforeAfter,
    params: BeforeAfter,
    model_bytes: usize,
    board: &FlashReport,
    started: Instant,
) -> String {
    let r = &board.result;
    let mut s = format!(
        "\n## Summary\n\n| stage | top-1 |\n|---|---:|\n| original (f32, burn) | {:.2} % |\n| pruned + fine-tuned (f32, burn) | {:.2} % |\n| pruned int8 (pare-device on host) | {:.2} % |\n| pruned int8 on {} ({} samples) | {:.2} % |\n",
        100.0 * top1.original_f32,
        100.0 * top1.pruned_f32,
        100.0 * top1.pruned_int8_host,
        req.board,
        r.samples,
        100.0 * r.correct as f64 / r.samples.max(1) as f64
    );
    s += &format!(
        "\nFLOPs {:.2} M → {:.2} M (PR {:.1} %), params {:.1} k → {:.1} k (PR {:.1} %), file {} bytes, board agreement {}/{}, {} {} per inference, total time {:.0} s\n",
        macs.before as f64 / 1e6,
        macs.after as f64 / 1e6,
        100.0 * macs.reduction(),
        params.before as f64 / 1e3,
        params.after as f64 / 1e3,
        100.0 * params.reduction(),
        model_bytes,
        r.agree,
        r.samples,
        r.per_inference,
        r.unit,
        started.elapsed().as_secs_f64()
    );
    s
}

/// The `--json` summary (docs/json.md).
fn json(report: &PipelineReport, started: Instant) -> serde_json::Value {
    serde_json::json!({
        "top1": report.top1,
        "macs": report.macs,
        "params": report.params,
        "model_bytes": report.model_bytes,
        "board": report.board.result,
        "board_budget": report.verification,
        "seconds": started.elapsed().as_secs_f64(),
    })
}
