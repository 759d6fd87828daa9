//! Constant folding: a node whose inputs are all constants is evaluated at import, for the
//! integer subgraphs exporters emit to compute shapes and pads (PyTorch computes `F.pad`'s
//! amounts and `x.view(N, -1)`'s shape this way). Outputs are bounded: no op here makes more
//! values than its inputs hold, except ConstantOfShape, which is capped.

use super::proto::{elements, Attr, Const, OnnxNode};

/// The most values a folded constant may hold (shape and pad subgraphs hold a handful).
const MAX_FOLDED: usize = 1 << 20;

/// Row-major strides of `dims`.
fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

fn scalar(x: f64) -> Const {
    Const { dims: vec![], v: vec![x] }
}

/// Evaluates `n` over the constants `c` (its non-empty inputs in order). `None`: not foldable
/// (the node is then mapped as an operation on activations, or refused).
pub(super) fn eval(n: &OnnxNode, c: &[&Const]) -> Option<Const> {
    Some(match n.op.as_str() {
        "Constant" => match n.attrs.iter().next() {
            Some((k, Attr::Tensor(t))) if k == "value" => t.clone(),
            Some((k, Attr::Float(x))) if k == "value_float" => scalar(f64::from(*x)),
            Some((k, Attr::Int(x))) if k == "value_int" => scalar(*x as f64),
            Some((k, Attr::Floats(v))) if k == "value_floats" => {
                Const { dims: vec![v.len()], v: v.iter().map(|&x| f64::from(x)).collect() }
            }
            Some((k, Attr::Ints(v))) if k == "value_ints" => {
                Const { dims: vec![v.len()], v: v.iter().map(|&x| x as f64).collect() }
            }
            _ => return None,
        },
        "Identity" | "Cast" => arg(c, 0)?.clone(),
        "Shape" => {
            let t = arg(c, 0)?;
            Const { dims: vec![t.dims.len()], v: t.dims.iter().map(|&d| d as f64).collect() }
        }
        "ConstantOfShape" => {
            let dims: Vec<usize> = arg(c, 0)?.v.iter().map(|&x| x.max(0.0) as usize).collect();
            let count = elements(&dims).filter(|&k| k <= MAX_FOLDED)?;
            let fill = match n.attrs.get("value") {
                Some(Attr::Tensor(t)) => t.v.first().copied().unwrap_or(0.0),
                _ => 0.0,
            };
            Const { v: vec![fill; count], dims }
        }
        "Concat" => {
            (c.iter().all(|t| t.dims.len() <= 1)).then_some(())?;
            let v: Vec<f64> = c.iter().flat_map(|t| t.v.iter().copied()).collect();
            Const { dims: vec![v.len()], v }
        }
        "Reshape" => return reshape(n, c),
        "Unsqueeze" | "Squeeze" => return squeeze_unsqueeze(n, c),
        "Gather" => return gather(n, c),
        "Add" | "Sub" | "Mul" | "Div" => return arithmetic(n, c),
        "Transpose" => return transpose(n, c),
        "Slice" => return slice(c),
        _ => return None,
    })
}

/// Input `i`, when given.
fn arg<'c>(c: &[&'c Const], i: usize) -> Option<&'c Const> {
    c.get(i).copied()
}

/// Input `i` as integers.
fn list(c: &[&Const], i: usize) -> Option<Vec<i64>> {
    arg(c, i).map(|t| t.v.iter().map(|&x| x as i64).collect())
}

/// Reshape to a constant shape (0 copies a dimension unless `allowzero`, one -1 infers).
fn reshape(n: &OnnxNode, c: &[&Const]) -> Option<Const> {
    let t = arg(c, 0)?;
    let want = list(c, 1)?;
    let allow_zero = matches!(n.attrs.get("allowzero"), Some(Attr::Int(1)));
    let dim = |i: usize, d: i64| -> Option<usize> {
        match d {
            0 if !allow_zero => t.dims.get(i).copied(),
            d => usize::try_from(d).ok(),
        }
    };
    let known =
        want.iter().enumerate().filter(|(_, &d)| d != -1).try_fold(1usize, |a, (i, &d)| a.checked_mul(dim(i, d)?))?;
    (want.iter().filter(|&&d| d == -1).count() <= 1).then_some(())?;
    let dims: Vec<usize> = want
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == -1 { Some(t.v.len() / known.max(1)) } else { dim(i, d) })
        .collect::<Option<_>>()?;
    (elements(&dims)? == t.v.len()).then_some(())?;
    Some(Const { dims, v: t.v.clone() })
}

/// Unsqueeze or Squeeze by `axes` (attribute or input).
fn squeeze_unsqueeze(n: &OnnxNode, c: &[&Const]) -> Option<Const> {
    let t = arg(c, 0)?;
    let axes = match n.attrs.get("axes") {
        Some(Attr::Ints(a)) => a.clone(),
        _ => list(c, 1).unwrap_or_default(),
    };
    let unsqueeze = n.op == "Unsqueeze";
    let rank = (t.dims.len() + if unsqueeze { axes.len() } else { 0 }) as i64;
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| usize::try_from(if a < 0 { a + rank } else { a }).ok().filter(|&a| (a as i64) < rank))
        .collect::<Option<_>>()?;
    axes.sort_unstable();
    axes.dedup();
    let mut dims = t.dims.clone();
    if unsqueeze {
        for a in axes {
            (a <= dims.len()).then_some(())?;
            dims.insert(a, 1);
        }
    } else if axes.is_empty() {
        dims.retain(|&d| d != 1);
    } else {
        for a in axes.into_iter().rev() {
            (dims.get(a) == Some(&1)).then_some(())?;
            dims.remove(a);
        }
    }
    Some(Const { dims, v: t.v.clone() })
}

