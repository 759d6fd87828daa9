//! The per-board latency model: every step of an inference (the input preparation, then one op
//! per architecture node, as the exporter maps them one to one) costs a linear function of
//! features of its input and output channel counts, with the layer's geometry held fixed. The
//! features mirror how the device kernels spend work: a convolution packs receptive fields
//! whose kernel rows are padded to four elements (`kp`), runs filters in pairs (`⌈co/2⌉`) over
//! them, and requantises every output (`co`); pools, adds and placements touch every channel
//! once. Coefficients are fitted per layer, by least squares, to per-layer counts measured on
//! the board (`pare flash`'s trace), so a width that falls into a kernel's padded remainder
//! costs what the board makes it cost.

use crate::model::{Arch, Node, Shape};
use serde::{Deserialize, Serialize};

/// Why a latency model cannot be built or used.
#[derive(Debug, thiserror::Error)]
pub enum LatencyError {
    #[error("architecture: {0}")]
    Arch(String),
    #[error("the latency model was measured on a model of {fitted} steps; this one has {given}")]
    Topology { fitted: usize, given: usize },
    #[error("measurement {index} has {got} steps, the model {want}: the board's trace does not match the model")]
    Trace { index: usize, got: usize, want: usize },
    #[error("{0} measurements cannot fit a latency model: it needs at least 2")]
    TooFew(usize),
}

/// What the conv features are (part of a cached profile's key: a profile measured with other
/// features is measured again).
pub const CONV_FEATURES: &str = "1, kp, co, pairs·kp, pairs, tail, tail·pairs, tail·kp";

/// Features of one step: the input preparation (`None`) or node `i`.
///
/// A convolution's kernel rows are `k·ci` elements in groups of four (`kp` elements per
/// receptive field, padding included); filters run in pairs (`⌈co/2⌉`), each widened once per
/// block of pixels; every output is requantised (`co`). A row that is not a whole number of
/// groups (`tail`: input channels not a multiple of four) takes the blocked path, which packs
/// every pixel's receptive field (`tail·kp`) and widens with a tail (`tail·⌈co/2⌉`); whole
/// groups take the row-slot path, which widens each input row once and packs nothing per
/// pixel. Measured on resnet20's layers (41 models on the QEMU board, fitted on 25, checked on
/// 16; `bench/latency_features.py`): with the row-slot path the 3×3 convolutions' total missed
/// by up to 2.45 % without `tail·kp` and 0.68 % with it.
pub fn features(arch: &Arch, shapes: &[Shape], node: Option<usize>) -> Vec<f64> {
    let Some(i) = node else { return vec![1.0] };
    let Some(n) = arch.nodes.get(i) else { return vec![1.0] };
    let cin = |s| arch.in_channels(shapes, s) as f64;
    let co = shapes.get(i).map_or(0, |s| s.c) as f64;
    match n {
        Node::Conv { input, kernel, .. } => {
            let k = *kernel as f64;
            let row = k * cin(*input);
            let kp = k * 4.0 * (row / 4.0).ceil();
            let tail = if row % 4.0 == 0.0 { 0.0 } else { 1.0 };
            let pairs = (co / 2.0).ceil();
            vec![1.0, kp, co, pairs * kp, pairs, tail, tail * pairs, tail * kp]
        }
        Node::Dense { input, .. } => {
            let ci = arch.dense_inputs(shapes, *input) as f64;
            vec![1.0, ci, co, ci * co]
        }
        Node::MaxPool { .. } | Node::AvgPool { .. } | Node::GlobalAvgPool { .. } | Node::Add { .. } => {
            vec![1.0, co]
        }
        // Zero the output, then copy the channels that land somewhere.
        Node::ChannelPlace { channels, .. } => vec![1.0, co, channels.iter().flatten().count() as f64],
    }
}

/// Features of every step of `arch`: the input preparation first, then each node.
pub fn all_features(arch: &Arch) -> Result<Vec<Vec<f64>>, LatencyError> {
    let shapes = arch.shapes().map_err(LatencyError::Arch)?;
    Ok(std::iter::once(None).chain((0..arch.nodes.len()).map(Some)).map(|n| features(arch, &shapes, n)).collect())
}

/// Input and output channels of every step of `arch` (the input preparation first).
pub fn widths(arch: &Arch) -> Result<Vec<[usize; 2]>, LatencyError> {
    let shapes = arch.shapes().map_err(LatencyError::Arch)?;
    let first = [arch.input.c, arch.input.c];
    Ok(std::iter::once(first)
        .chain(arch.nodes.iter().zip(&shapes).map(|(n, s)| {
            let ci = n.inputs().first().map_or(0, |&src| arch.in_channels(&shapes, src));
            [ci, s.c]
        }))
        .collect())
}

/// One measured model: its steps' widths, features and counts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Measurement {
    pub widths: Vec<[usize; 2]>,
    pub features: Vec<Vec<f64>>,
    pub counts: Vec<u64>,
}

impl Measurement {
    pub fn new(arch: &Arch, counts: Vec<u64>) -> Result<Self, LatencyError> {
        Ok(Self { widths: widths(arch)?, features: all_features(arch)?, counts })
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// Fitted coefficients, one vector per step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencyModel {
    pub coefficients: Vec<Vec<f64>>,
}

impl LatencyModel {
    /// Least-squares fit of every step's coefficients to the measurements.
    pub fn fit(points: &[Measurement]) -> Result<Self, LatencyError> {
        Self::fit_weighted(points, &vec![1.0; points.len()])
    }

