//! The data a run uses: fine-tuning, calibration (scoring, repair, board measurement),
//! evaluation and the recovery's polish split, checked against the model's classes.

use super::error::ScheduleError;
use crate::data::Dataset;
use crate::model::Net;

/// Data a run uses.
pub struct RunData<'a> {
    pub train: &'a Dataset,
    pub calib: &'a Dataset,
    pub eval: &'a Dataset,
    /// Where the recovery fine-tune ends ([`Polish`](super::Polish)); `None`: all of it on `train`.
    pub polish: Option<&'a Dataset>,
}

/// Refuses fine-tuning or evaluation data whose classes are not the model's.
pub(super) fn check_data(net: &Net, data: &RunData<'_>) -> Result<(), ScheduleError> {
    for ds in [Some(data.train), Some(data.eval), data.polish].into_iter().flatten() {
        crate::train::check_classes(&net.arch, ds)?;
    }
    Ok(())
}
