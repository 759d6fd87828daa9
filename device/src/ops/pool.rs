//! Max and average pooling (average over in-bounds elements only, as TFLite).

use super::Window;

fn pool<T: Copy>(
    g: &Window,
    x: &[T],
    y: &mut [T],
    mut reduce: impl FnMut(&mut dyn Iterator<Item = T>, usize) -> Option<T>,
) -> Option<()> {
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            for c in 0..g.oc {
                let n =
                    Window::taps(oy, g.sh, g.pt, g.kh, g.ih).count() * Window::taps(ox, g.sw, g.pl, g.kw, g.iw).count();
                let mut values = Window::taps(oy, g.sh, g.pt, g.kh, g.ih).flat_map(|(_, iy)| {
                    Window::taps(ox, g.sw, g.pl, g.kw, g.iw)
                        .filter_map(move |(_, ix)| x.get((iy * g.iw + ix) * g.ic + c).copied())
                });
                *y.get_mut((oy * g.ow + ox) * g.oc + c)? = reduce(&mut values, n)?;
            }
        }
    }
    Some(())
}

pub fn max_f32(g: &Window, x: &[f32], y: &mut [f32]) -> Option<()> {
    pool(g, x, y, |v, _| v.reduce(f32::max))
}

/// Channels one pass of the int8 pools keeps in its stack accumulator.
const CHANNELS: usize = 256;

/// int8 pooling: for each output pixel and block of channels, `step` folds every in-bounds
/// tap's channel row (contiguous in NHWC) into `acc`, then `finish` turns `acc` and the tap count
/// into the outputs: whole rows at a time, no per-element window arithmetic.
fn pool_i8(
    g: &Window,
    x: &[i8],
    y: &mut [i8],
    init: i32,
    step: impl Fn(i32, i8) -> i32,
    finish: impl Fn(i32, i32) -> i8,
) -> Option<()> {
    let mut acc = [0i32; CHANNELS];
    for oy in 0..g.oh {
        let (ky0, ky1) = Window::span(oy, g.sh, g.pt, g.kh, g.ih);
        for ox in 0..g.ow {
            let (kx0, kx1) = Window::span(ox, g.sw, g.pl, g.kw, g.iw);
            let n = ((ky1.saturating_sub(ky0)) * (kx1.saturating_sub(kx0))) as i32;
            if n == 0 {
                // A window wholly in the padding has no value (validation rules it out).
                return None;
            }
            let out = y.get_mut((oy * g.ow + ox) * g.oc..(oy * g.ow + ox + 1) * g.oc)?;
            for (c0, out) in (0..).step_by(CHANNELS).zip(out.chunks_mut(CHANNELS)) {
                let acc = acc.get_mut(..out.len())?;
                acc.fill(init);
                for ky in ky0..ky1 {
                    let iy = oy * g.sh + ky - g.pt;
                    for kx in kx0..kx1 {
                        let px = (iy * g.iw + ox * g.sw + kx - g.pl) * g.ic + c0;
                        for (a, v) in acc.iter_mut().zip(x.get(px..px + out.len())?) {
                            *a = step(*a, *v);
                        }
                    }
                }
                for (o, a) in out.iter_mut().zip(acc.iter()) {
                    *o = finish(*a, n);
                }
            }
        }
    }
    Some(())
}

pub fn max_i8(g: &Window, x: &[i8], y: &mut [i8]) -> Option<()> {
    pool_i8(g, x, y, -128, |a, v| a.max(i32::from(v)), |a, _| a as i8)
}

pub fn avg_f32(g: &Window, x: &[f32], y: &mut [f32]) -> Option<()> {
    pool(g, x, y, |v, n| (n > 0).then(|| v.sum::<f32>() / n as f32))
}

/// Rounded average with the same scale and zero point in and out (TFLite `AveragePool`).
pub fn avg_i8(g: &Window, x: &[i8], y: &mut [i8]) -> Option<()> {
    pool_i8(
        g,
        x,
        y,
        0,
        |a, v| a + i32::from(v),
        |sum, n| {
            let rounded = if sum > 0 { (sum + n / 2) / n } else { (sum - n / 2) / n };
            rounded.clamp(-128, 127) as i8
        },
    )
}
