//! MaxPool and AveragePool, and ReduceMean over height and width (a global average pool).

use super::*;

/// Output size of a window `k`/`s` with padding `p` on each side over `n`, rounding down
/// (`ceil = false`) or up as ONNX and PyTorch do with `ceil_mode` (the last window must start
/// inside the input or its left padding).
fn pooled(n: usize, k: usize, s: usize, p: usize, ceil: bool) -> Option<usize> {
    let span = (n + 2 * p).checked_sub(k)?;
    let mut out = if ceil { span.div_ceil(s) } else { span / s } + 1;
    if ceil && (out - 1) * s >= n + p {
        out -= 1;
    }
    Some(out)
}

impl Importer<'_> {
    pub(super) fn pool(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let max = at.n.op == "MaxPool";
        if at.n.outputs.iter().skip(1).any(|x| !x.is_empty()) {
            return Err(at.refuse("the Indices output is not supported"));
        }
        if !at.n.attrs.contains_key("kernel_shape") {
            return Err(at.refuse("no kernel_shape"));
        }
        let k = at.square("kernel_shape", 1, 1)?;
        // ONNX's default stride is 1 (PyTorch writes the kernel size explicitly).
        let s = at.square("strides", 1, 1)?;
        at.no_dilation()?;
        // storage_order only orders the Indices output, refused above; count_include_pad only
        // matters with padding, which average pools refuse below.
        let storage = at.int("storage_order", 0)?;
        let count_pad = at.int("count_include_pad", 0)?;
        if !(0..=1).contains(&storage) || !(0..=1).contains(&count_pad) {
            return Err(at.refuse("storage_order and count_include_pad must be 0 or 1"));
        }
        let input = self.get(at, 0)?;
        let x = self.shape(input)?;
        let [t, l, b, r] = at.window_pads(k, s, x.h, x.w)?;
        let p = t;
        if [l, b, r].iter().any(|&q| q != p) {
            return Err(at.refuse_attr(
                if at.n.attrs.contains_key("pads") { "pads" } else { "auto_pad" },
                &format!("asymmetric padding [{t}, {l}, {b}, {r}] of a pool is not supported"),
            ));
        }
        if !max && p != 0 {
            return Err(at.refuse_attr(
                if at.n.attrs.contains_key("pads") { "pads" } else { "auto_pad" },
                "padded average pools are not supported",
            ));
        }
        if max && p > 0 && 2 * p >= k {
            return Err(at.refuse_attr("pads", "padding of half the kernel or more leaves windows wholly outside"));
        }
        match at.int("ceil_mode", 0)? {
            0 => {}
            1 => {
                let same = |n: usize| pooled(n, k, s, p, true) == pooled(n, k, s, p, false);
                if !(same(x.h) && same(x.w)) {
                    return Err(at.refuse_attr(
                        "ceil_mode",
                        &format!("rounding up changes the output size over this {}×{} input (not supported)", x.h, x.w),
                    ));
                }
            }
            _ => return Err(at.refuse_attr("ceil_mode", "must be 0 or 1")),
        }
        let node = if max {
            Node::MaxPool { input, kernel: k, stride: s, padding: p }
        } else {
            Node::AvgPool { input, kernel: k, stride: s }
        };
        self.push(node, out);
        Ok(())
    }

    /// ReduceMean over height and width: a global average pool (keepdims or not).
    pub(super) fn reduce_mean(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        if !height_and_width(&self.axes(at)?.unwrap_or_default()) {
            return Err(at.refuse_attr("axes", "only the mean over height and width (axes 2, 3) is supported"));
        }
        if !(0..=1).contains(&at.int("keepdims", 1)?) {
            return Err(at.refuse_attr("keepdims", "must be 0 or 1"));
        }
        let input = self.get(at, 0)?;
        self.push(Node::GlobalAvgPool { input }, out);
        Ok(())
    }
}
