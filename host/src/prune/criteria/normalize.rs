//! Normalisation and reduction: each layer's scores normalised ([`Normalize`]), then the scores
//! of a channel space's producers combined into the space's ([`GroupReduce`]).

use super::Scores;
use crate::channels::Groups;

/// Per-layer normalisation before global ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Normalize {
    /// Unit L2 norm per layer (the paper's). A layer of n channels then scores about 1/√n per
    /// channel, so wide layers (ResNet-50's residual streams, 4× its internal layers) rank low.
    L2,
    /// Unit root-mean-square per layer (L2 norm / √n): the same order within a layer, one scale
    /// across layers of different widths.
    Rms,
    None,
}

/// How a channel space's score combines its producers' (normalised) scores. A residual
/// stream has 7–19 producers: with `sum` its channels outscore every single layer's and the
/// streams are never pruned; `mean` and `max` put them on one scale with internal layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GroupReduce {
    Sum,
    #[default]
    Mean,
    Max,
}

/// Divides each layer's scores by their L2 norm or root-mean-square (or leaves them).
pub fn normalize(scores: &Scores, how: Normalize) -> Scores {
    scores
        .iter()
        .map(|(i, v)| {
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            let by = match how {
                Normalize::L2 => norm,
                Normalize::Rms => norm / (v.len().max(1) as f64).sqrt(),
                Normalize::None => 1.0,
            };
            let v = if by > 0.0 { v.iter().map(|x| x / by).collect() } else { v.clone() };
            (*i, v)
        })
        .collect()
}

/// Score of each channel of each space: its producers' (normalised) scores combined by
/// `reduce`.
pub fn group_scores(groups: &Groups, scores: &Scores, reduce: GroupReduce) -> Vec<Vec<f64>> {
    groups
        .spaces
        .iter()
        .map(|s| {
            let members: Vec<&Vec<f64>> = s.producers.iter().filter_map(|p| scores.get(p)).collect();
            (0..s.channels)
                .map(|c| {
                    let vals = members.iter().filter_map(|m| m.get(c).copied());
                    match reduce {
                        GroupReduce::Sum => vals.sum(),
                        GroupReduce::Mean => vals.sum::<f64>() / members.len().max(1) as f64,
                        GroupReduce::Max => vals.fold(0.0, f64::max),
                    }
                })
                .collect()
        })
        .collect()
}
