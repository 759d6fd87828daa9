//! Arbitrary inputs to a fixed valid model (conv with padding, pool, dense).
#![no_main]

use pare_format::*;
use std::sync::OnceLock;

fn model() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| {
        let mut b = ModelBuilder::new("fuzz");
        let x = b.buffer(Buffer::f32(6, 6, 3));
        let c = b.buffer(Buffer::f32(6, 6, 4));
        let p = b.buffer(Buffer::f32(3, 3, 4));
        let g = b.buffer(Buffer::f32(1, 1, 4));
        let y = b.buffer(Buffer::f32(1, 1, 2));
        b.set_input(x).set_output(y);
        let w = Table::<f32>::encode(&[0.1; 108]);
        let bias = Table::<f32>::encode(&[0.0; 4]);
        let conv = Params::F32 { weights: Table::new(108, &w), bias: Table::new(4, &bias) };
        b.push(&Op::Conv2d(Conv2d {
            input: x,
            output: c,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1; 4],
            relu: true,
            params: conv,
        }))
        .unwrap();
        b.push(&Op::MaxPool2d(Pool { input: c, output: p, kernel: [2, 2], stride: [2, 2], padding: [0; 4] })).unwrap();
        b.push(&Op::GlobalAvgPool(Unary { input: p, output: g })).unwrap();
        let dw = Table::<f32>::encode(&[1.0; 8]);
        let db = Table::<f32>::encode(&[0.0; 2]);
        b.push(&Op::Dense(Dense {
            input: g,
            output: y,
            relu: false,
            params: Params::F32 { weights: Table::new(8, &dw), bias: Table::new(2, &db) },
        }))
        .unwrap();
        b.finish().unwrap()
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pare_device::fuzzing::exercise(model(), data);
});
