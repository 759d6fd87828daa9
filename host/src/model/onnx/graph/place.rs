//! Slice and Pad on activations: strided subsampling and zero channel padding (an option-A
//! shortcut), and zero padding of height and width taken over by the conv after it.

use super::*;

impl Importer<'_> {
    /// `x[:, :, ::s, ::t]` on an activation: a subsampling, placed by the Pad after it.
    pub(super) fn slice(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let data = at.n.inputs.first().cloned().unwrap_or_default();
        let (base, mut sh, mut sw) = match (self.pending.get(&data), self.src.get(&data)) {
            (Some(&p), _) => p,
            (None, Some(&s)) => (s, 1, 1),
            _ => return Err(at.refuse("slices only an activation")),
        };
        let (starts, ends, axes) =
            (self.ints_of(at, 1, "starts")?, self.ints_of(at, 2, "ends")?, self.ints_of(at, 3, "axes")?);
        let steps = if at.n.inputs.len() > 4 { self.ints_of(at, 4, "steps")? } else { vec![1; axes.len()] };
        if [ends.len(), axes.len(), steps.len()].iter().any(|&l| l != starts.len()) {
            return Err(at.refuse("starts, ends, axes and steps differ in length"));
        }
        for (((&s, &e), &a), &st) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
            let whole = s == 0 && e >= i64::from(i32::MAX);
            match (a, whole, st) {
                (2 | -2, true, 1..=MAX_WINDOW) => sh *= st as usize,
                (3 | -1, true, 1..=MAX_WINDOW) => sw *= st as usize,
                _ => {
                    return Err(at.refuse(
                        "only whole-axis strided slices of height and width (x[:, :, ::s, ::s]) are supported",
                    ))
                }
            }
        }
        if sh.max(sw) > MAX_WINDOW as usize {
            return Err(at.refuse("subsampling stride too large"));
        }
        self.pending.insert(out, (base, sh, sw));
        Ok(())
    }

    /// Zero padding: of height and width before a conv (absorbed by it), or of channels after an
    /// equal subsampling (an option-A shortcut's channel placement).
    pub(super) fn pad(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let data = at.n.inputs.first().cloned().unwrap_or_default();
        let (base, sh, sw) = match (self.pending.get(&data), self.src.get(&data)) {
            (Some(&p), _) => p,
            (None, Some(&s)) => (s, 1, 1),
            _ => return Err(at.refuse("pads only an activation")),
        };
        let pads = self.ints_of(at, 1, "pads")?;
        let value =
            if at.n.inputs.get(2).is_some_and(|x| !x.is_empty()) { self.ints_of(at, 2, "value")? } else { vec![0] };
        if at.n.inputs.get(3).is_some_and(|x| !x.is_empty()) {
            return Err(at.refuse("the axes input is not supported"));
        }
        let mode = at.string("mode", "constant")?;
        if mode != "constant" || value.iter().any(|&v| v != 0) {
            return Err(at.refuse_attr("mode", "only constant-zero padding is supported"));
        }
        if pads.iter().any(|x| !(0..=MAX_WINDOW).contains(x)) {
            return Err(at.refuse(format!("pads {pads:?} must lie in 0..={MAX_WINDOW}")));
        }
        if let [0, 0, t, l, 0, 0, b, r] = pads[..] {
            if (sh, sw) != (1, 1) {
                return Err(at.refuse("height/width padding after a subsampling is not supported"));
            }
            self.spatial.insert(out, (base, [t as usize, l as usize, b as usize, r as usize]));
            return Ok(());
        }
        let [0, c0, 0, 0, 0, c1, 0, 0] = pads[..] else {
            return Err(
                at.refuse("only zero padding of the channel axis, or of height and width before a conv, is supported")
            );
        };
        if sh != sw {
            return Err(at.refuse("channel padding after an unequal H/W subsampling is not supported"));
        }
        let ci = self.shape(base)?.c;
        let (c0, c1) = (c0 as usize, c1 as usize);
        let node = Node::ChannelPlace {
            input: base,
            stride: sh,
            out: ci + c0 + c1,
            channels: (0..ci).map(|c| Some(c + c0)).collect(),
        };
        self.push(node, out);
        Ok(())
    }
}
