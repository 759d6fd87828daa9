//! Random: uniform scores from a seeded generator, the baseline every criterion must beat.

use super::support::conv_nodes;
use super::Scores;
use crate::model::Net;
use rand::{Rng, SeedableRng};

/// A uniform draw in [0, 1) per filter of every conv node, seeded with `seed`.
pub(super) fn random(net: &Net, seed: u64) -> Scores {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    conv_nodes(net)
        .into_iter()
        .zip(&net.convs)
        .map(|(i, cb)| (i, (0..cb.weight.dims()[0]).map(|_| rng.random::<f64>()).collect()))
        .collect()
}
