//! Every kernel against a plain reference written separately here (index formulas, no tricks),
//! on odd shapes: 1×1 spatial, channels not a multiple of 4, stride 2 with odd sizes, padding.

use pare_device::ops::{add, conv, dense, place, pool, simd, Window};
use pare_device::quant::multiply_by_quantized_multiplier;
use pare_format::{AddQuant, Table};
use proptest::prelude::*;

fn lcg(seed: &mut u64) -> u32 {
    *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (*seed >> 33) as u32
}

fn rand_f32(n: usize, seed: &mut u64) -> Vec<f32> {
    (0..n).map(|_| (lcg(seed) % 2000) as f32 / 1000.0 - 1.0).collect()
}

fn rand_i8(n: usize, seed: &mut u64) -> Vec<i8> {
    (0..n).map(|_| (lcg(seed) % 256) as u8 as i8).collect()
}

#[derive(Debug, Clone, Copy)]
struct Geo {
    ih: usize,
    iw: usize,
    ic: usize,
    oc: usize,
    k: usize,
    s: usize,
    p: usize,
}

impl Geo {
    fn out(&self) -> (usize, usize) {
        ((self.ih + 2 * self.p - self.k) / self.s + 1, (self.iw + 2 * self.p - self.k) / self.s + 1)
    }
    fn window(&self) -> Window {
        let (oh, ow) = self.out();
        Window {
            ih: self.ih,
            iw: self.iw,
            ic: self.ic,
            oh,
            ow,
            oc: self.oc,
            kh: self.k,
            kw: self.k,
            sh: self.s,
            sw: self.s,
            pt: self.p,
            pl: self.p,
        }
    }
}

fn geo() -> impl Strategy<Value = Geo> {
    (1usize..8, 1usize..8, 1usize..20, 1usize..12, 1usize..4, 1usize..3, 0usize..2).prop_filter_map(
        "window fits",
        |(ih, iw, ic, oc, k, s, p)| {
            let p = p.min(k - 1);
            (ih + 2 * p >= k && iw + 2 * p >= k).then_some(Geo { ih, iw, ic, oc, k, s, p })
        },
    )
}

/// Reference convolution: x[y][x][c] NHWC, w[o][ky][kx][c] OHWI, real arithmetic.
fn conv_ref(g: &Geo, x: &[f64], w: &[f64], b: &[f64]) -> Vec<f64> {
    let (oh, ow) = g.out();
    let mut y = vec![0.0; oh * ow * g.oc];
    for oy in 0..oh {
        for ox in 0..ow {
            for o in 0..g.oc {
                let mut acc = b[o];
                for ky in 0..g.k {
                    for kx in 0..g.k {
                        let iy = (oy * g.s + ky) as isize - g.p as isize;
                        let ix = (ox * g.s + kx) as isize - g.p as isize;
                        if iy < 0 || ix < 0 || iy >= g.ih as isize || ix >= g.iw as isize {
                            continue;
                        }
                        for c in 0..g.ic {
                            acc += x[(iy as usize * g.iw + ix as usize) * g.ic + c]
                                * w[((o * g.k + ky) * g.k + kx) * g.ic + c];
                        }
                    }
                }
                y[(oy * ow + ox) * g.oc + o] = acc;
            }
        }
    }
    y
}

/// conv_i8 against the real-arithmetic reference convolution and the reference requantisation.
fn check_conv_i8(g: &Geo, seed: u64, relu: bool, zp_in: i32, zp_out: i32) -> Result<(), TestCaseError> {
    check_conv_i8_in(&mut conv::Scratch::new(), g, seed, relu, zp_in, zp_out)
}

