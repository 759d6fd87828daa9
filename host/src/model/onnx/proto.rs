//! The few onnx.proto messages the importer reads, decoded from protobuf wire format without a
//! schema: fields by number, nodes with their attributes, and tensors (inline or in an external
//! data file beside the model). Every length and count is checked against the bytes present, so
//! a crafted file gives an error, never a panic or an allocation larger than the file.

use super::OnnxError;
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// A protobuf field value.
#[derive(Debug, Clone)]
pub(super) enum Val<'a> {
    Int(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// One message's fields: number and value, in file order.
pub(super) type Fields<'a> = Vec<(u32, Val<'a>)>;

fn bad(what: &str) -> OnnxError {
    OnnxError::Protobuf(what.into())
}

/// A base-128 varint from the front of `b` (at most ten bytes).
fn varint(b: &mut &[u8]) -> Result<u64, OnnxError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&x, rest) = b.split_first().ok_or_else(|| bad("truncated varint"))?;
        *b = rest;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(bad("varint too long"))
}

/// The fields of one message.
pub(super) fn fields(mut b: &[u8]) -> Result<Fields<'_>, OnnxError> {
    let mut out = vec![];
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let (field, wire) = (u32::try_from(key >> 3).map_err(|_| bad("field number too large"))?, key & 7);
        let v = match wire {
            0 => Val::Int(varint(&mut b)?),
            1 => {
                let (_, rest) = b.split_at_checked(8).ok_or_else(|| bad("truncated fixed64"))?;
                b = rest;
                continue;
            }
            2 => {
                let n = usize::try_from(varint(&mut b)?).map_err(|_| bad("length too large"))?;
                let (data, rest) = b.split_at_checked(n).ok_or_else(|| bad("truncated bytes"))?;
                b = rest;
                Val::Bytes(data)
            }
            5 => {
                let (data, rest) = b.split_first_chunk::<4>().ok_or_else(|| bad("truncated fixed32"))?;
                b = rest;
                Val::Fixed32(u32::from_le_bytes(*data))
            }
            w => return Err(bad(&format!("wire type {w}"))),
        };
        out.push((field, v));
    }
    Ok(out)
}

/// Every string field `n`.
pub(super) fn strs(f: &[(u32, Val<'_>)], n: u32) -> Vec<String> {
    f.iter()
        .filter(|(k, _)| *k == n)
        .filter_map(|(_, v)| if let Val::Bytes(b) = v { Some(String::from_utf8_lossy(b).into_owned()) } else { None })
        .collect()
}

/// Every embedded message (or bytes) field `n`.
pub(super) fn msgs<'a>(f: &[(u32, Val<'a>)], n: u32) -> Vec<&'a [u8]> {
    f.iter().filter(|(k, _)| *k == n).filter_map(|(_, v)| if let Val::Bytes(b) = v { Some(*b) } else { None }).collect()
}

/// Every integer of repeated field `n`, packed or not.
pub(super) fn ints(f: &[(u32, Val<'_>)], n: u32) -> Result<Vec<i64>, OnnxError> {
    let mut v = vec![];
    for (k, x) in f {
        if *k != n {
            continue;
        }
        match x {
            Val::Int(i) => v.push(*i as i64),
            Val::Bytes(b) => {
                let mut rest = *b;
                while !rest.is_empty() {
                    v.push(varint(&mut rest)? as i64);
                }
            }
            Val::Fixed32(_) => {}
        }
    }
    Ok(v)
}

/// Every float of repeated field `n`, packed or not.
fn floats(f: &[(u32, Val<'_>)], n: u32) -> Vec<f32> {
    f.iter()
        .filter(|(k, _)| *k == n)
        .flat_map(|(_, v)| match v {
            Val::Fixed32(x) => vec![f32::from_bits(*x)],
            Val::Bytes(p) => p.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Val::Int(_) => vec![],
        })
        .collect()
}

/// One attribute of a node, as written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Floats(Vec<f32>),
    Str(String),
    Tensor(Const),
    /// Graphs, sparse tensors, type protos, string lists: nothing the importer reads.
    Other,
}

impl std::fmt::Display for Attr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attr::Int(i) => write!(f, "{i}"),
            Attr::Ints(v) => write!(f, "{v:?}"),
            Attr::Float(x) => write!(f, "{x}"),
            Attr::Floats(v) => write!(f, "{v:?}"),
            Attr::Str(s) => write!(f, "{s:?}"),
            Attr::Tensor(t) => write!(f, "a tensor of shape {:?}", t.dims),
            Attr::Other => write!(f, "(a value of a kind pare does not read)"),
        }
    }
}

/// One graph node.
#[derive(Debug)]
pub(super) struct OnnxNode {
    pub op: String,
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: BTreeMap<String, Attr>,
}

