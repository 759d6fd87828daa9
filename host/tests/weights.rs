//! Weight import errors, checkpoint round trip, and the published accuracy of the pretrained
//! CIFAR ResNets (on ../shared, which must sit beside the checkout).

use pare::testing::shared;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use pare::model::{weights, zoo, Net};

#[test]
fn checkpoint_round_trip_reproduces_outputs_and_architecture() {
    let device = Device::flex();
    let net = Net::init(&zoo::resnet8(10), &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let meta = weights::CheckpointMeta { epoch: Some(3), ..Default::default() };
    weights::save_checkpoint(&net, &meta, &path).unwrap();
    let (back, meta) = weights::load_checkpoint(&path, &device).unwrap();
    assert_eq!((meta.epoch, meta.step, meta.provenance), (Some(3), None, None));
    // On disk under the documented key, as a plain number.
    assert_eq!(weights::read(&path).unwrap().1.get("pare.epoch").map(String::as_str), Some("3"));
    assert_eq!(back.arch, net.arch);
    let x: Tensor<4> = Tensor::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let d = (net.valid().forward(x.clone()) - back.valid().forward(x)).abs().max().into_scalar::<f32>();
    assert_eq!(d, 0.0);
}

#[test]
fn pruned_checkpoint_reloads_with_no_other_input() {
    let device = Device::flex();
    let net = Net::init(&zoo::resnet_cifar(20, 10), &device).unwrap();
    let groups = pare::channels::Groups::of(&net.arch).unwrap();
    let mut keep = groups.keep_all();
    for s in groups.prunable(false) {
        let half = keep[s].len() / 2;
        keep[s].truncate(half);
    }
    let small = pare::prune::surgery::prune(&net, &groups, &keep, &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pruned.safetensors");
    weights::save_checkpoint(&small, &weights::CheckpointMeta::default(), &path).unwrap();
    let (back, _) = weights::load_checkpoint(&path, &device).unwrap();
    assert_eq!(back.arch, small.arch);
    assert!(back.arch.cost().unwrap().0 < net.arch.cost().unwrap().0);
}

#[test]
fn import_errors_list_missing_unexpected_and_misshaped() {
    let device = Device::flex();
    let net = Net::init(&zoo::tiny(10), &device).unwrap();
    let mut t = weights::to_tensors(&net);
    t.remove("conv2.weight");
    t.insert("extra.weight".into(), (vec![1], vec![0.0]));
    t.get_mut("linear.bias").unwrap().0 = vec![11];
    t.get_mut("linear.bias").unwrap().1.push(0.0);
    let arch = zoo::tiny(10);
    let err = weights::check(&arch, &t, std::path::Path::new("w.safetensors")).unwrap_err().to_string();
    assert!(err.contains("missing (1): conv2.weight"), "{err}");
    assert!(err.contains("unexpected (1): extra.weight"), "{err}");
    assert!(err.contains("mis-shaped (1): linear.bias is [11], expected [10]"), "{err}");
}

#[test]
fn not_a_safetensors_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("junk.safetensors");
    std::fs::write(&p, b"definitely not safetensors").unwrap();
    let err = weights::read(&p).unwrap_err().to_string();
    assert!(err.contains("junk.safetensors") && err.contains("not a safetensors file"), "{err}");
    let err =
        weights::load_checkpoint(&dir.path().join("missing.safetensors"), &Device::flex()).unwrap_err().to_string();
    assert!(err.contains("missing.safetensors"), "{err}");
}

/// `--weights /dev/zero` was read until memory ran out; a directory gave an OS error only.
#[cfg(unix)]
#[test]
fn weights_must_be_a_regular_file() {
    use pare::input::InputError;
    for p in ["/dev/zero", "/tmp"] {
        match weights::read(std::path::Path::new(p)) {
            Err(weights::WeightsError::Input(e @ InputError::NotRegular { .. })) => {
                assert!(e.to_string().starts_with(p) && e.to_string().contains("not a regular file"), "{e}")
            }
            other => panic!("{p}: {other:?}"),
        }
    }
}

/// Published reference: an independent NumPy forward measured 91.61 % (resnet20) and 92.93 %
/// (resnet56) on test_lossless.bin.
#[test]
fn pretrained_resnets_reach_their_published_accuracy() {
    let shared = shared("models/resnet-cifar10");
    let device = Device::flex();
    let ds = pare::data::load_cifar(&shared.join("data/cifar10"), "test_lossless").unwrap();
    for (name, want) in [("resnet20", 0.9161), ("resnet56", 0.9293)] {
        let path = shared.join(format!("models/resnet-cifar10/{name}.safetensors"));
        let net = weights::load_weights(&zoo::by_name(name, 10).unwrap(), &path, &device).unwrap();
        let ev = pare::train::evaluate(&net, &ds, 256, &device);
        assert!((ev.top1 - want).abs() <= 0.003, "{name}: {:.4} vs {want}", ev.top1);
    }
}

#[test]
fn malformed_checkpoint_metadata_is_an_error_naming_its_key() {
    // A checkpoint whose epoch entry is not a number: resuming from it used to start at epoch 0.
    let device = Device::flex();
    let net = Net::init(&zoo::tiny(10), &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.safetensors");
    weights::save_checkpoint(&net, &weights::CheckpointMeta::default(), &good).unwrap();
    let (t, mut meta) = weights::read(&good).unwrap();
    meta.insert("pare.epoch".into(), "three".into());
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> =
        t.iter().map(|(k, (s, v))| (k.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect(), s.clone())).collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = bytes
        .iter()
        .map(|(k, b, s)| {
            (k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap())
        })
        .collect();
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, safetensors::serialize(views, Some(meta.into_iter().collect())).unwrap()).unwrap();
    let e = weights::load_checkpoint(&bad, &device).unwrap_err().to_string();
    assert!(e.contains("pare.epoch") && e.contains("three"), "{e}");
}
