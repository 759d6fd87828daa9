//! For every model family (coupled residual groups included): the physically pruned model's
//! output equals the original model's output with the removed channels zeroed.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use pare::channels::Groups;
use pare::model::zoo;
use pare::prune::surgery::{forward_masked, prune};
use pare::testing::random_net;
use rand::{Rng, SeedableRng};

fn check_family(name: &str) {
    let device = Device::flex();
    let net = random_net(name, 7, &device);
    let groups = Groups::of(&net.arch).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut keep = groups.keep_all();
    let mut pruned_any = false;
    for s in groups.prunable(false) {
        let n = groups.spaces[s].channels;
        let kept: Vec<usize> = (0..n).filter(|_| rng.random_bool(0.6)).collect();
        let kept = if kept.is_empty() { vec![n - 1] } else { kept };
        pruned_any |= kept.len() < n;
        keep[s] = kept;
    }
    assert!(pruned_any);
    let small = prune(&net, &groups, &keep, &device).unwrap();
    let (m0, _) = net.arch.cost().unwrap();
    let (m1, _) = small.arch.cost().unwrap();
    assert!(m1 < m0, "{name}: pruning must reduce MACs ({m1} vs {m0})");
    let x: Tensor<4> = Tensor::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let want = forward_masked(&net.valid(), &groups, &keep, x.clone());
    let got = small.valid().forward(x);
    let diff = (want.clone() - got).abs().max().into_scalar::<f32>();
    let scale = want.abs().max().into_scalar::<f32>().max(1.0);
    assert!(diff / scale < 1e-4, "{name}: pruned vs masked differ by {diff} (scale {scale})");
}

#[test]
fn tiny_pruned_equals_masked() {
    check_family("tiny");
}

#[test]
fn resnet20_option_a_pruned_equals_masked() {
    check_family("resnet20");
}

#[test]
fn resnet8_projection_pruned_equals_masked() {
    check_family("resnet8");
}

#[test]
fn resnet18_projection_pruned_equals_masked() {
    check_family("resnet18");
}

#[test]
fn resnet50_bottleneck_pruned_equals_masked() {
    check_family("resnet50");
}

#[test]
fn vgg16_pruned_equals_masked() {
    check_family("vgg16");
}

#[test]
fn resnet20_groups_are_the_residual_streams() {
    let arch = zoo::by_name("resnet20", 10).unwrap();
    let g = Groups::of(&arch).unwrap();
    // Hand count: 9 block-internal spaces (conv1 of each block) + 3 residual streams.
    let prunable = g.prunable(false);
    assert_eq!(prunable.len(), 12);
    assert_eq!(g.prunable(true).len(), 9);
    let mut streams: Vec<usize> = prunable.iter().map(|&s| g.spaces[s].producers.len()).filter(|&n| n > 1).collect();
    streams.sort();
    // Stage 1: stem + 3 conv2; stages 2 and 3: 3 conv2 each (their shortcuts have no filters).
    assert_eq!(streams, vec![3, 3, 4]);
}