    /// [`LatencyModel::fit`] with a weight per measurement (a run weighs the models it
    /// actually pruned to above the random variants around them).
    pub fn fit_weighted(points: &[Measurement], weights: &[f64]) -> Result<Self, LatencyError> {
        let first = points.first().ok_or(LatencyError::TooFew(0))?;
        if points.len() < 2 {
            return Err(LatencyError::TooFew(points.len()));
        }
        let steps = first.features.len();
        for (index, p) in points.iter().enumerate() {
            for got in [p.features.len(), p.counts.len()] {
                if got != steps {
                    return Err(LatencyError::Trace { index, got, want: steps });
                }
            }
        }
        let coefficients = (0..steps)
            .map(|s| {
                let x: Vec<&[f64]> = points.iter().map(|p| p.features[s].as_slice()).collect();
                let y: Vec<f64> = points.iter().map(|p| p.counts[s] as f64).collect();
                least_squares(&x, &y, weights)
            })
            .collect();
        Ok(Self { coefficients })
    }

    /// Predicted count of every step of `arch` (input preparation first).
    pub fn predict_steps(&self, arch: &Arch) -> Result<Vec<f64>, LatencyError> {
        let f = all_features(arch)?;
        if f.len() != self.coefficients.len() {
            return Err(LatencyError::Topology { fitted: self.coefficients.len(), given: f.len() });
        }
        Ok(f.iter().zip(&self.coefficients).map(|(x, b)| x.iter().zip(b).map(|(x, b)| x * b).sum::<f64>()).collect())
    }

    /// Predicted count of one inference of `arch`.
    pub fn predict(&self, arch: &Arch) -> Result<f64, LatencyError> {
        Ok(self.predict_steps(arch)?.iter().sum())
    }
}

/// Ridge-stabilised least squares `min ‖Xβ − y‖²` on columns scaled to unit maximum: a column
/// constant across the points (a stem's fixed input width) shares its weight with the
/// intercept instead of making the system singular; predictions inside the measured span are
/// unaffected.
pub fn least_squares(x: &[&[f64]], y: &[f64], weights: &[f64]) -> Vec<f64> {
    let m = x.first().map_or(0, |r| r.len());
    let scale: Vec<f64> = (0..m)
        .map(|j| x.iter().map(|r| r.get(j).copied().unwrap_or(0.0).abs()).fold(0.0, f64::max).max(1e-12))
        .collect();
    // Normal equations on the scaled columns, augmented with the right-hand side.
    let mut a = vec![vec![0.0; m + 1]; m];
    for ((r, &yv), &wt) in x.iter().zip(y).zip(weights) {
        let z: Vec<f64> = (0..m).map(|j| r.get(j).copied().unwrap_or(0.0) / scale[j]).collect();
        for (row, &zi) in a.iter_mut().zip(&z) {
            for (cell, &zj) in row.iter_mut().zip(&z) {
                *cell += wt * zi * zj;
            }
            row[m] += wt * zi * yv;
        }
    }
    let trace: f64 = (0..m).map(|i| a[i][i]).sum();
    for (i, row) in a.iter_mut().enumerate() {
        row[i] += 1e-9 * trace.max(1e-12);
    }
    // Gauss-Jordan elimination with partial pivoting.
    for c in 0..m {
        let p = (c..m).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap_or(c);
        a.swap(c, p);
        let pivot = a[c].clone();
        if pivot[c].abs() < 1e-300 {
            continue;
        }
        for (r, row) in a.iter_mut().enumerate() {
            let f = row[c] / pivot[c];
            if r != c && f != 0.0 {
                for (x, p) in row.iter_mut().zip(&pivot).skip(c) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..m).map(|i| if a[i][i].abs() < 1e-300 { 0.0 } else { a[i][m] / a[i][i] / scale[i] }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_a_hand_made_plane_and_survives_a_constant_column() {
        // y = 3 + 2·a + 5·b, exactly.
        let rows: Vec<Vec<f64>> =
            [(1.0, 2.0), (4.0, 1.0), (2.0, 7.0), (9.0, 3.0)].iter().map(|&(a, b)| vec![1.0, a, b]).collect();
        let y: Vec<f64> = rows.iter().map(|r| 3.0 + 2.0 * r[1] + 5.0 * r[2]).collect();
        let x: Vec<&[f64]> = rows.iter().map(|r| r.as_slice()).collect();
        let b = least_squares(&x, &y, &[1.0; 4]);
        for (got, want) in b.iter().zip([3.0, 2.0, 5.0]) {
            assert!((got - want).abs() < 1e-5, "{b:?}");
        }
        // A column equal to the intercept: the split is arbitrary, the predictions are not.
        let rows2: Vec<Vec<f64>> = rows.iter().map(|r| vec![1.0, 1.0, r[1], r[2]]).collect();
        let x2: Vec<&[f64]> = rows2.iter().map(|r| r.as_slice()).collect();
        let b2 = least_squares(&x2, &y, &[1.0; 4]);
        for (r, want) in rows2.iter().zip(&y) {
            let got: f64 = r.iter().zip(&b2).map(|(x, b)| x * b).sum();
            assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        }
    }

    #[test]
    fn conv_features_pad_kernel_rows_to_four_and_pair_filters() {
        let arch = crate::model::zoo::tiny(10);
        let shapes = arch.shapes().unwrap();
        let i = arch.conv_nodes()[0];
        let Node::Conv { kernel, out, .. } = &arch.nodes[i] else { unreachable!() };
        let (k, ci, co) = (*kernel as f64, arch.input.c as f64, *out as f64);
        assert_eq!((k, ci), (3.0, 3.0));
        // Three input channels: a 3-wide row of 9 elements, padded to 12 (a tail), 3 rows.
        let pairs = (co / 2.0).ceil();
        assert_eq!(features(&arch, &shapes, Some(i)), vec![1.0, 36.0, co, pairs * 36.0, pairs, 1.0, pairs, 36.0]);
    }
}
