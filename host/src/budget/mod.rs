//! Pruning to a board's budget: latency measured on the board (through a per-layer latency
//! model fitted to measured traces), RAM arena and flash from the exporter's exact plan.
//! [`BoardTarget`] is what the schedule checks and ranks by; [`measure`] builds the latency
//! model from a board; [`footprint`] gives a candidate architecture's exact bytes.

pub mod elf;
pub mod latency;
pub mod measure;
pub mod verify;

use crate::model::Arch;
pub use latency::{LatencyError, LatencyModel, Measurement};
use serde::{Deserialize, Serialize};

/// A latency limit as written on the command line: a count in the board's unit (`25000000`,
/// `25M`, `800k`), milliseconds on a clocked board (`12ms`), or a share of the unpruned model's
/// measured count (`50%`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LatencyLimit {
    Count(u64),
    Millis(f64),
    Share(f64),
}

impl std::str::FromStr for LatencyLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let bad = || {
            format!("'{s}' is not a latency: write a count (25000000, 25M, 800k), milliseconds (12ms) or a share of the unpruned model (50%)")
        };
        let pos = |t: &str| t.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).ok_or_else(bad);
        if let Some(t) = s.strip_suffix('%') {
            let v = pos(t)?;
            return if v < 100.0 { Ok(LatencyLimit::Share(v / 100.0)) } else { Err(bad()) };
        }
        if let Some(t) = s.strip_suffix("ms") {
            return Ok(LatencyLimit::Millis(pos(t)?));
        }
        for (suffix, unit) in [("k", 1e3), ("K", 1e3), ("M", 1e6), ("G", 1e9)] {
            if let Some(t) = s.strip_suffix(suffix) {
                return Ok(LatencyLimit::Count((pos(t)? * unit).round() as u64));
            }
        }
        pos(s).map(|v| LatencyLimit::Count(v.round() as u64))
    }
}

impl LatencyLimit {
    /// The limit in the board's unit, given the unpruned model's measured count and the
    /// board's clock (cycles per millisecond; `None` on an instruction-counting emulator).
    pub fn resolve(self, unpruned: u64, per_ms: Option<f64>) -> Result<u64, String> {
        match self {
            LatencyLimit::Count(n) => Ok(n),
            LatencyLimit::Share(f) => Ok((f * unpruned as f64).round() as u64),
            LatencyLimit::Millis(ms) => per_ms.map(|c| (ms * c).round() as u64).ok_or_else(|| {
                "this board counts instructions, not time: give --max-latency as a count or a share".into()
            }),
        }
    }
}

/// What a board-targeted run must meet, with the model that predicts latency.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BoardTarget {
    pub board: String,
    /// `instructions` (QEMU) or `cycles`.
    pub unit: String,
    pub max_latency: Option<u64>,
    pub max_arena: Option<u64>,
    /// The exported model plus the runtime's code and constants.
    pub max_flash: Option<u64>,
    /// Empty (no coefficients) when no latency budget was given.
    pub latency: LatencyModel,
    /// Flash the firmware takes besides the model (measured from its ELF).
    pub runtime_bytes: u64,
    /// The criterion named in the exported model's provenance (its bytes count toward flash).
    pub criterion: String,
    /// MACs and parameters of the unpruned model (the provenance records them).
    pub base: (u64, u64),
    /// The measurements the latency model is fitted to: the board profile's, then every model
    /// the run pruned to (weighted [`RUN_WEIGHT`] times as much).
    pub points: Vec<Measurement>,
    /// How many of `points` came from the profile.
    pub profile_points: usize,
}

/// Weight of a run's own measured models in the latency fit, against a profile variant's 1.
pub const RUN_WEIGHT: f64 = 8.0;

/// A candidate's cost on the board: predicted latency, exact arena and flash.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Footprint {
    pub latency: f64,
    pub arena: u64,
    pub flash: u64,
}

impl BoardTarget {
    /// Measures `arch` on the board (random weights: counts depend on the architecture only).
    pub fn measure(
        &self,
        arch: &Arch,
        sample: &crate::data::Dataset,
    ) -> Result<measure::Measured, measure::MeasureError> {
        let b = crate::boards::find(&self.board)
            .ok_or_else(|| measure::MeasureError::Board(format!("unknown board '{}'", self.board)))?;
        measure::measure_arch(b, arch, &sample.clone().take(1), &self.criterion, self.base)
    }

    /// Adds a model the run measured and refits the latency model.
    pub fn learn(&mut self, m: Measurement) -> Result<(), LatencyError> {
        self.points.push(m);
        let w: Vec<f64> =
            (0..self.points.len()).map(|i| if i < self.profile_points { 1.0 } else { RUN_WEIGHT }).collect();
        self.latency = LatencyModel::fit_weighted(&self.points, &w)?;
        Ok(())
    }

