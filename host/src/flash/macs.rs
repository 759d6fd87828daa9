//! MAC counting: multiply-accumulates per op, computed from the `.pare` file itself.

/// MACs of a decoded model (conv and dense), computed from the file itself.
pub fn macs_of(rt: &pare_device::Runtime<'_>) -> u64 {
    layer_macs(rt).iter().sum()
}

/// MACs of every op in order (0 for ops without multiply-accumulates).
pub fn layer_macs(rt: &pare_device::Runtime<'_>) -> Vec<u64> {
    let m = rt.model();
    m.ops
        .iter()
        .map(|op| match op {
            Err(_) => 0,
            Ok(op) => match op {
                pare_format::Op::Conv2d(c) => {
                    let (i, o) = (m.buffer(c.input), m.buffer(c.output));
                    match (i, o) {
                        (Some(i), Some(o)) => u64::from(o.h * o.w * o.c) * u64::from(c.kernel[0] * c.kernel[1] * i.c),
                        _ => 0,
                    }
                }
                pare_format::Op::Dense(d) => match (m.buffer(d.input), m.buffer(d.output)) {
                    (Some(i), Some(o)) => u64::from(i.c) * u64::from(o.c),
                    _ => 0,
                },
                pare_format::Op::MaxPool2d(_)
                | pare_format::Op::AvgPool2d(_)
                | pare_format::Op::GlobalAvgPool(_)
                | pare_format::Op::Add(_)
                | pare_format::Op::ChannelPlace(_)
                | pare_format::Op::Flatten(_) => 0,
            },
        })
        .collect()
}
