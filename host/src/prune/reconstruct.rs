//! Least-squares repair after a removal (He et al. 2017, "Channel pruning"; ThiNet, Luo et al.
//! 2017): every conv and the classifier of the pruned model, in order, get the weights that best
//! reproduce the original model's output of that layer (a conv's before its BatchNorm, so the
//! BatchNorm's statistics still fit) from the inputs the pruned model actually feeds it —
//! earlier layers already repaired, so each layer also corrects what its predecessors missed.
//!
//! For a conv the unknowns of one output channel are its `in × k × k` weights; the rows are
//! every output position of the calibration images. The normal equations `(PᵀP + λI) W = PᵀY`
//! are formed in f32 by the backend's matmul and solved in f64 by Cholesky, λ a small multiple
//! of `PᵀP`'s mean diagonal.

use crate::channels::Groups;
use crate::data::{batch, Dataset};
use crate::model::{weights, Net, Node, Src};
use burn::module::Module;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// How the repair runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reconstruct {
    /// Calibration images whose features form the least-squares rows.
    pub images: usize,
    /// Ridge λ as a fraction of the mean diagonal of `PᵀP` (0: plain least squares).
    pub ridge: f64,
}

impl Default for Reconstruct {
    fn default() -> Self {
        Self { images: 128, ridge: 1e-3 }
    }
}

/// Why a repair could not be done.
#[derive(Debug, thiserror::Error)]
pub enum ReconstructError {
    #[error("architecture: {0}")]
    Arch(String),
    #[error("least squares for {layer}: the normal equations are not positive definite (give a ridge above 0)")]
    Singular { layer: String },
    #[error("no calibration images to reconstruct from")]
    NoImages,
}

/// `pruned` (`original` with only `keep[space]` channels of each of `groups`' spaces, as
/// [`super::surgery::prune`] made it) with every conv after the input and the classifier
/// refitted by least squares to `original`'s layer outputs on the first `cfg.images` images of
/// `calib`. Returns the model on `out_device` (the caller's training device); the forward
/// passes run on `device`.
#[allow(clippy::too_many_arguments)]
pub fn reconstruct(
    original: &Net,
    pruned: &Net,
    groups: &Groups,
    keep: &[Vec<usize>],
    calib: &Dataset,
    cfg: &Reconstruct,
    device: &Device,
    out_device: &Device,
) -> Result<Net, ReconstructError> {
    let n = cfg.images.min(calib.len());
    if n == 0 {
        return Err(ReconstructError::NoImages);
    }
    let idx: Vec<usize> = (0..n).collect();
    let arch = &pruned.arch;
    let (x, _) = batch::<rand::rngs::StdRng>(calib, &idx, &arch.mean, &arch.std, None, device);
    let orig = original.valid();
    let orig_t = weights::to_tensors(&orig);
    // The original's outputs of every node some layer reads.
    let wanted: Vec<bool> = (0..arch.nodes.len())
        .map(|j| arch.nodes.iter().any(|nd| layer_input(nd).is_some_and(|s| s == Src::Node(j))))
        .collect();
    let mut orig_out: Vec<Option<Tensor<4>>> = vec![None; arch.nodes.len()];
    drop(orig.forward_hooked(x.clone(), &mut |j, t| {
        if wanted[j] {
            orig_out[j] = Some(t.clone());
        }
        t
    }));
    let mut t = weights::to_tensors(&pruned.valid());
    for (i, node) in arch.nodes.iter().enumerate() {
        // A layer reading the image sees what the original saw: its kept rows are already exact.
        let Some(Src::Node(src)) = layer_input(node) else { continue };
        let cur = weights::from_tensors(arch, &t, device).map_err(ReconstructError::Arch)?;
        let mut seen = None;
        drop(cur.forward_hooked(x.clone(), &mut |j, v| {
            if j == src {
                seen = Some(v.clone());
            }
            v
        }));
        let (Some(xp), Some(xo)) = (seen, orig_out[src].clone()) else {
            return Err(ReconstructError::Arch(format!("node {i} reads node {src}, which produced nothing")));
        };
        match node {
            Node::Conv { name, kernel, stride, .. } => {
                let pads = node.conv_pads().unwrap_or([0; 4]);
                let key = format!("{name}.weight");
                let (shape, _) = t[&key].clone();
                let (ow, _) = &orig_t[&key];
                let kept_out: Vec<i64> = keep[groups.node_space[i]].iter().map(|&o| o as i64).collect();
                // Target: the original conv's output at the kept filters, before its BatchNorm.
                let w: Tensor<4> = Tensor::from_data(TensorData::new(orig_t[&key].1.clone(), ow.clone()), device);
                let w = w.select(0, Tensor::from_data(TensorData::new(kept_out, [shape[0]]), device));
                let [pt, pl, pb, pr] = pads;
                let opts = ConvOptions::new_with_padding([*stride; 2], [(pt, pb), (pl, pr)], [1, 1], 1);
                let y = conv2d(xo, w, None, opts);
                let p = patches(xp, *kernel, *stride, pads);
                let [_, co, oh, owd] = y.dims();
                let y: Tensor<2> = y.swap_dims(0, 1).reshape([co, n * oh * owd]).transpose();
                let sol = solve_rows(p, y, cfg.ridge, name)?;
                t.insert(key, (shape, sol));
            }
            Node::Dense { name, .. } => {
                let [_, c, h, w] = xp.dims();
                let c = c * h * w;
                let ones: Tensor<2> = Tensor::ones([n, 1], device);
                let p = Tensor::cat(vec![xp.reshape([n, c]), ones], 1);
                let wk = format!("{name}.weight");
                let bk = format!("{name}.bias");
                let (ws, wv) = &orig_t[&wk];
                let w: Tensor<2> = Tensor::from_data(TensorData::new(wv.clone(), ws.clone()), device);
                let b: Tensor<1> = Tensor::from_data(TensorData::new(orig_t[&bk].1.clone(), [ws[0]]), device);
                let [_, oc, oh, ow] = xo.dims();
                let y = xo.reshape([n, oc * oh * ow]).matmul(w.transpose()) + b.unsqueeze_dim(0);
                let sol = solve_rows(p, y, cfg.ridge, name)?;
                // Rows of `sol` are [out][c weights, bias].
                let out = ws[0];
                let mut nw = Vec::with_capacity(out * c);
                let mut nb = Vec::with_capacity(out);
                for row in sol.chunks(c + 1) {
                    nw.extend_from_slice(&row[..c]);
                    nb.push(row[c]);
                }
                t.insert(wk, (vec![out, c], nw));
                t.insert(bk, (vec![out], nb));
            }
            Node::MaxPool { .. }
            | Node::AvgPool { .. }
            | Node::GlobalAvgPool { .. }
            | Node::Add { .. }
            | Node::ChannelPlace { .. } => {}
        }
    }
    weights::from_tensors(arch, &t, out_device).map_err(ReconstructError::Arch)
}

