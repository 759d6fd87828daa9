//! The least-squares repair after a removal, against values derived without it: a removed
//! channel that duplicates a kept one must be folded back exactly (the hand-derived answer:
//! the consumer's weights for the two channels add), and an ordinary removal must give the
//! weights of a least-squares problem set up here from a direct convolution and solved by
//! Householder QR on the rows themselves (not the normal equations the library uses).

use burn::tensor::{Device, Tensor};
use pare::channels::Groups;
use pare::data::Dataset;
use pare::model::{weights, Arch, Net, Node, Shape, Src};
use pare::prune::reconstruct::{reconstruct, solve_normal, Reconstruct};
use pare::prune::surgery::prune;

const EPS: f64 = 1e-5;

/// input 2×6×6 → conv a (3×3, pad 1, 3 filters, BN, ReLU) → conv b (3×3, stride 2, padding
/// 0 top/left and 1 bottom/right, 2 filters, BN, ReLU) → global average → dense 2 → 2.
fn arch() -> Arch {
    let conv = |name: &str, input, out, stride, pads| Node::Conv {
        name: name.into(),
        bn: format!("{name}bn"),
        input,
        out,
        kernel: 3,
        stride,
        padding: 1,
        relu: true,
        pads,
    };
    Arch {
        name: "two-conv".into(),
        input: Shape { c: 2, h: 6, w: 6 },
        nodes: vec![
            conv("a", Src::Input, 3, 1, None),
            conv("b", Src::Node(0), 2, 2, Some([0, 0, 1, 1])),
            Node::GlobalAvgPool { input: Src::Node(1) },
            Node::Dense { name: "fc".into(), input: Src::Node(2), out: 2, relu: false },
        ],
        mean: vec![0.5, 0.4],
        std: vec![0.25, 0.3],
        labels: vec!["x".into(), "y".into()],
    }
}

/// A small deterministic generator (the test's own, not the library's).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| (lo + (hi - lo) * self.next()) as f32).collect()
    }
}

/// Weights for [`arch`]; with `duplicate`, conv a's filter 2 (and its BatchNorm) copies filter 0.
fn tensors(duplicate: bool) -> weights::Tensors {
    let mut r = Lcg(7);
    let mut t = weights::Tensors::new();
    let mut aw = r.vec(3 * 2 * 9, -0.6, 0.6);
    let mut bn: Vec<Vec<f32>> = vec![r.vec(3, 0.5, 1.5), r.vec(3, 0.0, 0.4), r.vec(3, -0.2, 0.2), r.vec(3, 0.5, 2.0)];
    if duplicate {
        aw.copy_within(0..18, 36);
        for v in &mut bn {
            v[2] = v[0];
        }
    }
    t.insert("a.weight".into(), (vec![3, 2, 3, 3], aw));
    for (p, v) in ["weight", "bias", "running_mean", "running_var"].iter().zip(bn) {
        t.insert(format!("abn.{p}"), (vec![3], v));
    }
    t.insert("b.weight".into(), (vec![2, 3, 3, 3], r.vec(2 * 3 * 9, -0.5, 0.5)));
    for (p, lo, hi) in
        [("weight", 0.5, 1.5), ("bias", 0.0, 0.5), ("running_mean", -0.3, 0.3), ("running_var", 0.5, 2.0)]
    {
        t.insert(format!("bbn.{p}"), (vec![2], r.vec(2, lo, hi)));
    }
    t.insert("fc.weight".into(), (vec![2, 2], r.vec(4, -1.0, 1.0)));
    t.insert("fc.bias".into(), (vec![2], r.vec(2, -0.2, 0.2)));
    t
}

fn images(n: usize) -> Dataset {
    let mut r = Lcg(11);
    Dataset {
        images: (0..n * 72).map(|_| (r.next() * 256.0) as u8).collect(),
        labels: vec![0; n],
        shape: [2, 6, 6],
        classes: 2,
        source: "test".into(),
        class_names: vec!["x".into(), "y".into()],
    }
}

/// Removes conv a's filter 2 and repairs with `ridge`; returns (original, repaired).
fn repaired(duplicate: bool, ridge: f64, n: usize) -> (Net, Net, Dataset) {
    let device = Device::flex();
    let arch = arch();
    let net = weights::from_tensors(&arch, &tensors(duplicate), &device).unwrap();
    let groups = Groups::of(&arch).unwrap();
    let mut keep = groups.keep_all();
    keep[groups.node_space[0]] = vec![0, 1];
    let pruned = prune(&net, &groups, &keep, &device).unwrap();
    let ds = images(n);
    let cfg = Reconstruct { images: n, ridge };
    let fixed = reconstruct(&net, &pruned, &groups, &keep, &ds, &cfg, &device, &device).unwrap();
    (net, fixed, ds)
}

