//! Seed corpora for the fuzz targets: small valid `.pare` models that together
//! use every op of the format, each in f32 and int8, and every int8 convolution kernel path.
//!
//! `cargo run --release --example seeds -- DIR` (in `fuzz/`; DIR defaults to the git-ignored
//! `corpus/seeds`) writes `DIR/decode`, `DIR/repaired` and `DIR/run_model`. The output is a pure
//! function of this file: fixed xorshift weights, no clock, no host model. Every model is checked
//! to decode and to run, and the models together to use every op.
//!
//! * `decode` gets each model file, and each model followed by an input of the same length
//!   (the target runs the first half and decodes the whole).
//! * `repaired` gets each payload (the file without its 16-byte header) behind an input of a
//!   third of its length (the target feeds the first quarter as input and frames the rest).
//! * `run_model` gets inputs for its fixed 6×6×3 f32 model: zeros, ramps, special floats.

use pare_device::quant::{add_quant, quantize_multiplier};
use pare_device::Runtime;
use pare_format::*;
use std::path::{Path, PathBuf};

/// Weights and activation parameters drawn from a fixed xorshift stream.
struct Gen {
    b: ModelBuilder,
    int8: bool,
    rng: u64,
    /// Every op kind pushed, to check the corpus covers the format.
    kinds: Vec<&'static str>,
}

impl Gen {
    fn new(name: &str, int8: bool, seed: u64) -> Self {
        Self { b: ModelBuilder::new(name), int8, rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, kinds: vec![] }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Uniform in `[lo, hi)`.
    fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// A buffer with a fresh scale and zero point when int8.
    fn fresh(&mut self, h: u32, w: u32, c: u32) -> u32 {
        let buf = if self.int8 {
            let scale = self.uniform(0.02, 0.2);
            let zp = (self.next() % 41) as i32 - 20;
            Buffer::i8(h, w, c, scale, zp)
        } else {
            Buffer::f32(h, w, c)
        };
        self.b.buffer(buf)
    }

    /// A buffer with the quantisation of `like` (ops that move values without arithmetic).
    fn same(&mut self, like: u32, h: u32, w: u32, c: u32) -> u32 {
        let l = self.info(like);
        self.b.buffer(Buffer { h, w, c, ..l })
    }

    fn info(&self, id: u32) -> Buffer {
        self.b.buffer_info(id).expect("buffer declared")
    }

    fn input(&mut self, h: u32, w: u32, c: u32) -> u32 {
        let x = self.fresh(h, w, c);
        self.b.set_input(x);
        x
    }

    fn push(&mut self, op: Op<'_>) {
        self.kinds.push(op.kind());
        self.b.push(&op).expect("op encodes");
    }

    /// Encoded weights (`out` rows of `per`) and bias for a layer from `x` to `y`.
    fn params(&mut self, x: u32, y: u32, out: u32, per: u32) -> Vec<Vec<u8>> {
        let n = (out * per) as usize;
        let range = 1.0 / (per as f32).sqrt();
        let w: Vec<f32> = (0..n).map(|_| self.uniform(-range, range)).collect();
        let bias: Vec<f32> = (0..out).map(|_| self.uniform(-0.1, 0.1)).collect();
        if !self.int8 {
            return vec![Table::encode(&w), Table::encode(&bias)];
        }
        let (xs, ys) = (self.info(x).scale, self.info(y).scale);
        let (mut q, mut b, mut scales, mut mults, mut shifts) = (vec![], vec![], vec![], vec![], vec![]);
        for o in 0..out as usize {
            let row = &w[o * per as usize..(o + 1) * per as usize];
            let s = row.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6) / 127.0;
            q.extend(row.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
            let acc = f64::from(xs) * f64::from(s);
            b.push((f64::from(bias[o]) / acc).round() as i32);
            let (m, sh) = quantize_multiplier(acc / f64::from(ys));
            scales.push(s);
            mults.push(m);
            shifts.push(sh.clamp(-31, 30) as i8);
        }
        vec![
            Table::encode(&q),
            Table::encode(&b),
            Table::encode(&scales),
            Table::encode(&mults),
            Table::encode(&shifts),
        ]
    }

    fn table_params<'a>(&self, enc: &'a [Vec<u8>], out: u32, per: u32) -> Params<'a> {
        match enc {
            [w, b] => Params::F32 { weights: Table::new(out * per, w), bias: Table::new(out, b) },
            [w, b, s, m, sh] => Params::I8 {
                weights: Table::new(out * per, w),
                bias: Table::new(out, b),
                weight_scales: Table::new(out, s),
                multipliers: Table::new(out, m),
                shifts: Table::new(out, sh),
            },
            _ => unreachable!("two or five tables"),
        }
    }

    fn conv(&mut self, x: u32, out: u32, k: u32, stride: u32, padding: [u32; 4], relu: bool) -> u32 {
        let i = self.info(x);
        let oh = (i.h + padding[0] + padding[2] - k) / stride + 1;
        let ow = (i.w + padding[1] + padding[3] - k) / stride + 1;
        let y = self.fresh(oh, ow, out);
        let per = k * k * i.c;
        let enc = self.params(x, y, out, per);
        let params = self.table_params(&enc, out, per);
        let op =
            Op::Conv2d(Conv2d { input: x, output: y, kernel: [k, k], stride: [stride, stride], padding, relu, params });
        self.push(op);
        y
    }

    fn pool(&mut self, max: bool, x: u32, k: u32, stride: u32, pad: u32) -> u32 {
        let i = self.info(x);
        let o = |n: u32| (n + 2 * pad - k) / stride + 1;
        let y = self.same(x, o(i.h), o(i.w), i.c);
        let p = Pool { input: x, output: y, kernel: [k, k], stride: [stride, stride], padding: [pad; 4] };
        self.push(if max { Op::MaxPool2d(p) } else { Op::AvgPool2d(p) });
        y
    }

    fn global_avg(&mut self, x: u32) -> u32 {
        let c = self.info(x).c;
        let y = self.same(x, 1, 1, c);
        self.push(Op::GlobalAvgPool(Unary { input: x, output: y }));
        y
    }

    fn flatten(&mut self, x: u32) -> u32 {
        let i = self.info(x);
        let y = self.same(x, 1, 1, i.h * i.w * i.c);
        self.push(Op::Flatten(Unary { input: x, output: y }));
        y
    }

    fn dense(&mut self, x: u32, out: u32, relu: bool) -> u32 {
        let n = self.info(x).c;
        let y = self.fresh(1, 1, out);
        let enc = self.params(x, y, out, n);
        let params = self.table_params(&enc, out, n);
        self.push(Op::Dense(Dense { input: x, output: y, relu, params }));
        y
    }

    /// TFLite's ADD rescaling (as the exporter computes it).
    fn add(&mut self, a: u32, b: u32, relu: bool) -> u32 {
        let i = self.info(a);
        let y = self.fresh(i.h, i.w, i.c);
        let quant = self.int8.then(|| add_quant(i.scale, self.info(b).scale, self.info(y).scale));
        self.push(Op::Add(Add { a, b, output: y, relu, quant }));
        y
    }

    /// Option-A shortcut: input channel `i` to `channels[i]` (or dropped), every `stride`-th pixel.
    fn place(&mut self, x: u32, out: u32, stride: u32, channels: &[u16]) -> u32 {
        let i = self.info(x);
        let y = self.same(x, i.h.div_ceil(stride), i.w.div_ceil(stride), out);
        let bytes = Table::encode(channels);
        let channels = Table::new(channels.len() as u32, &bytes);
        self.push(Op::ChannelPlace(ChannelPlace { input: x, output: y, stride, channels }));
        y
    }

    fn finish(mut self, output: u32) -> (Vec<u8>, Vec<&'static str>) {
        self.b.set_output(output);
        (self.b.finish().expect("a valid model"), self.kinds)
    }
}