/// The input of a layer with weights (conv or classifier); `None` for other nodes.
fn layer_input(node: &Node) -> Option<Src> {
    match node {
        Node::Conv { input, .. } | Node::Dense { input, .. } => Some(*input),
        Node::MaxPool { .. }
        | Node::AvgPool { .. }
        | Node::GlobalAvgPool { .. }
        | Node::Add { .. }
        | Node::ChannelPlace { .. } => None,
    }
}

/// im2col: `[n·oh·ow, c·k·k]` patches of `x` (zero padding `[top, left, bottom, right]`), the
/// columns in the weight layout's `(c, ky, kx)` order.
fn patches(x: Tensor<4>, k: usize, stride: usize, [pt, pl, pb, pr]: [usize; 4]) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let v: Vec<f32> = x.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default();
    let oh = (h + pt + pb - k) / stride + 1;
    let ow = (w + pl + pr - k) / stride + 1;
    let d = c * k * k;
    let mut out = vec![0f32; n * oh * ow * d];
    for (r, row) in out.chunks_mut(d).enumerate() {
        let (img, pos) = (r / (oh * ow), r % (oh * ow));
        let (oy, ox) = (pos / ow, pos % ow);
        for ch in 0..c {
            for ky in 0..k {
                let iy = (oy * stride + ky) as isize - pt as isize;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                for kx in 0..k {
                    let ix = (ox * stride + kx) as isize - pl as isize;
                    if ix >= 0 && ix < w as isize {
                        row[(ch * k + ky) * k + kx] = v[((img * c + ch) * h + iy as usize) * w + ix as usize];
                    }
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(out, [n * oh * ow, d]), &device)
}

/// The `[m, d]` solution (row-major, one row per output) of `min ‖P Wᵀ − Y‖² + λ‖W‖²` for
/// `p: [rows, d]`, `y: [rows, m]`.
fn solve_rows(p: Tensor<2>, y: Tensor<2>, ridge: f64, layer: &str) -> Result<Vec<f32>, ReconstructError> {
    let [_, d] = p.dims();
    let [_, m] = y.dims();
    let pt = p.clone().transpose();
    let a = to_f64(pt.clone().matmul(p));
    let b = to_f64(pt.matmul(y));
    let x = solve_normal(a, b, d, m, ridge).ok_or_else(|| ReconstructError::Singular { layer: layer.into() })?;
    // x is [d, m]; the weights are its transpose.
    Ok((0..m).flat_map(|o| (0..d).map(move |j| (o, j))).map(|(o, j)| x[j * m + o] as f32).collect())
}

fn to_f64(t: Tensor<2>) -> Vec<f64> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap_or_default().into_iter().map(f64::from).collect()
}

/// Solves `(A + λ·mean(diag A)·I) X = B` for symmetric positive semi-definite `a: [d, d]` and
/// `b: [d, m]` by Cholesky; `None` when the matrix is not positive definite.
pub fn solve_normal(mut a: Vec<f64>, mut b: Vec<f64>, d: usize, m: usize, ridge: f64) -> Option<Vec<f64>> {
    if a.len() != d * d || b.len() != d * m {
        return None;
    }
    let mean_diag = (0..d).map(|i| a[i * d + i]).sum::<f64>() / d.max(1) as f64;
    let lambda = ridge * mean_diag;
    for i in 0..d {
        a[i * d + i] += lambda;
    }
    // In place: the lower triangle becomes L with A = L Lᵀ.
    for j in 0..d {
        let mut s = a[j * d + j];
        for k in 0..j {
            s -= a[j * d + k] * a[j * d + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return None;
        }
        let l = s.sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / l;
        }
    }
    // L Z = B, then Lᵀ X = Z, column block by column block.
    for i in 0..d {
        for k in 0..i {
            let l = a[i * d + k];
            for c in 0..m {
                b[i * m + c] -= l * b[k * m + c];
            }
        }
        let l = a[i * d + i];
        for c in 0..m {
            b[i * m + c] /= l;
        }
    }
    for i in (0..d).rev() {
        for k in i + 1..d {
            let l = a[k * d + i];
            for c in 0..m {
                b[i * m + c] -= l * b[k * m + c];
            }
        }
        let l = a[i * d + i];
        for c in 0..m {
            b[i * m + c] /= l;
        }
    }
    Some(b)
}
