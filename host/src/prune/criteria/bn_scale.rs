//! BatchNorm scale (network slimming, Liu et al. 2017): a filter's score is |γ| of the
//! BatchNorm after it.

use super::support::{conv_nodes, values};
use super::Scores;
use crate::model::Net;

/// |γ| of every conv node's BatchNorm, per filter.
pub(super) fn bn_scale(net: &Net) -> Scores {
    conv_nodes(net).into_iter().zip(&net.convs).map(|(i, cb)| (i, values(cb.bn.gamma.val().abs()))).collect()
}