/// [`check_conv_i8`] working in a given scratch (what earlier convolutions left in it included).
fn check_conv_i8_in(
    scratch: &mut conv::Scratch,
    g: &Geo,
    seed: u64,
    relu: bool,
    zp_in: i32,
    zp_out: i32,
) -> Result<(), TestCaseError> {
    let g = *g;
    let mut s = seed;
    let x = rand_i8(g.ih * g.iw * g.ic, &mut s);
    let w: Vec<i8> = rand_i8(g.oc * g.k * g.k * g.ic, &mut s).into_iter().map(|v| v.max(-127)).collect();
    let b: Vec<i32> = (0..g.oc).map(|_| (lcg(&mut s) % 20000) as i32 - 10000).collect();
    let m: Vec<i32> = (0..g.oc).map(|_| (1 << 30) + (lcg(&mut s) % (1 << 29)) as i32).collect();
    let sh: Vec<i8> = (0..g.oc).map(|_| -((lcg(&mut s) % 10) as i8)).collect();
    let (bb, mb, sb) = (Table::<i32>::encode(&b), Table::<i32>::encode(&m), Table::<i8>::encode(&sh));
    let (bt, mt, st) = (Table::new(g.oc as u32, &bb), Table::new(g.oc as u32, &mb), Table::new(g.oc as u32, &sb));
    let q = conv::Requant { bias: &bt, multipliers: &mt, shifts: &st, in_zp: zp_in, out_zp: zp_out };
    let (oh, ow) = g.out();
    let mut y = vec![0i8; oh * ow * g.oc];
    conv::conv_i8_in(scratch, &g.window(), &x, &w, &q, relu, &mut y).unwrap();
    // Reference accumulator: padded taps contribute (zp_in − zp_in)·w = 0, so they are skipped.
    let xs: Vec<f64> = x.iter().map(|&v| f64::from(i32::from(v) - zp_in)).collect();
    let ws: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
    let acc = conv_ref(&g, &xs, &ws, &b.iter().map(|&v| f64::from(v)).collect::<Vec<_>>());
    for (i, (got, a)) in y.iter().zip(&acc).enumerate() {
        let o = i % g.oc;
        let r = multiply_by_quantized_multiplier(*a as i32, m[o], i32::from(sh[o])) + zp_out;
        let lo = if relu { zp_out } else { -128 };
        prop_assert_eq!(i32::from(*got), r.clamp(lo, 127), "output {} of {:?}", i, g);
    }
    Ok(())
}

/// More output channels than one accumulator block (256), odd counts, odd input channels, and
/// receptive fields past the blocked kernel.
#[test]
fn conv_i8_over_several_channel_blocks() {
    // The last two: receptive fields over the blocked kernel's limit (1,152), odd filter counts.
    for (ic, oc, k, s, p) in
        [(3, 258, 3, 1, 1), (5, 513, 1, 2, 0), (16, 257, 3, 2, 1), (130, 5, 3, 1, 1), (1200, 3, 1, 1, 0)]
    {
        let g = Geo { ih: 5, iw: 6, ic, oc, k, s, p };
        check_conv_i8(&g, 7 + oc as u64, oc % 2 == 0, -3, 5).unwrap();
    }
}

/// One scratch through a run of layers, as the runtime lends it: wide layers first (they fill
/// it), then thin ones over whole 32×32 planes (long blocks, a short last block), strided, odd
/// widths, 1×1, and receptive fields past the blocked kernel (the pair path shares the scratch);
/// each against the reference.
#[test]
fn conv_i8_reuses_one_scratch_across_layers_of_every_width() {
    let mut scratch = conv::Scratch::new();
    let layers = [
        (8, 8, 64, 64, 3, 1, 1),
        (9, 7, 16, 200, 3, 1, 1),
        (32, 32, 3, 12, 3, 1, 1),
        (32, 32, 12, 4, 3, 1, 1),
        (32, 32, 4, 12, 3, 1, 1),
        (31, 29, 5, 7, 3, 1, 1),
        (32, 32, 12, 8, 3, 2, 1),
        (17, 19, 9, 3, 1, 2, 0),
        (16, 16, 13, 1, 3, 1, 0),
        (32, 32, 2, 2, 3, 1, 1),
        (6, 6, 72, 5, 3, 1, 1),
        (8, 8, 64, 64, 3, 1, 1),
        (5, 5, 70, 3, 3, 2, 1),
    ];
    for (i, (ih, iw, ic, oc, k, s, p)) in layers.into_iter().enumerate() {
        let g = Geo { ih, iw, ic, oc, k, s, p };
        check_conv_i8_in(&mut scratch, &g, 101 + i as u64, i % 2 == 0, -7 + i as i32, 3 - i as i32).unwrap();
    }
}