impl OnnxNode {
    /// An integer attribute (`default` when absent); a list or a float is an error naming it.
    pub fn int(&self, key: &str, default: i64) -> Result<i64, String> {
        match self.attrs.get(key) {
            None => Ok(default),
            Some(Attr::Int(i)) => Ok(*i),
            Some(a) => Err(format!("attribute `{key}` = {a} is not an integer")),
        }
    }

    /// An integer-list attribute, `None` when absent.
    pub fn ints(&self, key: &str) -> Result<Option<Vec<i64>>, String> {
        match self.attrs.get(key) {
            None => Ok(None),
            Some(Attr::Ints(v)) => Ok(Some(v.clone())),
            Some(Attr::Int(i)) => Ok(Some(vec![*i])),
            Some(a) => Err(format!("attribute `{key}` = {a} is not a list of integers")),
        }
    }

    /// A float attribute (`default` when absent).
    pub fn float(&self, key: &str, default: f32) -> Result<f32, String> {
        match self.attrs.get(key) {
            None => Ok(default),
            Some(Attr::Float(x)) => Ok(*x),
            Some(Attr::Int(i)) => Ok(*i as f32),
            Some(a) => Err(format!("attribute `{key}` = {a} is not a number")),
        }
    }

    /// A string attribute (`default` when absent).
    pub fn string<'s>(&'s self, key: &str, default: &'s str) -> Result<&'s str, String> {
        match self.attrs.get(key) {
            None => Ok(default),
            Some(Attr::Str(s)) => Ok(s),
            Some(a) => Err(format!("attribute `{key}` = {a} is not a string")),
        }
    }
}

/// Where a model's external tensor data may be read from: the model's own folder.
#[derive(Debug, Clone)]
pub(super) struct DataDir(pub Option<PathBuf>);

pub(super) fn parse_node(b: &[u8], dir: &DataDir) -> Result<OnnxNode, OnnxError> {
    let f = fields(b)?;
    let mut n = OnnxNode {
        op: strs(&f, 4).concat(),
        name: strs(&f, 3).concat(),
        inputs: strs(&f, 1),
        outputs: strs(&f, 2),
        attrs: BTreeMap::new(),
    };
    for a in msgs(&f, 5) {
        let af = fields(a)?;
        let name = strs(&af, 1).concat();
        // AttributeProto.type (20) says which field holds the value; files without it (very old
        // exporters) are read by which field is present.
        let ty = ints(&af, 20)?.first().copied();
        let has = |k: u32| af.iter().any(|(x, _)| *x == k);
        let attr = match ty {
            Some(1) => Attr::Float(floats(&af, 2).first().copied().unwrap_or(0.0)),
            Some(2) => Attr::Int(ints(&af, 3)?.first().copied().unwrap_or(0)),
            Some(3) => Attr::Str(strs(&af, 4).concat()),
            Some(4) => Attr::Tensor(parse_const(msgs(&af, 5).first().copied().unwrap_or_default(), dir)?.1),
            Some(6) => Attr::Floats(floats(&af, 7)),
            Some(7) => Attr::Ints(ints(&af, 8)?),
            Some(_) => Attr::Other,
            None if has(2) => Attr::Float(floats(&af, 2).first().copied().unwrap_or(0.0)),
            None if has(3) => Attr::Int(ints(&af, 3)?.first().copied().unwrap_or(0)),
            None if has(4) => Attr::Str(strs(&af, 4).concat()),
            None if has(5) => Attr::Tensor(parse_const(msgs(&af, 5).first().copied().unwrap_or_default(), dir)?.1),
            None if has(7) => Attr::Floats(floats(&af, 7)),
            None if has(8) => Attr::Ints(ints(&af, 8)?),
            None => Attr::Other,
        };
        n.attrs.insert(name, attr);
    }
    Ok(n)
}

/// A tensor of any numeric type as f64 values (integers exact to 2^53): weights, constants and
/// the integer subgraphs exporters compute shapes and pads with.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Const {
    pub dims: Vec<usize>,
    pub v: Vec<f64>,
}

impl Const {
    /// The values as f32 (weights).
    pub fn f32(&self) -> Vec<f32> {
        self.v.iter().map(|&x| x as f32).collect()
    }
}

