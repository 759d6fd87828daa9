//! `--precision bf16`: burn-flex's convolution GEMMs with bf16 products and f32 sums
//! (`burn_flex::ops::bf16_products`, AVX-512 BF16) against the f64 definition. With bf16 inputs
//! (8-bit mantissas) a product is off by up to 2⁻⁸ relative, so the tolerance is 1e-2 of the
//! largest value, and the error must exceed float32's (1e-5): the bf16 path ran. On a CPU without
//! AVX-512 BF16 the switch must refuse and the kernels stay exact. Its own test binary: the
//! switch is global to the process.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

#[path = "common/conv_reference.rs"]
mod conv_reference;
use conv_reference::{host, random, reference, rel_diff, Case};

#[test]
fn bf16_products_stay_within_bf16_rounding_of_the_definition() {
    let on = burn_flex::ops::bf16_products(true);
    let cases = [
        // Winograd's GEMMs (≥ 128 channels), and im2col GEMMs (stride 2, a 1×1 and a 5×5).
        Case::same3x3([4, 128, 8, 8], [128, 128, 3, 3]),
        Case::same3x3([2, 131, 9, 11], [129, 131, 3, 3]),
        Case {
            x: [4, 32, 16, 16],
            w: [64, 32, 3, 3],
            stride: [2, 2],
            pad: [(1, 1), (1, 1)],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            x: [4, 64, 16, 16],
            w: [48, 64, 1, 1],
            stride: [1, 1],
            pad: [(0, 0), (0, 0)],
            dilation: [1, 1],
            groups: 1,
        },
        Case {
            x: [2, 16, 20, 20],
            w: [32, 16, 5, 5],
            stride: [1, 1],
            pad: [(2, 2), (2, 2)],
            dilation: [1, 1],
            groups: 1,
        },
    ];
    burn_flex::ops::poison_outputs(true);
    let ad = Device::flex().autodiff();
    for (i, c) in cases.iter().enumerate() {
        let seed = 100 + 10 * i as u64;
        let x = random(c.x.iter().product(), seed);
        let w = random(c.w.iter().product(), seed + 1);
        let options = ConvOptions::new_with_padding(c.stride, c.pad, c.dilation, c.groups);
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), c.x), &ad).require_grad();
        let wt = Tensor::<4>::from_data(TensorData::new(w.clone(), c.w), &ad).require_grad();
        let y = conv2d(xt.clone(), wt.clone(), None, options);
        let [n, cout, oh, ow] = y.dims();
        let r = random(n * cout * oh * ow, seed + 2);
        let (ry, rdx, rdw, _) = reference(c, &x, &w, &r);
        let rt = Tensor::<4>::from_data(TensorData::new(r, [n, cout, oh, ow]), &ad);
        let grads = (y.clone() * rt).sum().backward();
        let (dx, dw) = (host(xt.grad(&grads).unwrap()), host(wt.grad(&grads).unwrap()));
        let errs = [rel_diff(&host(y), &ry), rel_diff(&dx, &rdx), rel_diff(&dw, &rdw)];
        eprintln!("case {i} (bf16 {on}): relative error y {:.1e}, dx {:.1e}, dw {:.1e}", errs[0], errs[1], errs[2]);
        for e in errs {
            assert!(e.is_finite(), "case {i}: {errs:?}");
            if on {
                assert!(e < 1e-2, "case {i}: {errs:?} beyond bf16 rounding");
            } else {
                assert!(e < 1e-5, "case {i}: {errs:?} without bf16 products");
            }
        }
        if on {
            // The forward pass went through bf16 products (float32 alone is within 1e-5).
            assert!(errs[0] > 1e-5, "case {i}: y error {} looks like float32: was bf16 used?", errs[0]);
        }
    }
    burn_flex::ops::bf16_products(false);
}