/// The row-slot path (channel counts that are multiples of four, even output widths) against the
/// reference: several blocks of output rows (the first, a 32×32 plane of 16 channels, takes 5
/// rows per block and ends on a short block), stride 2, no padding, 1×1 and 2×2 kernels, a
/// receptive field at the blocked kernel's limit; each geometry checked to take that path (and a
/// 1×1 stride-2 shortcut checked not to).
#[test]
fn conv_i8_row_slots_match_reference() {
    let mut scratch = conv::Scratch::new();
    let layers = [
        (32, 32, 16, 16, 3, 1, 1),
        (32, 32, 16, 32, 3, 2, 1),
        (16, 16, 32, 32, 3, 1, 1),
        (8, 8, 64, 64, 3, 1, 1),
        (9, 12, 8, 6, 1, 1, 0),
        (7, 8, 4, 3, 3, 1, 0),
        (6, 6, 4, 5, 2, 2, 1),
        (32, 32, 4, 12, 3, 1, 1),
        (12, 10, 20, 7, 3, 1, 1),
    ];
    let shortcut = Geo { ih: 16, iw: 16, ic: 16, oc: 32, k: 1, s: 2, p: 0 };
    assert!(!pare_device::ops::conv_rows::applies(&shortcut.window()));
    for (i, (ih, iw, ic, oc, k, s, p)) in layers.into_iter().enumerate() {
        let g = Geo { ih, iw, ic, oc, k, s, p };
        assert!(pare_device::ops::conv_rows::applies(&g.window()), "{g:?} takes the row-slot path");
        check_conv_i8_in(&mut scratch, &g, 301 + i as u64, i % 2 == 1, 5 - i as i32, -9 + i as i32).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn conv_f32_matches_reference(g in geo(), seed in any::<u64>(), relu in any::<bool>()) {
        let mut s = seed;
        let x = rand_f32(g.ih * g.iw * g.ic, &mut s);
        let w = rand_f32(g.oc * g.k * g.k * g.ic, &mut s);
        let b = rand_f32(g.oc, &mut s);
        let (wb, bb) = (Table::<f32>::encode(&w), Table::<f32>::encode(&b));
        let (oh, ow) = g.out();
        let mut y = vec![0f32; oh * ow * g.oc];
        conv::conv_f32(&g.window(), &x, &Table::new(w.len() as u32, &wb), &Table::new(b.len() as u32, &bb), relu, &mut y).unwrap();
        let f = |v: &[f32]| v.iter().map(|&a| f64::from(a)).collect::<Vec<_>>();
        let want = conv_ref(&g, &f(&x), &f(&w), &f(&b));
        for (got, want) in y.iter().zip(&want) {
            let want = if relu { want.max(0.0) } else { *want };
            prop_assert!((f64::from(*got) - want).abs() < 1e-4, "{got} vs {want}");
        }
    }

    #[test]
    fn conv_i8_matches_reference(g in geo(), seed in any::<u64>(), relu in any::<bool>(), zp_in in -128i32..128, zp_out in -128i32..128) {
        check_conv_i8(&g, seed, relu, zp_in, zp_out)?;
    }

    #[test]
    fn pools_match_reference(g in geo(), seed in any::<u64>()) {
        let g = Geo { oc: g.ic, ..g };
        let mut s = seed;
        let x = rand_f32(g.ih * g.iw * g.ic, &mut s);
        let xi = rand_i8(g.ih * g.iw * g.ic, &mut s);
        let (oh, ow) = g.out();
        let (mut ymax, mut yavg) = (vec![0f32; oh * ow * g.ic], vec![0f32; oh * ow * g.ic]);
        let (mut qmax, mut qavg) = (vec![0i8; oh * ow * g.ic], vec![0i8; oh * ow * g.ic]);
        pool::max_f32(&g.window(), &x, &mut ymax).unwrap();
        pool::avg_f32(&g.window(), &x, &mut yavg).unwrap();
        pool::max_i8(&g.window(), &xi, &mut qmax).unwrap();
        pool::avg_i8(&g.window(), &xi, &mut qavg).unwrap();
        for oy in 0..oh { for ox in 0..ow { for c in 0..g.ic {
            let mut vals = vec![];
            let mut qv = vec![];
            for ky in 0..g.k { for kx in 0..g.k {
                let iy = (oy * g.s + ky) as isize - g.p as isize;
                let ix = (ox * g.s + kx) as isize - g.p as isize;
                if iy >= 0 && ix >= 0 && iy < g.ih as isize && ix < g.iw as isize {
                    let at = (iy as usize * g.iw + ix as usize) * g.ic + c;
                    vals.push(x[at]);
                    qv.push(i32::from(xi[at]));
                }
            }}
            let i = (oy * ow + ox) * g.ic + c;
            let mx = vals.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            prop_assert_eq!(ymax[i], mx);
            prop_assert!((yavg[i] - vals.iter().sum::<f32>() / vals.len() as f32).abs() < 1e-5);
            prop_assert_eq!(i32::from(qmax[i]), *qv.iter().max().unwrap());
            // Rounded half away from zero.
            let mean = qv.iter().sum::<i32>() as f64 / qv.len() as f64;
            prop_assert_eq!(i32::from(qavg[i]), mean.round() as i32);
        }}}
    }

    #[test]
    fn dense_matches_reference(n in 1usize..40, m in 1usize..12, seed in any::<u64>(), zp in -128i32..128) {
        let mut s = seed;
        let x = rand_f32(n, &mut s);
        let w = rand_f32(n * m, &mut s);
        let b = rand_f32(m, &mut s);
        let (wb, bb) = (Table::<f32>::encode(&w), Table::<f32>::encode(&b));
        let mut y = vec![0f32; m];
        dense::dense_f32(&x, &Table::new((n * m) as u32, &wb), &Table::new(m as u32, &bb), false, &mut y).unwrap();
        for o in 0..m {
            let want: f32 = b[o] + (0..n).map(|i| x[i] * w[o * n + i]).sum::<f32>();
            prop_assert!((y[o] - want).abs() < 1e-4);
        }
        let xi = rand_i8(n, &mut s);
        let wi = rand_i8(n * m, &mut s);
        let want: Vec<i32> = (0..m).map(|o| (0..n).map(|i| (i32::from(xi[i]) - zp) * i32::from(wi[o * n + i])).sum()).collect();
        for o in 0..m {
            prop_assert_eq!(simd::dot_i8(&xi, &wi[o * n..(o + 1) * n], -zp), want[o]);
            prop_assert_eq!(simd::dot_i8_portable(&xi, &wi[o * n..(o + 1) * n], -zp), want[o]);
        }
    }

    #[test]
    fn add_i8_matches_real_arithmetic(seed in any::<u64>(), za in -20i32..20, zb in -20i32..20, zo in -20i32..20) {
        let mut s = seed;
        let (sa, sb, so) = (0.02f64, 0.05f64, 0.06f64);
        let twice = 2.0 * sa.max(sb);
        let q = |r: f64| pare_device::quant::quantize_multiplier(r);
        let ((am, ash), (bm, bsh), (om, osh)) = (q(sa / twice), q(sb / twice), q(twice / ((1 << 20) as f64 * so)));
        let aq = AddQuant { left_shift: 20, a_multiplier: am, a_shift: ash, b_multiplier: bm, b_shift: bsh, out_multiplier: om, out_shift: osh };
        let a = rand_i8(64, &mut s);
        let b = rand_i8(64, &mut s);
        let mut y = vec![0i8; 64];
        add::add_i8(&a, &b, &aq, [za, zb, zo], false, &mut y);
        for i in 0..64 {
            let real = sa * f64::from(i32::from(a[i]) - za) + sb * f64::from(i32::from(b[i]) - zb);
            let want = ((real / so).round() as i32 + zo).clamp(-128, 127);
            prop_assert!((i32::from(y[i]) - want).abs() <= 1, "{} vs {}", y[i], want);
        }
    }
}

proptest! {
    /// The table-driven int8 add against TFLite's per-element reference `ADD` (three
    /// requantisations per element), exhaustively over all 65,536 input pairs.
    #[test]
    fn add_i8_equals_tflite_reference_for_every_pair(
        sa in 0.001f64..0.2, sb in 0.001f64..0.2, so in 0.001f64..0.4,
        za in -128i32..128, zb in -128i32..128, zo in -128i32..128, relu in any::<bool>(),
    ) {
        use pare_device::quant::{multiply_by_quantized_multiplier as mbqm, quantize_multiplier as q};
        let twice = 2.0 * sa.max(sb);
        let ((am, ash), (bm, bsh), (om, osh)) = (q(sa / twice), q(sb / twice), q(twice / ((1 << 20) as f64 * so)));
        let aq = AddQuant { left_shift: 20, a_multiplier: am, a_shift: ash, b_multiplier: bm, b_shift: bsh, out_multiplier: om, out_shift: osh };
        let a: Vec<i8> = (0..65536).map(|i| (i % 256) as u8 as i8).collect();
        let b: Vec<i8> = (0..65536).map(|i| (i / 256) as u8 as i8).collect();
        let mut y = vec![0i8; 65536];
        add::add_i8(&a, &b, &aq, [za, zb, zo], relu, &mut y);
        let low = if relu { zo.max(-128) } else { -128 };
        for i in 0..65536 {
            let xa = mbqm((i32::from(a[i]) - za) << 20, am, ash);
            let xb = mbqm((i32::from(b[i]) - zb) << 20, bm, bsh);
            let want = (mbqm(xa + xb, om, osh) + zo).clamp(low, 127);
            prop_assert_eq!(i32::from(y[i]), want, "a {} b {}", a[i], b[i]);
        }
    }
}

#[test]
fn channel_place_matches_reference_with_drops() {
    // 3×3×3 input, stride 2 → 2×2×5; channel 1 dropped, channels 0 and 2 to 1 and 4.
    let x: Vec<f32> = (0..27).map(|v| v as f32).collect();
    let ch = Table::<u16>::encode(&[1, pare_format::ChannelPlace::DROP, 4]);
    let g = place::Geometry { ih: 3, iw: 3, ic: 3, oh: 2, ow: 2, oc: 5, stride: 2 };
    let mut y = vec![9f32; 20];
    place::place(&g, &x, &Table::new(3, &ch), 0.0, &mut y).unwrap();
    // Hand-derived: pixel (oy, ox) reads input pixel (2oy, 2ox) = index (2oy·3 + 2ox)·3.
    let mut want = vec![0f32; 20];
    for (o, src) in [(0usize, 0usize), (1, 2), (2, 6), (3, 8)] {
        want[o * 5 + 1] = (src * 3) as f32;
        want[o * 5 + 4] = (src * 3 + 2) as f32;
    }
    assert_eq!(y, want);
}

#[test]
fn add_f32_with_relu() {
    let mut y = [0f32; 3];
    add::add_f32(&[1.0, -2.0, 0.5], &[0.5, 1.0, -1.0], true, &mut y);
    assert_eq!(y, [1.5, 0.0, 0.0]);
}

/// `Window::taps` (now computed from `Window::span`) against its definition: every kernel index
/// whose input index `o·stride + k − pad` lies in `0..size`.
#[test]
fn taps_equal_their_definition() {
    for o in 0usize..6 {
        for stride in 1usize..4 {
            for pad in 0..4 {
                for kernel in 1..6 {
                    for size in 1..7 {
                        let want: Vec<(usize, usize)> = (0..kernel)
                            .filter_map(|k| {
                                let i = (o * stride + k).checked_sub(pad)?;
                                (i < size).then_some((k, i))
                            })
                            .collect();
                        let got: Vec<(usize, usize)> = Window::taps(o, stride, pad, kernel, size).collect();
                        assert_eq!(got, want, "o {o} stride {stride} pad {pad} kernel {kernel} size {size}");
                    }
                }
            }
        }
    }
}

/// A valid pooling window 2^31 wide with padding 2^31 − 1 used to loop over
/// every kernel position (minutes per image); the work is now its in-bounds taps. Output (y, x)
/// covers input rows 0..=y and columns 0..=x (taps o + k − (2^31 − 1) for k < 2^31).
#[test]
fn a_huge_pooling_window_costs_only_its_in_bounds_taps() {
    let huge = 1usize << 31;
    let g = Window {
        ih: 4,
        iw: 4,
        ic: 2,
        oh: 4,
        ow: 4,
        oc: 2,
        kh: huge,
        kw: huge,
        sh: 1,
        sw: 1,
        pt: huge - 1,
        pl: huge - 1,
    };
    let xi: Vec<i8> = (0..32).map(|i| (i * 37 % 251) as i8).collect();
    let xf: Vec<f32> = xi.iter().map(|&v| f32::from(v)).collect();
    let (mut qmax, mut qavg, mut fmax, mut favg) = (vec![0i8; 32], vec![0i8; 32], vec![0f32; 32], vec![0f32; 32]);
    pool::max_i8(&g, &xi, &mut qmax).unwrap();
    pool::avg_i8(&g, &xi, &mut qavg).unwrap();
    pool::max_f32(&g, &xf, &mut fmax).unwrap();
    pool::avg_f32(&g, &xf, &mut favg).unwrap();
    for y in 0..4 {
        for x in 0..4 {
            for c in 0..2 {
                let vals: Vec<i32> = (0..=y)
                    .flat_map(|r| (0..=x).map(move |q| (r, q)))
                    .map(|(r, q)| i32::from(xi[(r * 4 + q) * 2 + c]))
                    .collect();
                let o = (y * 4 + x) * 2 + c;
                let max = *vals.iter().max().unwrap();
                let mean = f64::from(vals.iter().sum::<i32>()) / vals.len() as f64;
                assert_eq!(i32::from(qmax[o]), max);
                assert_eq!(fmax[o], max as f32);
                assert!((f64::from(favg[o]) - mean).abs() < 1e-4);
                // TFLite rounds half away from zero.
                let rounded = if mean >= 0.0 { (mean + 0.5).floor() } else { (mean - 0.5).ceil() };
                assert_eq!(f64::from(qavg[o]), rounded, "avg at {o}: mean {mean}");
            }
        }
    }
}