/// `tiny` in miniature: conv, max pool, conv, max pool, conv, global average pool, dense.
fn tiny(int8: bool) -> (Vec<u8>, Vec<&'static str>) {
    let mut g = Gen::new("tiny", int8, 1);
    g.b.labels(&["a", "b", "c"]).normalization(&[0.5; 3], &[0.25; 3]);
    let x = g.input(8, 8, 3);
    let x = g.conv(x, 4, 3, 1, [1; 4], true);
    let x = g.pool(true, x, 2, 2, 0);
    let x = g.conv(x, 8, 3, 1, [1; 4], true);
    let x = g.pool(true, x, 2, 2, 0);
    let x = g.conv(x, 8, 3, 1, [1; 4], true);
    let x = g.global_avg(x);
    let y = g.dense(x, 3, false);
    g.finish(y)
}

/// ResNet-8 in miniature: identity, option-A (channel place with a dropped channel) and 1×1
/// projection shortcuts into residual adds, a fixed average pool, dense.
fn resnet8(int8: bool) -> (Vec<u8>, Vec<&'static str>) {
    let mut g = Gen::new("resnet8", int8, 2);
    g.b.normalization(&[0.49, 0.48, 0.45], &[0.25, 0.24, 0.26]);
    let x = g.input(8, 8, 3);
    let x = g.conv(x, 4, 3, 1, [1; 4], true);
    // Identity shortcut.
    let h = g.conv(x, 4, 3, 1, [1; 4], true);
    let h = g.conv(h, 4, 3, 1, [1; 4], false);
    let x = g.add(h, x, true);
    // Option A: stride 2, channels placed into a wider output, one of them dropped.
    let h = g.conv(x, 6, 3, 2, [1; 4], true);
    let h = g.conv(h, 6, 3, 1, [1; 4], false);
    let s = g.place(x, 6, 2, &[0, 2, ChannelPlace::DROP, 5]);
    let x = g.add(h, s, true);
    // Projection shortcut, 1×1 stride 2.
    let h = g.conv(x, 8, 3, 2, [1; 4], true);
    let h = g.conv(h, 8, 3, 1, [1; 4], false);
    let s = g.conv(x, 8, 1, 2, [0; 4], false);
    let x = g.add(h, s, false);
    let x = g.pool(false, x, 2, 2, 0);
    let y = g.dense(x, 4, false);
    g.finish(y)
}

