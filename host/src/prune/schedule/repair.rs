//! Removal and its repair: the chosen channels physically removed, every layer refitted by
//! least squares when asked (`--reconstruct`), BatchNorm statistics re-estimated, and the
//! result evaluated before any fine-tuning.

use super::config::PruneConfig;
use super::error::ScheduleError;
use super::run_data::RunData;
use crate::channels::Groups;
use crate::model::Net;
use crate::prune::reconstruct::reconstruct;
use crate::prune::surgery::prune;
use crate::train::{evaluate, recalibrate_batchnorm};
use burn::tensor::Device;

/// `net` with only `keep[space]` channels of each space of `groups`, repaired, on the autodiff
/// device `ad`; and its top-1 before fine-tuning.
pub(super) fn remove_and_repair(
    net: &Net,
    groups: &Groups,
    keep: &[Vec<usize>],
    cfg: &PruneConfig,
    data: &RunData<'_>,
    device: &Device,
    ad: &Device,
) -> Result<(Net, f64), ScheduleError> {
    let mut pruned = prune(net, groups, keep, ad).map_err(ScheduleError::Arch)?;
    if let Some(rc) = cfg.reconstruct.as_ref() {
        let t0 = std::time::Instant::now();
        pruned = reconstruct(net, &pruned, groups, keep, data.calib, rc, device, ad)?;
        crate::say!("least-squares repair of every layer: {:.1} s", t0.elapsed().as_secs_f64());
    }
    if cfg.bn_batches > 0 {
        pruned = recalibrate_batchnorm(pruned, data.train, cfg.bn_batches, cfg.batch_size, ad);
    }
    let after_removal = evaluate(&pruned, data.eval, cfg.batch_size, device).top1;
    crate::say!("after the removal, before fine-tuning: top-1 {:.2} %", 100.0 * after_removal);
    Ok((pruned, after_removal))
}
