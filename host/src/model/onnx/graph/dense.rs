//! Dense layers: Flatten, Reshape or Squeeze before them, Gemm and MatMul (+ Add), a fused Relu.

use super::*;

impl Importer<'_> {
    /// Flatten, Reshape or Squeeze of a map to `(N, C·H·W)` before a dense layer: the same
    /// values, so the value name just aliases its source.
    pub(super) fn flatten(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let input = self.get(at, 0)?;
        let x = self.shape(input)?;
        match at.n.op.as_str() {
            "Flatten" => {
                let axis = at.int("axis", 1)?;
                if axis != 1 && axis != -3 {
                    return Err(at.refuse_attr("axis", "only flattening to (N, C·H·W) is supported"));
                }
            }
            "Reshape" => {
                let shape = self.ints_of(at, 1, "the shape")?;
                let allow_zero = at.int("allowzero", 0)? == 1;
                let flat = (x.c * x.h * x.w) as i64;
                let ok = match shape[..] {
                    [n, f] => {
                        let batch_ok = n == 1 || n == -1 && f == flat || (n == 0 && !allow_zero);
                        batch_ok && (f == flat || f == -1 && n != -1)
                    }
                    _ => false,
                };
                if !ok {
                    return Err(at.refuse(format!(
                        "a reshape to {shape:?} (only to (N, -1) before the classifier is supported)"
                    )));
                }
            }
            _ => {
                let axes = self.axes(at)?.unwrap_or_else(|| vec![2, 3]);
                if !height_and_width(&axes) || (x.h, x.w) != (1, 1) {
                    return Err(at.refuse_attr("axes", "only squeezing a 1×1 height and width is supported"));
                }
            }
        }
        // The flattened value is the map itself to pare: a dense layer reads it in (c, h, w)
        // order, as ONNX's Flatten writes it.
        self.src.insert(out, input);
        Ok(())
    }

    /// Gemm as the classifier: `alpha · A · B' + beta · C` with B' = B or Bᵀ.
    pub(super) fn gemm(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        if at.int("transA", 0)? != 0 {
            return Err(at.refuse_attr("transA", "a transposed activation is not supported"));
        }
        let trans_b = at.int("transB", 0)?;
        if !(0..=1).contains(&trans_b) {
            return Err(at.refuse_attr("transB", "must be 0 or 1"));
        }
        let (alpha, beta) = (at.float("alpha", 1.0)?, at.float("beta", 1.0)?);
        if !alpha.is_finite() || !beta.is_finite() {
            return Err(at.refuse("alpha and beta must be finite"));
        }
        let b = self.konst(at, 1, "the weight")?;
        let (rows, cols) = match b.dims[..] {
            [r, c] => (r, c),
            _ => return Err(at.refuse(format!("the weight has shape {:?}, not a matrix", b.dims))),
        };
        // pare's dense weight is [out, in].
        let (co, cin) = if trans_b == 1 { (rows, cols) } else { (cols, rows) };
        let weight: Vec<f32> = if trans_b == 1 {
            b.v.iter().map(|&x| (x * f64::from(alpha)) as f32).collect()
        } else {
            (0..co)
                .flat_map(|o| (0..cin).map(move |c| c * co + o))
                .map(|k| (b.v[k] * f64::from(alpha)) as f32)
                .collect()
        };
        let bias: Vec<f32> = match at.n.inputs.get(2).filter(|x| !x.is_empty()) {
            None => vec![0.0; co],
            Some(_) => {
                let c = self.konst(at, 2, "the bias")?;
                match c.v.len() {
                    1 => vec![(c.v[0] * f64::from(beta)) as f32; co],
                    l if l == co => c.v.iter().map(|&x| (x * f64::from(beta)) as f32).collect(),
                    l => return Err(at.refuse(format!("the bias has {l} values for {co} outputs"))),
                }
            }
        };
        self.dense(at, out, co, cin, weight, bias)
    }

    /// x · W (W: [in, out]) and an optional Add of a bias constant: the classifier.
    pub(super) fn matmul(&mut self, at: &At, out: String) -> Result<(), OnnxError> {
        let b = self.konst(at, 1, "the right operand")?;
        let [cin, co] = b.dims[..] else {
            return Err(at.refuse(format!("the weight has shape {:?}, not a matrix", b.dims)));
        };
        let weight: Vec<f32> = (0..co).flat_map(|o| (0..cin).map(move |c| c * co + o)).map(|k| b.v[k] as f32).collect();
        let mut last = out.clone();
        let mut bias = vec![0.0; co];
        if let Some(ai) = self.only_consumer(&out, "Add") {
            let add = &self.nodes[ai];
            let other = add.inputs.iter().find(|x| **x != out).and_then(|x| self.consts.get(x));
            if let Some(c) = other.filter(|c| c.v.len() == co) {
                bias = c.f32();
                self.used[ai] = true;
                last = add.outputs.first().cloned().unwrap_or_default();
            }
        }
        self.dense(at, last, co, cin, weight, bias)
    }

    pub(super) fn dense(
        &mut self,
        at: &At,
        out: String,
        co: usize,
        cin: usize,
        w: Vec<f32>,
        b: Vec<f32>,
    ) -> Result<(), OnnxError> {
        // A flattened view repeats each channel of a 1×1 map `copies` times side by side: the
        // same function as the summed columns over the map itself.
        let (mut w, mut cin) = (w, cin);
        let input = match at.n.inputs.first().and_then(|x| self.repeated.get(x)) {
            Some(&(src, copies)) => {
                let c = self.shape(src)?.c;
                if c * copies != cin {
                    return Err(at.refuse(format!("the weight reads {cin} inputs, the input has {}", c * copies)));
                }
                w = w.chunks(cin).flat_map(|row| row.chunks(copies).map(|k| k.iter().sum::<f32>())).collect();
                cin = c;
                src
            }
            None => self.get(at, 0)?,
        };
        let x = self.shape(input)?;
        if x.c * x.h * x.w != cin {
            return Err(at.refuse(format!("the weight reads {cin} inputs, the input is {}×{}×{}", x.c, x.h, x.w)));
        }
        if co == 0 {
            return Err(at.refuse("no outputs"));
        }
        let name = if at.n.name.is_empty() { format!("gemm{}", at.i) } else { at.n.name.clone() };
        self.tensors.insert(format!("{name}.weight"), (vec![co, cin], w));
        self.tensors.insert(format!("{name}.bias"), (vec![co], b));
        // A ReLU after a hidden dense layer (an MLP head) fuses into it.
        let (relu, last) = self.fuse_relu(&out)?;
        self.push(Node::Dense { name, input, out: co, relu }, last);
        Ok(())
    }
}