/// Padded and asymmetric windows: strided conv with asymmetric padding, padded max pool, padded
/// average pool (divisor = in-bounds taps), flatten, two dense layers.
fn pooled(int8: bool) -> (Vec<u8>, Vec<&'static str>) {
    let mut g = Gen::new("pooled", int8, 3);
    let x = g.input(7, 7, 2);
    let x = g.conv(x, 3, 3, 2, [1, 0, 1, 0], true);
    let x = g.pool(true, x, 3, 1, 1);
    let x = g.pool(false, x, 3, 2, 1);
    let x = g.flatten(x);
    let x = g.dense(x, 5, true);
    let y = g.dense(x, 2, false);
    g.finish(y)
}

/// A receptive field past the blocked int8 kernel's (`3·3·72 = 648 > 576`): the pairs kernel.
fn wide(int8: bool) -> (Vec<u8>, Vec<&'static str>) {
    let mut g = Gen::new("wide", int8, 4);
    let x = g.input(3, 3, 72);
    let x = g.conv(x, 3, 3, 1, [1; 4], true);
    let x = g.flatten(x);
    let y = g.dense(x, 2, false);
    g.finish(y)
}

/// A receptive field past the pairs kernel's scratch (`3·3·513 = 4617 > 4608`): the direct loops.
fn deep() -> (Vec<u8>, Vec<&'static str>) {
    let mut g = Gen::new("deep", true, 5);
    let x = g.input(1, 1, 513);
    let x = g.conv(x, 1, 3, 1, [1; 4], false);
    let y = g.global_avg(x);
    g.finish(y)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("create corpus folder");
    std::fs::write(dir.join(name), bytes).expect("write seed");
}

/// `n` input bytes drawn from a fixed stream (never all zero).
fn input_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut g = Gen::new("", false, seed);
    (0..n).map(|_| (g.next() >> 56) as u8).collect()
}

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus/seeds".into()));
    let mut models = vec![];
    for int8 in [false, true] {
        let q = if int8 { "int8" } else { "f32" };
        for (name, make) in [("tiny", tiny as fn(bool) -> _), ("resnet8", resnet8), ("pooled", pooled), ("wide", wide)]
        {
            models.push((format!("{name}-{q}"), make(int8)));
        }
    }
    models.push(("deep-int8".into(), deep()));
    let mut used: Vec<&str> = models.iter().flat_map(|(_, (_, k))| k.iter().copied()).collect();
    used.sort();
    used.dedup();
    let all = ["add", "avgpool2d", "channel_place", "conv2d", "dense", "flatten", "global_avgpool", "maxpool2d"];
    assert_eq!(used, all, "the seeds must use every op of the format");
    let (mut files, mut total) = (0, 0);
    for (i, (name, (file, _))) in models.iter().enumerate() {
        let rt = Runtime::from_bytes(file).expect("seed decodes");
        let input = input_bytes(rt.input_bytes() as usize, 100 + i as u64);
        let mut arena = vec![0u8; rt.arena_bytes() as usize];
        let mut out = vec![0u8; rt.output_bytes() as usize];
        rt.run(&mut arena, &input, &mut out).expect("seed runs");
        let payload = &file[HEADER_LEN..];
        let seeds = [
            ("decode", format!("{name}.pare"), file.clone()),
            ("decode", format!("{name}+input"), [file.clone(), input_bytes(file.len(), 200 + i as u64)].concat()),
            (
                "repaired",
                format!("{name}.payload"),
                [input_bytes(payload.len() / 3, 300 + i as u64), payload.to_vec()].concat(),
            ),
        ];
        for (target, seed_name, bytes) in seeds {
            write(&root.join(target), &seed_name, &bytes);
            (files, total) = (files + 1, total + bytes.len());
        }
    }
    // run_model: its fixed model takes 6×6×3 f32 (432 bytes); the pixel path reads the first 108.
    let specials = [0.0f32, -0.0, 1.0, -1.0, f32::MAX, f32::MIN, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-45];
    let floats = |f: &dyn Fn(usize) -> f32| (0..108).flat_map(|i| f(i).to_le_bytes()).collect::<Vec<u8>>();
    let inputs = [
        ("zeros", vec![0u8; 432]),
        ("ramp", (0..432).map(|i| i as u8).collect()),
        ("random", input_bytes(432, 400)),
        ("floats", floats(&|i| i as f32 / 27.0 - 2.0)),
        ("specials", floats(&|i| specials[i % specials.len()])),
        ("short", b"pare".to_vec()),
    ];
    for (name, bytes) in inputs {
        write(&root.join("run_model"), name, &bytes);
        (files, total) = (files + 1, total + bytes.len());
    }
    println!("wrote {files} seeds ({total} bytes) under {}, ops used: {}", root.display(), used.join(", "));
}
