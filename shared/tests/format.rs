//! Format tests: exact round trips of random valid graphs, no panic on mutated files, and the
//! specific error for each hand-made corruption.

use pare_format::*;
use proptest::prelude::*;

/// Little-endian bytes of a f32 slice.
fn f32s(v: &[f32]) -> Vec<u8> {
    Table::encode(v)
}

/// A small valid model: conv(3→4, 3×3, pad 1) → maxpool 2 → global avg → dense(4→2).
fn small_model() -> Vec<u8> {
    let mut b = ModelBuilder::new("small");
    b.labels(&["cat", "dog"]).normalization(&[0.5, 0.5, 0.5], &[0.25, 0.25, 0.25]);
    let x = b.buffer(Buffer::f32(8, 8, 3));
    let c = b.buffer(Buffer::f32(8, 8, 4));
    let p = b.buffer(Buffer::f32(4, 4, 4));
    let g = b.buffer(Buffer::f32(1, 1, 4));
    let y = b.buffer(Buffer::f32(1, 1, 2));
    b.set_input(x).set_output(y);
    let w = f32s(&(0..4 * 9 * 3).map(|i| i as f32 * 0.01).collect::<Vec<_>>());
    let bias = f32s(&[0.1, 0.2, 0.3, 0.4]);
    b.push(&Op::Conv2d(Conv2d {
        input: x,
        output: c,
        kernel: [3, 3],
        stride: [1, 1],
        padding: [1, 1, 1, 1],
        relu: true,
        params: Params::F32 { weights: Table::new(108, &w), bias: Table::new(4, &bias) },
    }))
    .unwrap();
    b.push(&Op::MaxPool2d(Pool { input: c, output: p, kernel: [2, 2], stride: [2, 2], padding: [0; 4] })).unwrap();
    b.push(&Op::GlobalAvgPool(Unary { input: p, output: g })).unwrap();
    let dw = f32s(&[1.0, -1.0, 0.5, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let db = f32s(&[0.0, 1.0]);
    b.push(&Op::Dense(Dense {
        input: g,
        output: y,
        relu: false,
        params: Params::F32 { weights: Table::new(8, &dw), bias: Table::new(2, &db) },
    }))
    .unwrap();
    b.finish().expect("small model is valid")
}

fn payload(file: &[u8]) -> &[u8] {
    &file[HEADER_LEN..]
}

/// Re-encodes a modified model without validation, so validate() is what we test.
fn reframe(m: &Model<'_>) -> Vec<u8> {
    frame(&postcard::to_allocvec(m).unwrap())
}

#[test]
fn small_model_decodes_with_its_metadata() {
    let file = small_model();
    let m = decode(&file).unwrap();
    assert_eq!(m.meta.name, "small");
    let labels: Vec<&str> = m.meta.labels.iter().map(Result::unwrap).collect();
    assert_eq!(labels, ["cat", "dog"]);
    assert_eq!(m.ops.len(), 4);
    assert_eq!(m.input_buffer().unwrap(), Buffer::f32(8, 8, 3));
    // Hand-derived plan: the conv output (1024 B) is live with the input (768 B) at step 1 and
    // with the pool output (256 B) at step 2; the greedy planner needs 1024 + 768 bytes.
    assert_eq!(m.plan.arena_bytes, 1792);
    match m.ops.get(0).unwrap() {
        Op::Conv2d(c) => {
            let Params::F32 { weights, .. } = c.params else { panic!("f32 params") };
            assert_eq!(weights.get(107), Some(107.0 * 0.01));
        }
        other => panic!("unexpected first op {other:?}"),
    }
}

#[test]
fn every_truncation_is_refused_with_truncated_or_bad_magic() {
    let file = small_model();
    for n in 0..file.len() {
        match decode(&file[..n]) {
            Err(Error::Truncated { got, .. }) => assert_eq!(got as usize, n),
            other => panic!("prefix of {n} bytes: {other:?}"),
        }
    }
}

#[test]
fn each_header_field_altered_gives_its_error() {
    let file = small_model();
    let mut f = file.clone();
    f[0] = b'X';
    assert_eq!(decode(&f), Err(Error::BadMagic));
    let mut f = file.clone();
    f[4] = 2;
    assert_eq!(decode(&f), Err(Error::UnsupportedVersion { found: 2, supported: 1 }));
    let mut f = file.clone();
    f[6] = 1;
    assert_eq!(decode(&f), Err(Error::UnknownFlags(1)));
    let len = u32::from_le_bytes(file[8..12].try_into().unwrap());
    let mut f = file.clone();
    f[8..12].copy_from_slice(&(len + 1).to_le_bytes());
    assert!(matches!(decode(&f), Err(Error::Truncated { .. })));
    let mut f = file.clone();
    f[8..12].copy_from_slice(&(len - 1).to_le_bytes());
    assert_eq!(decode(&f), Err(Error::TrailingBytes(1)));
    let mut f = file.clone();
    f[12] ^= 0xff;
    assert!(matches!(decode(&f), Err(Error::ChecksumMismatch { .. })));
    let mut f = file.clone();
    let last = f.len() - 1;
    f[last] ^= 0x01;
    assert!(matches!(decode(&f), Err(Error::ChecksumMismatch { .. })));
}

#[test]
fn garbage_payload_with_valid_crc_is_malformed() {
    let file = frame(&[0xff; 40]);
    assert_eq!(decode(&file), Err(Error::Malformed));
}

#[test]
fn shapes_that_do_not_chain_are_refused() {
    let mut b = ModelBuilder::new("bad");
    let x = b.buffer(Buffer::f32(8, 8, 3));
    let y = b.buffer(Buffer::f32(7, 8, 3)); // 2×2 stride-2 pool of 8×8 is 4×4
    b.set_input(x).set_output(y);
    b.push(&Op::MaxPool2d(Pool { input: x, output: y, kernel: [2, 2], stride: [2, 2], padding: [0; 4] })).unwrap();
    assert!(matches!(b.finish(), Err(Error::InvalidGraph(GraphError::ShapeMismatch { op: 0, .. }))));
}

#[test]
fn wrong_weight_count_is_refused() {
    let mut b = ModelBuilder::new("bad");
    let x = b.buffer(Buffer::f32(1, 1, 3));
    let y = b.buffer(Buffer::f32(1, 1, 2));
    b.set_input(x).set_output(y);
    let w = f32s(&[0.0; 5]);
    let bias = f32s(&[0.0; 2]);
    b.push(&Op::Dense(Dense {
        input: x,
        output: y,
        relu: false,
        params: Params::F32 { weights: Table::new(5, &w), bias: Table::new(2, &bias) },
    }))
    .unwrap();
    assert_eq!(
        b.finish(),
        Err(Error::InvalidGraph(GraphError::LengthMismatch { op: 0, what: "weights", expected: 6, got: 5 }))
    );
}

#[test]
fn plan_offsets_past_the_arena_are_refused() {
    let file = small_model();
    let m = decode(&file).unwrap();
    let mut entries: Vec<PlanEntry> = m.plan.entries.iter().collect();
    entries[4].offset = m.plan.arena_bytes; // the 8-byte output starts at the arena's end
    let bytes = Table::encode(&entries);
    let mut bad = m;
    bad.plan.entries = Table::new(entries.len() as u32, &bytes);
    assert_eq!(decode(&reframe(&bad)), Err(Error::InvalidGraph(GraphError::OutsideArena { buffer: 4, arena: 1792 })));
}

#[test]
fn overlapping_live_buffers_are_refused() {
    let file = small_model();
    let m = decode(&file).unwrap();
    let mut entries: Vec<PlanEntry> = m.plan.entries.iter().collect();
    // Input (live at steps 0..=1) and conv output (1..=2) placed at the same offset.
    entries[0].offset = entries[1].offset;
    let bytes = Table::encode(&entries);
    let mut bad = m;
    bad.plan.entries = Table::new(entries.len() as u32, &bytes);
    assert_eq!(decode(&reframe(&bad)), Err(Error::InvalidGraph(GraphError::Overlap { a: 0, b: 1 })));
}

#[test]
fn misaligned_offsets_and_wrong_lifetimes_are_refused() {
    let file = small_model();
    let m = decode(&file).unwrap();
    let base: Vec<PlanEntry> = m.plan.entries.iter().collect();
    let check = |edit: &dyn Fn(&mut Vec<PlanEntry>), want: GraphError| {
        let mut e = base.clone();
        edit(&mut e);
        let bytes = Table::encode(&e);
        let mut bad = m;
        bad.plan.entries = Table::new(e.len() as u32, &bytes);
        assert_eq!(decode(&reframe(&bad)), Err(Error::InvalidGraph(want)));
    };
    check(&|e| e[2].offset += 2, GraphError::Misaligned { buffer: 2 });
    check(&|e| e[1].last = 1, GraphError::OutsideLifetime { buffer: 1, step: 2 });
    check(&|e| e[4].last = 4, GraphError::OutsideLifetime { buffer: 4, step: 5 });
}

#[test]
fn out_of_range_buffer_ids_are_refused() {
    let file = small_model();
    let m = decode(&file).unwrap();
    let mut bad = m;
    bad.output = 9;
    assert_eq!(decode(&reframe(&bad)), Err(Error::InvalidGraph(GraphError::IoOutOfRange { buffer: 9 })));
}

// ---- property tests ----

#[derive(Debug, Clone)]
enum Step {
    Conv { k: u32, s: u32, pad: u32, c: u32, relu: bool },
    MaxPool { k: u32, s: u32 },
    AvgPool { k: u32, s: u32, pad: u32 },
    Residual,
    Place { s: u32, extra: u32 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u32..4, 1u32..3, 0u32..3, 1u32..7, any::<bool>()).prop_map(|(k, s, pad, c, relu)| Step::Conv {
            k,
            s,
            pad: pad.min(k - 1),
            c,
            relu
        }),
        (1u32..4, 1u32..3).prop_map(|(k, s)| Step::MaxPool { k, s }),
        (1u32..4, 1u32..3, 0u32..2).prop_map(|(k, s, pad)| Step::AvgPool { k, s, pad: pad.min(k - 1) }),
        Just(Step::Residual),
        (1u32..3, 0u32..4).prop_map(|(s, extra)| Step::Place { s, extra }),
    ]
}

/// Builds a valid random f32 graph; returns the file and the ops' encodings in order.
fn random_model(h: u32, w: u32, c: u32, steps: &[Step], seed: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut b = ModelBuilder::new("random");
    let mut cur = b.buffer(Buffer::f32(h, w, c));
    b.set_input(cur);
    let mut encoded = Vec::new();
    let mut val = seed;
    let mut numbers = |n: u32| -> Vec<u8> {
        f32s(
            &(0..n)
                .map(|_| {
                    val = val.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (val >> 16) as f32 / 65536.0 - 0.5
                })
                .collect::<Vec<_>>(),
        )
    };
    let mut push = |b: &mut ModelBuilder, op: Op<'_>| {
        encoded.push(postcard::to_allocvec(&op).unwrap());
        b.push(&op).unwrap();
    };
    for st in steps {
        let i = b.buffer_info(cur).unwrap();
        match *st {
            Step::Conv { k, s, pad, c, relu } => {
                if i.h + 2 * pad < k || i.w + 2 * pad < k {
                    continue;
                }
                let o = Buffer::f32((i.h + 2 * pad - k) / s + 1, (i.w + 2 * pad - k) / s + 1, c);
                let out = b.buffer(o);
                let (wb, bb) = (numbers(c * k * k * i.c), numbers(c));
                push(
                    &mut b,
                    Op::Conv2d(Conv2d {
                        input: cur,
                        output: out,
                        kernel: [k, k],
                        stride: [s, s],
                        padding: [pad; 4],
                        relu,
                        params: Params::F32 { weights: Table::new(c * k * k * i.c, &wb), bias: Table::new(c, &bb) },
                    }),
                );
                cur = out;
            }
            Step::MaxPool { k, s } | Step::AvgPool { k, s, pad: 0 } if i.h >= k && i.w >= k => {
                let out = b.buffer(Buffer::f32((i.h - k) / s + 1, (i.w - k) / s + 1, i.c));
                let p = Pool { input: cur, output: out, kernel: [k, k], stride: [s, s], padding: [0; 4] };
                push(&mut b, if matches!(st, Step::MaxPool { .. }) { Op::MaxPool2d(p) } else { Op::AvgPool2d(p) });
                cur = out;
            }
            Step::AvgPool { k, s, pad } if pad > 0 && i.h + 2 * pad >= k && i.w + 2 * pad >= k => {
                let out = b.buffer(Buffer::f32((i.h + 2 * pad - k) / s + 1, (i.w + 2 * pad - k) / s + 1, i.c));
                push(
                    &mut b,
                    Op::AvgPool2d(Pool { input: cur, output: out, kernel: [k, k], stride: [s, s], padding: [pad; 4] }),
                );
                cur = out;
            }
            Step::Residual => {
                let side = b.buffer(i);
                let (wb, bb) = (numbers(i.c * i.c), numbers(i.c));
                push(
                    &mut b,
                    Op::Conv2d(Conv2d {
                        input: cur,
                        output: side,
                        kernel: [1, 1],
                        stride: [1, 1],
                        padding: [0; 4],
                        relu: true,
                        params: Params::F32 { weights: Table::new(i.c * i.c, &wb), bias: Table::new(i.c, &bb) },
                    }),
                );
                let out = b.buffer(i);
                push(&mut b, Op::Add(Add { a: cur, b: side, output: out, relu: true, quant: None }));
                cur = out;
            }
            Step::Place { s, extra } => {
                let out = b.buffer(Buffer::f32(i.h.div_ceil(s), i.w.div_ceil(s), i.c + extra));
                let chans: Vec<u16> = (0..i.c as u16).map(|ch| ch + (extra / 2) as u16).collect();
                let cb = Table::encode(&chans);
                push(
                    &mut b,
                    Op::ChannelPlace(ChannelPlace {
                        input: cur,
                        output: out,
                        stride: s,
                        channels: Table::new(i.c, &cb),
                    }),
                );
                cur = out;
            }
            _ => {}
        }
    }
    let i = b.buffer_info(cur).unwrap();
    let g = b.buffer(Buffer::f32(1, 1, i.c));
    push(&mut b, Op::GlobalAvgPool(Unary { input: cur, output: g }));
    let f = b.buffer(Buffer::f32(1, 1, i.c));
    push(&mut b, Op::Flatten(Unary { input: g, output: f }));
    let y = b.buffer(Buffer::f32(1, 1, 3));
    let (wb, bb) = (numbers(3 * i.c), numbers(3));
    push(
        &mut b,
        Op::Dense(Dense {
            input: f,
            output: y,
            relu: false,
            params: Params::F32 { weights: Table::new(3 * i.c, &wb), bias: Table::new(3, &bb) },
        }),
    );
    b.set_output(y).labels(&["a", "b", "c"]);
    (b.finish().expect("generated graphs are valid"), encoded)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_valid_graphs_round_trip_exactly(
        h in 1u32..12, w in 1u32..12, c in 1u32..6,
        steps in proptest::collection::vec(step(), 0..8), seed in any::<u32>(),
    ) {
        let (file, ops) = random_model(h, w, c, &steps, seed);
        let m = decode(&file).unwrap();
        prop_assert_eq!(m.ops.len() as usize, ops.len());
        for (decoded, original) in m.ops.iter().zip(&ops) {
            let decoded = decoded.unwrap();
            prop_assert_eq!(&postcard::to_allocvec(&decoded).unwrap(), original);
        }
        prop_assert_eq!(postcard::to_allocvec(&m).unwrap(), payload(&file).to_vec());
    }

    #[test]
    fn mutated_files_never_panic(
        steps in proptest::collection::vec(step(), 0..5),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        fix_crc in any::<bool>(),
    ) {
        let (file, _) = random_model(6, 6, 3, &steps, 7);
        let mut body = payload(&file).to_vec();
        for (at, byte, kind) in edits {
            if body.is_empty() { break; }
            let i = at.index(body.len());
            match kind {
                0 => body[i] = byte,
                1 => { body.remove(i); }
                _ => body.insert(i, byte),
            }
        }
        let mutated = if fix_crc {
            frame(&body)
        } else {
            let mut f = file[..HEADER_LEN].to_vec();
            f.extend_from_slice(&body);
            f
        };
        let _ = decode(&mutated);
    }
}
