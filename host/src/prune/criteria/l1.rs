//! L1 (Li et al. 2017): a filter's score is the sum of its weights' magnitudes, Σ|W|.

use super::support::{conv_nodes, values};
use super::Scores;
use crate::model::Net;

/// Σ|W| of every filter of every conv node.
pub(super) fn l1(net: &Net) -> Scores {
    conv_nodes(net)
        .into_iter()
        .zip(&net.convs)
        .map(|(i, cb)| (i, values(cb.weight.val().abs().sum_dim(1).sum_dim(2).sum_dim(3).flatten(0, 3))))
        .collect()
}
