//! Activation ranges for int8: the min and max of every node output over calibration images,
//! or a percentile range (clipping rare outliers) from a 2048-bin histogram per node in a
//! second pass.

use crate::data::{batch, Dataset};
use crate::model::Net;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

/// `(min, max)` of the input and of every node output.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranges {
    pub input: (f32, f32),
    pub nodes: Vec<(f32, f32)>,
}

/// How activation ranges are chosen.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Calibration {
    MinMax,
    /// Keep the central `p` percent of values (e.g. 99.99), per tensor.
    Percentile(f64),
}

const BINS: usize = 2048;

fn for_each_batch(net: &Net, ds: &Dataset, device: &Device, f: &mut dyn FnMut(Option<usize>, &Tensor<4>)) {
    let order: Vec<usize> = (0..ds.len()).collect();
    for idx in order.chunks(64) {
        let (x, _) = batch::<rand::rngs::StdRng>(ds, idx, &net.arch.mean, &net.arch.std, None, device);
        f(None, &x);
        net.forward_hooked(x, &mut |i, t| {
            f(Some(i), &t);
            t
        });
    }
}

/// Ranges by `method` over `ds`.
pub fn calibrate(net: &Net, ds: &Dataset, device: &Device, method: Calibration) -> Ranges {
    let net = net.valid();
    let n = net.arch.nodes.len();
    let mut r =
        Ranges { input: (f32::INFINITY, f32::NEG_INFINITY), nodes: vec![(f32::INFINITY, f32::NEG_INFINITY); n] };
    for_each_batch(&net, ds, device, &mut |i, t| {
        let slot = match i {
            None => &mut r.input,
            Some(i) => &mut r.nodes[i],
        };
        slot.0 = slot.0.min(t.clone().min().into_scalar::<f32>());
        slot.1 = slot.1.max(t.clone().max().into_scalar::<f32>());
    });
    let Calibration::Percentile(p) = method else { return r };
    let mut hist = vec![vec![0u64; BINS]; n + 1];
    let bin = |v: f32, (lo, hi): (f32, f32)| {
        (((v - lo) / (hi - lo).max(1e-12)) * BINS as f32).clamp(0.0, BINS as f32 - 1.0) as usize
    };
    for_each_batch(&net, ds, device, &mut |i, t| {
        let (h, range) = match i {
            None => (&mut hist[n], r.input),
            Some(i) => (&mut hist[i], r.nodes[i]),
        };
        for v in t.clone().into_data().convert::<f32>().iter::<f32>() {
            h[bin(v, range)] += 1;
        }
    });
    let tail = (100.0 - p.clamp(50.0, 100.0)) / 200.0;
    let cut = |h: &[u64], (lo, hi): (f32, f32)| -> (f32, f32) {
        let total: u64 = h.iter().sum();
        let k = (tail * total as f64) as u64;
        let width = (hi - lo) / BINS as f32;
        let (mut acc, mut a) = (0u64, 0usize);
        while a < BINS - 1 && acc + h[a] <= k {
            acc += h[a];
            a += 1;
        }
        let (mut acc, mut b) = (0u64, BINS - 1);
        while b > 0 && acc + h[b] <= k {
            acc += h[b];
            b -= 1;
        }
        (lo + a as f32 * width, lo + (b + 1) as f32 * width)
    };
    Ranges { input: cut(&hist[n], r.input), nodes: (0..n).map(|i| cut(&hist[i], r.nodes[i])).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{zoo, Net};

    #[test]
    fn percentile_ranges_lie_inside_min_max_and_100_percent_is_min_max() {
        let device = Device::flex();
        device.seed(1);
        let net = Net::init(&zoo::tiny(10), &device).unwrap();
        let ds = crate::data::load("synthetic", "test").unwrap().take(32);
        let mm = calibrate(&net, &ds, &device, Calibration::MinMax);
        let all = calibrate(&net, &ds, &device, Calibration::Percentile(100.0));
        let p = calibrate(&net, &ds, &device, Calibration::Percentile(99.0));
        for ((a, b), c) in mm.nodes.iter().zip(&all.nodes).zip(&p.nodes) {
            let w = (a.1 - a.0) / BINS as f32;
            assert!((a.0 - b.0).abs() <= w * 1.01 && (a.1 - b.1).abs() <= w * 1.01, "{a:?} {b:?}");
            assert!(c.0 >= a.0 - 1e-6 && c.1 <= a.1 + w && c.1 - c.0 <= a.1 - a.0 + w, "{a:?} {c:?}");
        }
        // Clipping 1 % of the values must narrow at least one range noticeably.
        assert!(mm.nodes.iter().zip(&p.nodes).any(|(a, c)| (c.1 - c.0) < 0.9 * (a.1 - a.0)));
    }
}
