//! Views of a 1×1 activation. PyTorch's default exporter writes an adaptive average pool that
//! enlarges a 1×1 map (torchvision's VGG at 32×32 pools 1×1 up to 7×7) as Transpose → GatherND →
//! Transpose → ReduceMean → Reshape on the activation. On a 1×1 map every such gather repeats
//! its one pixel, so the importer follows the axes symbolically (batch, channel, repeated) and
//! the dense layer reading the flattened repetition gets its weight columns summed over the
//! copies: the same function, with no upsampling node.

use super::*;

/// One axis of a view.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Axis {
    Batch,
    Channel,
    /// `n` copies of the same values.
    Repeat(usize),
}

/// A value that is its source's 1×1 map, its axes permuted and repeated.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct View {
    pub src: Src,
    pub axes: Vec<Axis>,
}

impl Importer<'_> {
    /// The view `name` is: a recorded one, or a 1×1 activation as `[batch, channel, 1, 1]`.
    fn view_of(&self, name: &str) -> Result<Option<View>, OnnxError> {
        if let Some(v) = self.views.get(name) {
            return Ok(Some(v.clone()));
        }
        match self.src.get(name) {
            Some(&s) if matches!(self.shape(s)?, Shape { h: 1, w: 1, .. }) => {
                Ok(Some(View { src: s, axes: vec![Axis::Batch, Axis::Channel, Axis::Repeat(1), Axis::Repeat(1)] }))
            }
            _ => Ok(None),
        }
    }

    /// Whether the node reads a view this file maps (a Transpose or gather of a 1×1 activation,
    /// or a later step on a recorded view).
    pub(super) fn reads_view(&self, n: &OnnxNode) -> bool {
        let first = n.inputs.first().map_or("", String::as_str);
        self.views.contains_key(first)
            || matches!(n.op.as_str(), "Transpose" | "GatherND")
                && self.src.get(first).is_some_and(|&s| self.shape(s).is_ok_and(|x| (x.h, x.w) == (1, 1)))
    }

    /// Transpose, GatherND, ReduceMean, Reshape or Flatten of a view.
    pub(super) fn view_op(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let first = at.n.inputs.first().cloned().unwrap_or_default();
        let Some(View { src, mut axes }) = self.view_of(&first)? else {
            return Err(at.refuse("reads no activation"));
        };
        let rank = axes.len() as i64;
        let axis_index = |a: i64| usize::try_from(if a < 0 { a + rank } else { a }).ok().filter(|&a| a < axes.len());
        match at.n.op.as_str() {
            "Transpose" => {
                let perm = at.n.ints("perm").map_err(|e| at.refuse(e))?.unwrap_or_else(|| (0..rank).rev().collect());
                let mut seen = vec![false; axes.len()];
                let mut permuted = Vec::with_capacity(axes.len());
                for &p in &perm {
                    match axis_index(p).filter(|&p| perm.len() == axes.len() && !seen[p]) {
                        Some(p) => {
                            seen[p] = true;
                            permuted.push(axes[p]);
                        }
                        None => return Err(at.refuse_attr("perm", "not a permutation of the axes")),
                    }
                }
                axes = permuted;
            }
            "GatherND" => {
                if at.int("batch_dims", 0)? != 0 {
                    return Err(at.refuse_attr("batch_dims", "only 0 is supported"));
                }
                let idx = self.konst(at, 1, "the indices")?;
                let (&k, lead) = idx.dims.split_last().ok_or_else(|| at.refuse("indices without dimensions"))?;
                if k > axes.len() {
                    return Err(at.refuse("indices longer than the data's rank"));
                }
                // Each index picks along a repeated axis: any in-range index gives the same values.
                for (j, &ax) in axes[..k].iter().enumerate() {
                    let Axis::Repeat(n) = ax else {
                        return Err(at.refuse("gathers along the batch or channel axis"));
                    };
                    let n = n as f64;
                    if idx.v.iter().skip(j).step_by(k.max(1)).any(|&i| i < -n || i >= n) {
                        return Err(at.refuse("an index out of range"));
                    }
                }
                axes = lead.iter().map(|&d| Axis::Repeat(d)).chain(axes[k..].iter().copied()).collect();
            }
            "ReduceMean" => {
                let Some(list) = self.axes(at)? else {
                    return Err(at.refuse_attr("axes", "a mean over every axis is not supported"));
                };
                let keep = at.int("keepdims", 1)? == 1;
                let mut drop = vec![false; axes.len()];
                for a in list {
                    match axis_index(a).map(|a| (a, axes[a])) {
                        // The mean of identical copies is the value itself.
                        Some((a, Axis::Repeat(_))) => drop[a] = true,
                        _ => return Err(at.refuse_attr("axes", "a mean over the batch or channels of a view")),
                    }
                }
                axes = axes
                    .iter()
                    .zip(&drop)
                    .filter_map(|(&ax, &d)| match (d, keep) {
                        (false, _) => Some(ax),
                        (true, true) => Some(Axis::Repeat(1)),
                        (true, false) => None,
                    })
                    .collect();
            }
            "Reshape" | "Flatten" => {
                // To (N, C·R): batch first, channels next, then only repetitions.
                let reps: Vec<usize> =
                    axes.iter().filter_map(|a| if let Axis::Repeat(n) = a { Some(*n) } else { None }).collect();
                let order: Vec<Axis> = axes.iter().copied().filter(|a| !matches!(a, Axis::Repeat(1))).collect();
                let ordered = matches!(order[..], [Axis::Batch, Axis::Channel, ..])
                    && order[2..].iter().all(|a| matches!(a, Axis::Repeat(_)));
                let copies = reps.iter().try_fold(1usize, |a, &n| a.checked_mul(n)).filter(|&r| r <= MAX_ACTIVATION);
                let (Some(copies), true) = (copies, ordered) else {
                    return Err(at.refuse("flattens a view that is not (batch, channels, copies)"));
                };
                let c = self.shape(src)?.c;
                let ok = match at.n.op.as_str() {
                    "Flatten" => matches!(at.int("axis", 1)?, 1),
                    _ => match self.ints_of(at, 1, "the shape")?[..] {
                        [n, f] => (-1..=1).contains(&n) && (f == -1 && n != -1 || f == (c * copies) as i64),
                        _ => false,
                    },
                };
                if !ok {
                    return Err(at.refuse("only a flattening to (N, C·H·W) is supported"));
                }
                self.repeated.insert(out, (src, copies));
                return Ok(());
            }
            _ => return Err(at.refuse("this op is not supported on a view")),
        }
        self.views.insert(out, View { src, axes });
        Ok(())
    }
}