#[test]
fn a_removed_duplicate_channel_is_folded_back_exactly() {
    let (net, fixed, ds) = repaired(true, 0.0, 8);
    let (t0, t1) = (weights::to_tensors(&net), weights::to_tensors(&fixed));
    let (w, got) = (&t0["b.weight"].1, &t1["b.weight"].1);
    assert_eq!(t1["b.weight"].0, vec![2, 2, 3, 3]);
    for o in 0..2 {
        for k in 0..9 {
            // Channel 2 equals channel 0 everywhere, so its weights move onto channel 0.
            let want0 = f64::from(w[(o * 3) * 9 + k]) + f64::from(w[(o * 3 + 2) * 9 + k]);
            let want1 = f64::from(w[(o * 3 + 1) * 9 + k]);
            let (g0, g1) = (f64::from(got[(o * 2) * 9 + k]), f64::from(got[(o * 2 + 1) * 9 + k]));
            assert!((g0 - want0).abs() < 2e-3, "filter {o} tap {k}: {g0} vs {want0}");
            assert!((g1 - want1).abs() < 2e-3, "filter {o} tap {k}: {g1} vs {want1}");
        }
    }
    // The classifier sees what it saw: its refit is the original.
    for (a, b) in t0["fc.weight"].1.iter().chain(&t0["fc.bias"].1).zip(t1["fc.weight"].1.iter().chain(&t1["fc.bias"].1))
    {
        assert!((a - b).abs() < 2e-3, "classifier {a} vs {b}");
    }
    // And the logits are the original model's.
    let idx: Vec<usize> = (0..ds.len()).collect();
    let (x, _) =
        pare::data::batch::<rand::rngs::StdRng>(&ds, &idx, &net.arch.mean, &net.arch.std, None, &Device::flex());
    let (a, b) = (logits(&net, x.clone()), logits(&fixed, x));
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() < 1e-3, "logits {p} vs {q}");
    }
}