/// The element count of `dims`, or `None` when it overflows.
pub(super) fn elements(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Reads `length` bytes (all from `offset` when `None`) of the external data file `location`,
/// which must lie in the model's own folder.
fn external(dir: &DataDir, location: &str, offset: u64, length: Option<u64>) -> Result<Vec<u8>, OnnxError> {
    let err = |why: String| OnnxError::ExternalData { location: location.into(), reason: why };
    let Some(dir) = &dir.0 else {
        return Err(err("the model was given as bytes, without its folder to read the data file from".into()));
    };
    let rel = Path::new(location);
    if location.is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(err("the location must be a relative path inside the model's folder".into()));
    }
    let path = dir.join(rel);
    let io = |e: std::io::Error| err(format!("{}: {e}", path.display()));
    // A symbolic link may still point elsewhere: the resolved file must be inside the folder.
    let (real, root) = (path.canonicalize().map_err(io)?, dir.canonicalize().map_err(io)?);
    if !real.starts_with(&root) {
        return Err(err(format!("{} resolves outside the model's folder", path.display())));
    }
    // The shared input check (regular file, opened without blocking); the byte range read is
    // bounded below instead of the file's size.
    let (mut file, size) =
        crate::input::open_regular(&real, "ONNX external data", u64::MAX).map_err(|e| err(e.to_string()))?;
    let length = length.unwrap_or(size.saturating_sub(offset));
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(err(format!("bytes {offset}..{offset}+{length} lie beyond the file's {size} bytes")));
    }
    let mut buf = vec![0u8; usize::try_from(length).map_err(|_| err("length too large".into()))?];
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    file.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

/// A TensorProto as a name and a [`Const`]. Data types: float, double, int32, int64 and the
/// small integer types (int8, uint8, int16, uint16, bool) as exporters write them.
pub(super) fn parse_const(b: &[u8], dir: &DataDir) -> Result<(String, Const), OnnxError> {
    let f = fields(b)?;
    let name = strs(&f, 8).concat();
    let graph = |why: String| OnnxError::Graph(format!("tensor `{name}`: {why}"));
    let dims = ints(&f, 1)?
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| graph(format!("negative dimension {d}"))))
        .collect::<Result<Vec<usize>, _>>()?;
    let count = elements(&dims).ok_or_else(|| graph(format!("shape {dims:?} has more elements than memory")))?;
    let dtype = ints(&f, 2)?.first().copied().unwrap_or(0);
    // raw_data (9), or the external data file (data_location 14 = EXTERNAL, entries in 13).
    let mut owned = None;
    if ints(&f, 14)?.first() == Some(&1) {
        let mut entry = BTreeMap::new();
        for e in msgs(&f, 13) {
            let ef = fields(e)?;
            entry.insert(strs(&ef, 1).concat(), strs(&ef, 2).concat());
        }
        let number = |k: &str| -> Result<Option<u64>, OnnxError> {
            entry
                .get(k)
                .map(|v| v.parse::<u64>().map_err(|_| graph(format!("external data `{k}` = {v:?} is not a number"))))
                .transpose()
        };
        let location = entry.get("location").cloned().unwrap_or_default();
        owned = Some(external(dir, &location, number("offset")?.unwrap_or(0), number("length")?)?);
    }
    let raw = owned.as_deref().or_else(|| msgs(&f, 9).first().copied());
    let width = match dtype {
        1 | 6 => 4,
        7 | 11 => 8,
        2 | 3 | 9 => 1,
        4 | 5 => 2,
        _ => return Err(graph(format!("data type {dtype} is not supported"))),
    };
    if let Some(r) = raw {
        if r.len() != count.saturating_mul(width) {
            return Err(graph(format!("{} bytes of data for shape {dims:?}", r.len())));
        }
    }
    let v: Vec<f64> = match (dtype, raw) {
        (1, Some(r)) => r.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        (11, Some(r)) => r.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default())).collect(),
        (7, Some(r)) => {
            r.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default()) as f64).collect()
        }
        (6, Some(r)) => r.chunks_exact(4).map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect(),
        (2 | 9, Some(r)) => r.iter().map(|&x| f64::from(x)).collect(),
        (3, Some(r)) => r.iter().map(|&x| f64::from(x as i8)).collect(),
        (4, Some(r)) => r.chunks_exact(2).map(|c| f64::from(u16::from_le_bytes([c[0], c[1]]))).collect(),
        (5, Some(r)) => r.chunks_exact(2).map(|c| f64::from(i16::from_le_bytes([c[0], c[1]]))).collect(),
        (1, None) => floats(&f, 4).into_iter().map(f64::from).collect(),
        (11, None) => f
            .iter()
            .filter(|(k, _)| *k == 10)
            .flat_map(|(_, v)| match v {
                Val::Bytes(p) => {
                    p.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default())).collect()
                }
                Val::Int(_) | Val::Fixed32(_) => vec![],
            })
            .collect(),
        (7, None) => ints(&f, 7)?.iter().map(|&x| x as f64).collect(),
        (_, None) => ints(&f, 5)?.iter().map(|&x| x as i32 as f64).collect(),
        (_, Some(_)) => return Err(graph(format!("data type {dtype} is not supported"))),
    };
    if v.len() != count {
        return Err(graph(format!("{} values for shape {dims:?}", v.len())));
    }
    Ok((name, Const { dims, v }))
}
