//! Export refuses weights that would give a silently wrong model: before this
//! check a ResNet-20 with one NaN weight exported with exit 0 and ran at 11.4 % instead of 91 %.
//! Each case plants one hand-chosen bad value and expects an error that names its tensor.

use burn::tensor::Device;
use pare::export::{export, Quant};
use pare::model::weights;
use pare::testing::random_net;

/// resnet8 with `f` applied to its tensors, exported as f32; the error text.
fn export_error(f: impl FnOnce(&mut weights::Tensors)) -> Option<String> {
    let device = Device::flex();
    let net = random_net("resnet8", 1, &device);
    let mut t = weights::to_tensors(&net);
    f(&mut t);
    let net = weights::from_tensors(&net.arch, &t, &device).expect("from tensors");
    export(&net, Quant::F32, None, None).err().map(|e| format!("{e:#}"))
}

#[test]
fn a_clean_model_exports() {
    assert_eq!(export_error(|_| {}), None);
}

#[test]
fn a_nan_weight_is_refused_by_name() {
    let e = export_error(|t| t.get_mut("conv1.weight").expect("stem").1[5] = f32::NAN).expect("refused");
    assert!(e.contains("`conv1.weight`") && e.contains("NaN") && e.contains("index 5"), "{e}");
}

#[test]
fn an_infinite_bias_is_refused_by_name() {
    let e = export_error(|t| t.get_mut("linear.bias").expect("classifier").1[2] = f32::INFINITY).expect("refused");
    assert!(e.contains("`linear.bias`") && e.contains("inf"), "{e}");
}

#[test]
fn a_negative_batchnorm_variance_is_refused() {
    let e = export_error(|t| t.get_mut("bn1.running_var").expect("stem bn").1[0] = -0.5).expect("refused");
    assert!(e.contains("`bn1.running_var`") && e.contains("negative"), "{e}");
}

#[test]
fn a_fold_that_overflows_names_the_conv() {
    // 3e38 is finite, but times a BatchNorm scale of 1/sqrt(1e-4 + 1e-5) ≈ 95 it is not.
    let e = export_error(|t| {
        t.get_mut("conv1.weight").expect("stem").1[0] = 3e38;
        t.get_mut("bn1.running_var").expect("stem bn").1[0] = 1e-4;
        t.get_mut("bn1.weight").expect("stem bn").1[0] = 1.0;
    })
    .expect("refused");
    assert!(e.contains("conv `conv1`") && e.contains("overflows"), "{e}");
}