/// Gather along axis 0 of a 1-D constant.
fn gather(n: &OnnxNode, c: &[&Const]) -> Option<Const> {
    let (t, idx) = (arg(c, 0)?, arg(c, 1)?);
    let axis = match n.attrs.get("axis") {
        None | Some(Attr::Int(0)) => 0,
        _ => return None,
    };
    (t.dims.len() == 1 && axis == 0).then_some(())?;
    let v: Vec<f64> = idx
        .v
        .iter()
        .map(|&i| {
            let i = if i < 0.0 { i + t.v.len() as f64 } else { i };
            t.v.get(i as usize).copied()
        })
        .collect::<Option<_>>()?;
    Some(Const { dims: idx.dims.clone(), v })
}

/// Add, Sub, Mul, Div (integer division truncates) with scalar broadcasting.
fn arithmetic(n: &OnnxNode, c: &[&Const]) -> Option<Const> {
    let (a, b) = (arg(c, 0)?, arg(c, 1)?);
    let (long, n_out) = if a.v.len() >= b.v.len() { (a, a.v.len()) } else { (b, b.v.len()) };
    ((a.v.len() == n_out || a.v.len() == 1) && (b.v.len() == n_out || b.v.len() == 1)).then_some(())?;
    let at = |t: &Const, i: usize| if t.v.len() == 1 { t.v[0] } else { t.v[i] };
    let v = (0..n_out)
        .map(|i| {
            let (x, y) = (at(a, i), at(b, i));
            match n.op.as_str() {
                "Add" => x + y,
                "Sub" => x - y,
                "Mul" => x * y,
                _ => (x / y).trunc(),
            }
        })
        .collect();
    Some(Const { dims: long.dims.clone(), v })
}

/// Transpose by `perm`, which must be a permutation of the axes.
fn transpose(n: &OnnxNode, c: &[&Const]) -> Option<Const> {
    let t = arg(c, 0)?;
    let perm: Vec<usize> = match n.attrs.get("perm") {
        None => (0..t.dims.len()).rev().collect(),
        Some(Attr::Ints(p)) => p.iter().map(|&x| usize::try_from(x).ok()).collect::<Option<_>>()?,
        Some(_) => return None,
    };
    // A permutation of the axes: each once.
    let mut seen = vec![false; t.dims.len()];
    (perm.len() == t.dims.len()).then_some(())?;
    for &p in &perm {
        (!std::mem::replace(seen.get_mut(p)?, true)).then_some(())?;
    }
    let dims: Vec<usize> = perm.iter().map(|&p| t.dims[p]).collect();
    let (src_st, out_st) = (strides(&t.dims), strides(&dims));
    let mut v = vec![0.0; t.v.len()];
    for (o, slot) in v.iter_mut().enumerate() {
        let mut from = 0;
        for (k, &p) in perm.iter().enumerate() {
            from += (o / out_st[k] % dims[k]) * src_st[p];
        }
        *slot = *t.v.get(from)?;
    }
    Some(Const { dims, v })
}

/// Slice with numpy semantics (negative steps included).
fn slice(c: &[&Const]) -> Option<Const> {
    let t = arg(c, 0)?;
    let (starts, ends) = (list(c, 1)?, list(c, 2)?);
    let rank = t.dims.len() as i64;
    let axes = list(c, 3).unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = list(c, 4).unwrap_or_else(|| vec![1; starts.len()]);
    // Per axis: the indices kept (numpy semantics, negative steps included).
    let mut keep: Vec<Vec<usize>> = t.dims.iter().map(|&d| (0..d).collect()).collect();
    for (((&s, &e), &a), &st) in starts.iter().zip(&ends).zip(&axes).zip(&steps) {
        let a = usize::try_from(if a < 0 { a + rank } else { a }).ok()?;
        let d = *t.dims.get(a)? as i64;
        (st != 0).then_some(())?;
        let clamp = |x: i64, lo: i64, hi: i64| if x < 0 { x.saturating_add(d).max(lo) } else { x.min(hi) };
        let idx: Vec<usize> = if st > 0 {
            let (s, e) = (clamp(s, 0, d), clamp(e, 0, d));
            (s..e).step_by(usize::try_from(st).ok()?).map(|i| i as usize).collect()
        } else {
            let (s, e) = (clamp(s, -1, d - 1), clamp(e, -1, d - 1));
            let mut v = vec![];
            let mut i = s;
            while i > e {
                v.push(i as usize);
                i += st;
            }
            v
        };
        keep[a] = idx;
    }
    let dims: Vec<usize> = keep.iter().map(Vec::len).collect();
    let st = strides(&t.dims);
    let out_st = strides(&dims);
    let total = elements(&dims)?;
    let v = (0..total)
        .map(|o| (0..dims.len()).map(|k| keep[k][o / out_st[k] % dims[k]] * st[k]).sum::<usize>())
        .map(|i| t.v.get(i).copied())
        .collect::<Option<_>>()?;
    Some(Const { dims, v })
}