    /// Whether every budget holds for `arch`, with its latency as measured when known.
    pub fn holds_for(&self, arch: &Arch, measured: Option<u64>) -> Result<bool, BudgetError> {
        let mut f = self.footprint(arch)?;
        if let Some(m) = measured {
            f.latency = m as f64;
        }
        Ok(self.holds(&f))
    }

    /// The candidate's footprint (exports it with random weights for the exact byte counts).
    pub fn footprint(&self, arch: &Arch) -> Result<Footprint, BudgetError> {
        // Without a latency budget there may be no latency model (byte budgets need no profile).
        let latency = if self.max_latency.is_some() { self.latency.predict(arch)? } else { 0.0 };
        let (model, arena) = if self.max_arena.is_some() || self.max_flash.is_some() {
            footprint(arch, &self.criterion, self.base)?
        } else {
            (0, 0)
        };
        Ok(Footprint { latency, arena, flash: model + self.runtime_bytes })
    }

    /// Whether every budget holds for `f`.
    pub fn holds(&self, f: &Footprint) -> bool {
        self.max_latency.is_none_or(|l| f.latency <= l as f64)
            && self.max_arena.is_none_or(|a| f.arena <= a)
            && self.max_flash.is_none_or(|b| f.flash <= b)
    }

    /// The budgets that `f` exceeds, in words.
    pub fn missed(&self, f: &Footprint) -> Vec<String> {
        let mut v = vec![];
        if let Some(l) = self.max_latency.filter(|&l| f.latency > l as f64) {
            v.push(format!("latency {:.0} > {l} {}", f.latency, self.unit));
        }
        if let Some(a) = self.max_arena.filter(|&a| f.arena > a) {
            v.push(format!("arena {} > {a} bytes", f.arena));
        }
        if let Some(b) = self.max_flash.filter(|&b| f.flash > b) {
            v.push(format!("flash {} > {b} bytes", f.flash));
        }
        v
    }

    /// The cost ranking divides scores by: each budgeted quantity's predicted change per
    /// channel removed, relative to its limit, summed (latency from the model, flash from the
    /// parameters a channel carries). Arena is a peak over buffers, not a sum: it constrains
    /// but does not rank.
    pub fn cost(&self, arch: &Arch) -> Result<f64, BudgetError> {
        let mut c = 0.0;
        if let Some(l) = self.max_latency {
            c += self.latency.predict(arch)? / l as f64;
        }
        if let Some(b) = self.max_flash {
            c += arch.cost().map_err(LatencyError::Arch)?.1 as f64 / b as f64;
        }
        Ok(c)
    }
}

/// Why a budget cannot be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error(transparent)]
    Latency(#[from] LatencyError),
    #[error("exporting the candidate for its exact size: {0:#}")]
    Export(crate::export::ExportError),
    #[error("decoding the candidate's export: {0}")]
    Decode(pare_device::Error),
}

/// Exact `.pare` size and arena of `arch` as int8 with the provenance of a pruned model (see
/// [`provenance`]), from an export of a randomly initialised model (sizes and the arena plan
/// depend on the architecture only).
pub fn footprint(arch: &Arch, criterion: &str, base: (u64, u64)) -> Result<(u64, u64), BudgetError> {
    let flex = burn::tensor::Device::flex();
    let net =
        crate::model::Net::init(arch, &flex).map_err(|e| BudgetError::Export(crate::export::ExportError::Arch(e)))?;
    let ds = probe_image(arch);
    let bytes =
        crate::export::export(&net, crate::export::Quant::Int8, Some(&ds), Some(provenance(criterion, base, arch)))
            .map_err(BudgetError::Export)?;
    let rt = pare_device::Runtime::from_bytes(&bytes).map_err(BudgetError::Decode)?;
    Ok((bytes.len() as u64, u64::from(rt.arena_bytes())))
}

/// The provenance record a model of `arch` pruned from one of `base` (MACs, parameters) by
/// `criterion` carries: the same bytes as the real one (the counts are variable-length).
pub fn provenance<'a>(criterion: &'a str, base: (u64, u64), arch: &Arch) -> pare_format::Provenance<'a> {
    let (macs, params) = arch.cost().unwrap_or(base);
    pare_format::Provenance {
        criterion,
        kept_filter_ratio: 1.0,
        flops_before: base.0,
        flops_after: macs,
        params_before: base.1,
        params_after: params,
    }
}

/// One patterned image at the model's input shape: calibration for size-only exports.
pub fn probe_image(arch: &Arch) -> crate::data::Dataset {
    let shape = [arch.input.c, arch.input.h, arch.input.w];
    crate::data::Dataset {
        images: (0..shape.iter().product::<usize>()).map(|i| (i * 37 % 251) as u8).collect(),
        labels: vec![0],
        shape,
        classes: arch.labels.len().max(1),
        source: "probe".into(),
        class_names: arch.labels.clone(),
    }
}
