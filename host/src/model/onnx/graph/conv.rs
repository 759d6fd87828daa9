//! Conv (with its BatchNormalization and Relu fused in) and the one-hot 1×1 conv that is a
//! channel placement.

use super::*;

impl Importer<'_> {
    pub(super) fn conv(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let n = at.n;
        let weight = self.konst(at, 1, "the weight")?;
        let (wshape, w) = (weight.dims.clone(), weight.f32());
        let [o, ci, kh, kw] = wshape[..] else {
            return Err(at.refuse(format!("the weight has shape {wshape:?}, not [out, in, kh, kw] (2-D convs only)")));
        };
        if kh != kw || kh == 0 || kh > MAX_WINDOW as usize || o == 0 {
            return Err(
                at.refuse(format!("the weight has shape {wshape:?}: pare's kernels are square, 1..={MAX_WINDOW}"))
            );
        }
        let bias = match n.inputs.get(2).filter(|b| !b.is_empty()) {
            None => None,
            Some(_) => {
                let b = self.konst(at, 2, "the bias")?;
                if b.v.len() != o {
                    return Err(at.refuse(format!("the bias has {} values for {o} output channels", b.v.len())));
                }
                Some(b.f32())
            }
        };
        if at.int("group", 1)? != 1 {
            return Err(at.refuse_attr("group", "grouped and depthwise convolutions are not supported"));
        }
        at.no_dilation()?;
        if at.square("kernel_shape", kh as i64, 1)? != kh {
            return Err(at.refuse_attr("kernel_shape", &format!("differs from the weight's {kh}×{kw}")));
        }
        let s = at.square("strides", 1, 1)?;
        let input = self.get(at, 0)?;
        let x = self.shape(input)?;
        if x.c != ci {
            return Err(at.refuse(format!("the weight reads {ci} input channels, the input has {}", x.c)));
        }
        // A Pad node before the conv, then the conv's own padding (auto_pad sees the padded size).
        let before = n.inputs.first().and_then(|x| self.spatial.get(x)).map_or([0; 4], |(_, p)| *p);
        let own = at.window_pads(kh, s, x.h + before[0] + before[2], x.w + before[1] + before[3])?;
        let pads4: [usize; 4] = [0, 1, 2, 3].map(|k| own[k] + before[k]);
        if pads4.iter().any(|&p| p >= kh) {
            return Err(at.refuse_attr(
                "pads",
                &format!(
                    "padding {pads4:?} reaches the kernel size {kh}: whole windows in the padding are not supported"
                ),
            ));
        }
        let conv_pads = pads4.iter().any(|&p| p != pads4[0]).then_some(pads4);
        let bn_next = self.only_consumer(&out, "BatchNormalization");
        let one_hot = bias.is_none()
            && kh == 1
            && pads4 == [0; 4]
            && w.iter().all(|&x| x == 0.0 || x == 1.0)
            && (0..ci).all(|c| (0..o).filter(|&q| w[q * ci + c] != 0.0).count() <= 1);
        if bn_next.is_none() && one_hot {
            // A bias-free one-hot 1×1 conv: a channel placement.
            let channels = (0..ci).map(|c| (0..o).find(|&q| w[q * ci + c] == 1.0)).collect();
            self.push(Node::ChannelPlace { input, stride: s, out: o, channels }, out);
            return Ok(());
        }
        let name = if n.name.is_empty() { format!("conv{}", at.i) } else { n.name.clone() };
        self.tensors.insert(format!("{name}.weight"), (wshape.clone(), w));
        let (bn, bn_out) = match bn_next {
            Some(bi) => self.batch_norm(bi, o, bias.as_deref())?,
            None => {
                // A plain conv (PyTorch folds BatchNorm into the conv's bias on export): an
                // identity BatchNorm carrying the bias (γ 1, μ 0, σ² 1 − ε).
                let bn = format!("{name}.bn");
                let b = bias.unwrap_or_else(|| vec![0.0; o]);
                self.tensors.insert(format!("{bn}.weight"), (vec![o], vec![1.0; o]));
                self.tensors.insert(format!("{bn}.bias"), (vec![o], b));
                self.tensors.insert(format!("{bn}.running_mean"), (vec![o], vec![0.0; o]));
                self.tensors.insert(format!("{bn}.running_var"), (vec![o], vec![1.0 - 1e-5; o]));
                (bn, out)
            }
        };
        let (relu, last) = self.fuse_relu(&bn_out)?;
        let node =
            Node::Conv { name, bn, input, out: o, kernel: kh, stride: s, padding: pads4[0], relu, pads: conv_pads };
        self.push(node, last);
        Ok(())
    }

    /// The BatchNormalization node `bi` after a conv of `o` channels with an optional `bias`
    /// (folded into the running mean: BN(z + b) has mean μ − b): its pare name and output.
    pub(super) fn batch_norm(
        &mut self,
        bi: usize,
        o: usize,
        bias: Option<&[f32]>,
    ) -> Result<(String, String), OnnxError> {
        let at = At { i: bi, n: &self.nodes[bi] };
        check_attributes(&at)?;
        if at.int("training_mode", 0)? != 0 {
            return Err(at.refuse_attr("training_mode", "only inference-mode batch norm is supported"));
        }
        if at.int("spatial", 1)? != 1 {
            return Err(at.refuse_attr("spatial", "per-activation batch norm is not supported"));
        }
        if at.n.outputs.iter().skip(1).any(|x| !x.is_empty()) {
            return Err(at.refuse("its running-statistics outputs are used (training mode)"));
        }
        // pare's BatchNorm adds ε = 1e-5 to the variance: another ε moves into the stored
        // variance (σ² + ε − 1e-5), the same normalisation.
        let eps = f64::from(at.float("epsilon", 1e-5)?);
        if !eps.is_finite() || eps < 0.0 {
            return Err(at.refuse_attr("epsilon", "must be a finite non-negative number"));
        }
        let bn = if at.n.name.is_empty() { format!("bn{bi}") } else { at.n.name.clone() };
        for (j, p) in ["weight", "bias", "running_mean", "running_var"].iter().enumerate() {
            let mut v = self.konst(&at, j + 1, &format!("the {p}"))?.f32();
            if v.len() != o {
                return Err(at.refuse(format!("the {p} has {} values for the conv's {o} channels", v.len())));
            }
            if *p == "running_var" {
                for x in &mut v {
                    *x = (f64::from(*x) + eps - 1e-5) as f32;
                }
                if v.iter().any(|&x| x < 0.0 || !x.is_finite()) {
                    return Err(at.refuse("a variance that is negative (or turns negative with ε below 1e-5)"));
                }
            }
            if *p == "running_mean" {
                if let Some(b) = bias {
                    v.iter_mut().zip(b).for_each(|(m, b)| *m -= b);
                }
            }
            self.tensors.insert(format!("{bn}.{p}"), (vec![o], v));
        }
        self.used[bi] = true;
        Ok((bn, at.n.outputs.first().cloned().unwrap_or_default()))
    }
}
