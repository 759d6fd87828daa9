//! `Net::folded` (every BatchNorm folded into its convolution, for inference) against the
//! unfolded network run by burn's own BatchNorm: the same logits up to float rounding on models
//! with random weights and random BatchNorm statistics, scales and shifts, for the CIFAR
//! ResNets (option-A shortcuts), VGG-16 and an ImageNet-stem ResNet (asymmetric pads, pools).

use burn::tensor::{Device, Tensor, TensorData};
use pare::model::{weights, zoo, Net};
use rand::{Rng, SeedableRng};

/// A model of `arch` with random weights and every BatchNorm's four tensors random.
fn random(arch: &pare::model::Arch, seed: u64, device: &Device) -> Net {
    device.seed(seed);
    let net = Net::init(arch, device).expect("init");
    let mut t = weights::to_tensors(&net);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for (k, (_, v)) in t.iter_mut() {
        let range = if k.contains("running_var") {
            0.3..2.5
        } else if k.contains("running_mean") || (k.contains("bn") && k.ends_with("bias")) {
            -0.3..0.3
        } else if k.contains("bn") && k.ends_with("weight") {
            0.5..1.5
        } else {
            continue;
        };
        v.iter_mut().for_each(|x| *x = rng.random_range(range.clone()));
    }
    weights::from_tensors(arch, &t, device).expect("from tensors")
}

fn images(n: usize, size: usize, seed: u64, device: &Device) -> Tensor<4> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n * 3 * size * size).map(|_| rng.random_range(-2.0..2.0)).collect();
    Tensor::from_data(TensorData::new(v, [n, 3, size, size]), device)
}

fn values(t: Tensor<2>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32")
}

#[test]
fn folded_batchnorm_gives_the_unfolded_logits() {
    let device = Device::flex();
    let cases = [
        (zoo::by_name("resnet8", 10).expect("resnet8"), 32),
        (zoo::by_name("resnet20", 10).expect("resnet20"), 32),
        (zoo::by_name("vgg16", 10).expect("vgg16"), 32),
        (zoo::for_input("resnet18", 7, 48).expect("resnet18"), 48),
    ];
    for (seed, (arch, size)) in cases.iter().enumerate() {
        let net = random(arch, seed as u64 + 1, &device);
        let x = images(3, *size, seed as u64 + 100, &device);
        let want = values(net.forward(x.clone()));
        let got = values(net.folded().forward(x));
        assert_eq!(want.len(), got.len());
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 1e-3, "degenerate logits for model {seed}");
        let err = want.iter().zip(&got).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        assert!(err < 1e-4, "model {seed}: folded logits differ by {err:e} (relative)");
    }
}
