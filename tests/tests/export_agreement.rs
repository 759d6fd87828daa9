//! The exported model run by pare-device (the board's code, on the host) against burn's
//! forward pass, for every model family, pruned ones included.

use burn::tensor::Device;
use pare::data::load;
use pare::export::{export, Quant};
use pare_tests::{random_net, shared};

/// Max |device − burn| relative to the largest burn logit, over `n` images.
fn agreement(net: &pare::model::Net, quant: Quant, ds: &pare::data::Dataset) -> (f64, f64) {
    let device = Device::flex();
    let bytes = export(net, quant, Some(ds), None).unwrap();
    let em = pare::emulate::emulate(&bytes, ds).unwrap();
    let want = pare::train::logits(net, ds, 16, &device);
    let (mut diff, mut scale, mut same) = (0f64, 0f64, 0usize);
    for (a, b) in em.outputs.iter().zip(&want) {
        for (x, y) in a.iter().zip(b) {
            diff = diff.max(f64::from((x - y).abs()));
            scale = scale.max(f64::from(y.abs()));
        }
        same += usize::from(pare::train::argmax(a) == pare::train::argmax(b));
    }
    (diff / scale.max(1e-6), same as f64 / ds.len() as f64)
}

#[test]
fn f32_export_matches_burn_for_every_family() {
    let ds = load("synthetic", "test").unwrap().take(6);
    for name in ["tiny", "resnet8", "resnet20", "vgg16"] {
        let net = random_net(name, 1, &Device::flex());
        let (rel, _) = agreement(&net, Quant::F32, &ds);
        assert!(rel < 1e-4, "{name}: relative difference {rel}");
    }
}

#[test]
fn imagenet_layouts_at_64_match_burn() {
    // ResNet-18's ImageNet stem (7×7/2 conv, 3×3/2 max pool with padding 1) and ResNet-8 with
    // its average pool made global, at 64×64: the device's padded pool and large-kernel conv
    // against burn's.
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let ds = pare::data::Dataset {
        images: (0..3 * 64 * 64 * 3).map(|_| rng.random()).collect(),
        labels: vec![0; 3],
        shape: [3, 64, 64],
        classes: 102,
        source: "random 64×64".into(),
        class_names: vec![],
    };
    let device = Device::flex();
    for name in ["resnet18", "resnet8"] {
        device.seed(7);
        let arch = pare::model::zoo::for_input(name, 102, 64).unwrap();
        let net = pare::model::Net::init(&arch, &device).unwrap();
        let (rel, _) = agreement(&net, Quant::F32, &ds);
        assert!(rel < 1e-4, "{name} at 64×64: relative difference {rel}");
    }
}

#[test]
fn pruned_models_export_and_match_too() {
    let device = Device::flex();
    let ds = load("synthetic", "test").unwrap().take(4);
    for name in ["resnet20", "resnet8"] {
        let net = random_net(name, 2, &device);
        let groups = pare::prune::groups::Groups::of(&net.arch).unwrap();
        let mut keep = groups.keep_all();
        for s in groups.prunable(false) {
            let n = keep[s].len();
            keep[s] = (0..n).filter(|c| c % 3 != 1).collect();
        }
        let small = pare::prune::surgery::prune(&net, &groups, &keep, &device).unwrap();
        let (rel, _) = agreement(&small, Quant::F32, &ds);
        assert!(rel < 1e-4, "pruned {name}: relative difference {rel}");
    }
}

#[test]
fn int8_export_stays_close_to_f32() {
    let ds = load("synthetic", "test").unwrap().take(32);
    for name in ["tiny", "resnet8"] {
        let net = random_net(name, 3, &Device::flex());
        let (rel, same) = agreement(&net, Quant::Int8, &ds);
        assert!(rel < 0.1, "{name}: int8 relative difference {rel}");
        assert!(same >= 0.8, "{name}: int8 agrees with f32 on only {same} of top-1");
    }
}

#[test]
fn pretrained_resnet20_f32_matches_burn_within_1e4() {
    let Some(shared) = shared("models/resnet-cifar10") else { return };
    let device = Device::flex();
    let arch = pare::model::zoo::resnet_cifar(20, 10);
    let net =
        pare::model::weights::load_weights(&arch, &shared.join("models/resnet-cifar10/resnet20.safetensors"), &device)
            .unwrap();
    let ds = pare::data::load_cifar(&shared.join("data/cifar10"), "test_lossless").unwrap().take(20);
    let bytes = export(&net, Quant::F32, None, None).unwrap();
    let em = pare::emulate::emulate(&bytes, &ds).unwrap();
    let want = pare::train::logits(&net, &ds, 20, &device);
    for (a, b) in em.outputs.iter().zip(&want) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
    }
}