fn logits(net: &Net, x: Tensor<4>) -> Vec<f32> {
    net.forward(x).into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// Conv a's output after BatchNorm (inference) and ReLU, `[n][c][y][x]`, for filters `which`.
fn conv_a(t: &weights::Tensors, arch: &Arch, ds: &Dataset, which: &[usize]) -> Vec<Vec<Vec<Vec<f64>>>> {
    let w = &t["a.weight"].1;
    let g = |p: &str, c: usize| f64::from(t[&format!("abn.{p}")].1[c]);
    (0..ds.len())
        .map(|i| {
            let img = ds.image(i);
            which
                .iter()
                .map(|&o| {
                    (0..6)
                        .map(|y| {
                            (0..6)
                                .map(|x| {
                                    let mut v = 0.0;
                                    for c in 0..2 {
                                        for dy in 0..3 {
                                            for dx in 0..3 {
                                                let (iy, ix) = (y + dy - 1i64, x + dx - 1i64);
                                                if !(0..6).contains(&iy) || !(0..6).contains(&ix) {
                                                    continue;
                                                }
                                                let px = f64::from(img[c * 36 + iy as usize * 6 + ix as usize]) / 255.0;
                                                let px = (px - f64::from(arch.mean[c])) / f64::from(arch.std[c]);
                                                v += f64::from(w[((o * 2 + c) * 3 + dy as usize) * 3 + dx as usize])
                                                    * px;
                                            }
                                        }
                                    }
                                    let bn = (v - g("running_mean", o)) / (g("running_var", o) + EPS).sqrt()
                                        * g("weight", o)
                                        + g("bias", o);
                                    bn.max(0.0)
                                })
                                .collect()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Patches of b (stride 2, padding top/left 0, bottom/right 1) over `a_out`'s channels.
fn b_patches(a_out: &[Vec<Vec<Vec<f64>>>]) -> Vec<Vec<f64>> {
    let mut rows = vec![];
    for img in a_out {
        for oy in 0..3 {
            for ox in 0..3 {
                let mut row = vec![];
                for ch in img {
                    for dy in 0..3 {
                        for dx in 0..3 {
                            let (iy, ix) = (oy * 2 + dy, ox * 2 + dx);
                            row.push(if iy < 6 && ix < 6 { ch[iy][ix] } else { 0.0 });
                        }
                    }
                }
                rows.push(row);
            }
        }
    }
    rows
}

/// Least squares `min ‖A x − y‖` by Householder QR of `A` (rows × cols, rows ≥ cols).
#[allow(clippy::needless_range_loop)]
fn lstsq_qr(mut a: Vec<Vec<f64>>, mut y: Vec<f64>) -> Vec<f64> {
    let (m, n) = (a.len(), a[0].len());
    for k in 0..n {
        let norm = (k..m).map(|i| a[i][k] * a[i][k]).sum::<f64>().sqrt();
        let alpha = if a[k][k] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = (k..m).map(|i| a[i][k]).collect();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|x| x * x).sum();
        if vv == 0.0 {
            continue;
        }
        for j in k..n {
            let s: f64 = (k..m).map(|i| v[i - k] * a[i][j]).sum::<f64>() * 2.0 / vv;
            for i in k..m {
                a[i][j] -= s * v[i - k];
            }
        }
        let s: f64 = (k..m).map(|i| v[i - k] * y[i]).sum::<f64>() * 2.0 / vv;
        for i in k..m {
            y[i] -= s * v[i - k];
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|j| a[i][j] * x[j]).sum();
        x[i] = (y[i] - s) / a[i][i];
    }
    x
}

#[test]
fn the_consumer_refit_matches_a_least_squares_solve_done_another_way() {
    let (net, fixed, ds) = repaired(false, 0.0, 8);
    let arch = net.arch.clone();
    let t0 = weights::to_tensors(&net);
    // Rows: b's patches over the pruned model's inputs (a's filters 0 and 1); targets: the
    // original b's output before its BatchNorm, over all three of a's filters.
    let pruned_in = b_patches(&conv_a(&t0, &arch, &ds, &[0, 1]));
    let full_in = b_patches(&conv_a(&t0, &arch, &ds, &[0, 1, 2]));
    let wb = &t0["b.weight"].1;
    let got = &weights::to_tensors(&fixed)["b.weight"].1;
    let mut worst: f64 = 0.0;
    for o in 0..2 {
        let y: Vec<f64> =
            full_in.iter().map(|r| r.iter().enumerate().map(|(j, v)| v * f64::from(wb[o * 27 + j])).sum()).collect();
        let want = lstsq_qr(pruned_in.clone(), y);
        for (j, w) in want.iter().enumerate() {
            let g = f64::from(got[o * 18 + j]);
            worst = worst.max((g - w).abs());
            assert!((g - w).abs() < 2e-3 * (1.0 + w.abs()), "filter {o} weight {j}: {g} vs {w}");
        }
    }
    // The repair is not a no-op here: the kept weights moved.
    let moved = (0..2)
        .flat_map(|o| (0..18).map(move |j| (o, j)))
        .any(|(o, j)| (f64::from(got[o * 18 + j]) - f64::from(wb[o * 27 + j])).abs() > 1e-2);
    assert!(moved, "the refit should differ from the kept weights (worst deviation {worst})");
}

#[test]
fn the_cholesky_solve_matches_a_hand_solved_system() {
    // [[4, 2], [2, 3]] x = [[2, 1], [5, 0]]: x = [[-0.5, 0.375], [2, -0.25]] (by hand: det 8).
    let x = solve_normal(vec![4.0, 2.0, 2.0, 3.0], vec![2.0, 1.0, 5.0, 0.0], 2, 2, 0.0).unwrap();
    for (g, w) in x.iter().zip([-0.5, 0.375, 2.0, -0.25]) {
        assert!((g - w).abs() < 1e-12, "{g} vs {w}");
    }
    // A ridge of 1 × the mean diagonal (3.5): [[7.5, 2], [2, 6.5]] x = [2, 5] (one column),
    // det 44.75: x = [(13 − 10) / 44.75, (37.5 − 4) / 44.75].
    let x = solve_normal(vec![4.0, 2.0, 2.0, 3.0], vec![2.0, 5.0], 2, 1, 1.0).unwrap();
    assert!((x[0] - 3.0 / 44.75).abs() < 1e-12 && (x[1] - 33.5 / 44.75).abs() < 1e-12, "{x:?}");
    // A singular matrix without a ridge is refused, not solved into infinities.
    assert!(solve_normal(vec![1.0, 1.0, 1.0, 1.0], vec![1.0, 1.0], 2, 1, 0.0).is_none());
}

#[test]
fn nothing_to_fit_from_is_an_error() {
    let device = Device::flex();
    let arch = arch();
    let net = weights::from_tensors(&arch, &tensors(false), &device).unwrap();
    let groups = Groups::of(&arch).unwrap();
    let keep = groups.keep_all();
    let empty = images(0);
    let r = reconstruct(&net, &net, &groups, &keep, &empty, &Reconstruct::default(), &device, &device);
    assert!(r.is_err());
}
