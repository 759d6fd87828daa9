//! Evaluation (logits, top-1, per-class accuracy, confusion matrix) and BatchNorm re-estimation
//! after surgery.

use super::*;

/// Re-estimates every BatchNorm's running mean and variance on `batches` batches of `ds`
/// (in order, no augmentation), as a cumulative average over those batches (PyTorch's
/// `momentum=None`): after surgery the statistics the model carries no longer describe what
/// its layers see. Each layer normalises with the batch's statistics during the passes, as in
/// training. `device` must be an autodiff device (where BatchNorm runs in training mode).
pub fn recalibrate_batchnorm(mut net: Net, ds: &Dataset, batches: usize, batch_size: usize, device: &Device) -> Net {
    let order: Vec<usize> = (0..ds.len()).collect();
    let momenta: Vec<f64> = net.convs.iter().map(|c| c.bn.momentum).collect();
    for (k, idx) in order.chunks(batch_size.max(1)).take(batches).enumerate() {
        for cb in &mut net.convs {
            cb.bn.momentum = 1.0 / (k + 1) as f64;
        }
        let (x, _) = batch::<rand::rngs::StdRng>(ds, idx, &net.arch.mean, &net.arch.std, None, device);
        drop(net.forward(x));
    }
    for (cb, m) in net.convs.iter_mut().zip(momenta) {
        cb.bn.momentum = m;
    }
    net
}

/// Accuracy figures of one evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub samples: usize,
    pub top1: f64,
    pub per_class: Vec<f64>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<usize>>,
    #[serde(skip)]
    pub predictions: Vec<usize>,
}

impl Evaluation {
    pub fn from_predictions(labels: &[u8], predictions: Vec<usize>, classes: usize) -> Self {
        let mut confusion = vec![vec![0usize; classes]; classes];
        for (&l, &p) in labels.iter().zip(&predictions) {
            if (l as usize) < classes && p < classes {
                confusion[l as usize][p] += 1;
            }
        }
        let per_class = confusion
            .iter()
            .enumerate()
            .map(|(i, row)| row[i] as f64 / row.iter().sum::<usize>().max(1) as f64)
            .collect();
        let correct: usize = (0..classes).map(|i| confusion[i][i]).sum();
        Self {
            samples: predictions.len(),
            top1: correct as f64 / predictions.len().max(1) as f64,
            per_class,
            confusion,
            predictions,
        }
    }
}

/// Logits of every image (inference mode, BatchNorms folded: [`Net::folded`]; no augmentation),
/// `batch_size` at a time (at least 1).
pub fn logits(net: &Net, ds: &Dataset, batch_size: usize, device: &Device) -> Vec<Vec<f32>> {
    let batch_size = batch_size.max(1);
    let net = net.valid().folded();
    let mut out = Vec::with_capacity(ds.len());
    let order: Vec<usize> = (0..ds.len()).collect();
    let bar = crate::progress::steps(ds.len().div_ceil(batch_size) as u64, "evaluating");
    for idx in order.chunks(batch_size) {
        let (x, _) = batch::<rand::rngs::StdRng>(ds, idx, &net.arch.mean, &net.arch.std, None, device);
        let y = net.forward(x);
        let [n, k] = y.dims();
        let v: Vec<f32> = y.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
        out.extend((0..n).map(|i| v[i * k..(i + 1) * k].to_vec()));
        bar.inc(1);
    }
    bar.finish_and_clear();
    out
}

/// Top-1, per-class accuracy and confusion matrix.
pub fn evaluate(net: &Net, ds: &Dataset, batch_size: usize, device: &Device) -> Evaluation {
    let preds = logits(net, ds, batch_size, device).iter().map(|l| argmax(l)).collect();
    Evaluation::from_predictions(&ds.labels, preds, net.arch.labels.len())
}

/// Index of the largest value (first on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}
