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

pub fn max_i8(g: &Window, x: &[i8], y: &mut [i8]) -> Option<()> {
    pool(g, x, y, |v, _| v.max())
}

pub fn avg_f32(g: &Window, x: &[f32], y: &mut [f32]) -> Option<()> {
    pool(g, x, y, |v, n| (n > 0).then(|| v.sum::<f32>() / n as f32))
}

/// Rounded average with the same scale and zero point in and out (TFLite `AveragePool`).
pub fn avg_i8(g: &Window, x: &[i8], y: &mut [i8]) -> Option<()> {
    pool(g, x, y, |v, n| {
        let n = i32::try_from(n).ok().filter(|&n| n > 0)?;
        let sum: i32 = v.map(i32::from).sum();
        let rounded = if sum > 0 { (sum + n / 2) / n } else { (sum - n / 2) / n };
        Some(rounded.clamp(-128, 127) as i8)
    })
}
