//! Channel placement with spatial subsampling: CIFAR ResNet's option-A shortcut.

use pare_format::Table;

#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub ih: usize,
    pub iw: usize,
    pub ic: usize,
    pub oh: usize,
    pub ow: usize,
    pub oc: usize,
    pub stride: usize,
}

pub fn place<T: Copy>(g: &Geometry, x: &[T], channels: &Table<'_, u16>, zero: T, y: &mut [T]) -> Option<()> {
    y.fill(zero);
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let src = ((oy * g.stride) * g.iw + ox * g.stride) * g.ic;
            let dst = (oy * g.ow + ox) * g.oc;
            let pixel = x.get(src..src + g.ic)?;
            for (v, ch) in pixel.iter().zip(channels.iter()) {
                if ch != pare_format::ChannelPlace::DROP {
                    *y.get_mut(dst + usize::from(ch))? = *v;
                }
            }
        }
    }
    Some(())
}
