//! Training learns on the real CIFAR-10: ResNet-8's loss falls within a few dozen steps.
//! (Longer runs, VGG-16 and the ≥ 80 % ResNet-8 schedule, are recorded in BENCHMARKS.md.)

use burn::tensor::Device;
use pare::model::{zoo, Net};
use pare::testing::shared;
use pare::train::{train, Schedule, TrainConfig};
use std::sync::atomic::AtomicBool;

#[test]
fn resnet8_loss_falls_on_real_cifar() {
    let shared = shared("data/cifar10");
    let ds = pare::data::load_cifar(&shared.join("data/cifar10"), "train_lossless").unwrap().take(640);
    let device = Device::flex().autodiff();
    device.seed(0);
    let net = Net::init(&zoo::by_name("resnet8", 10).unwrap(), &device).unwrap();
    let cfg =
        TrainConfig { epochs: 6, batch_size: 32, lr: 0.05, schedule: Schedule::Constant, ..TrainConfig::default() };
    let mut losses = vec![];
    train(net, &ds, &cfg, Default::default(), &device, &AtomicBool::new(false), &mut |_, s, _| losses.push(s.loss));
    eprintln!("resnet8, 6 epochs of 640 real images: mean loss per epoch {losses:?}");
    // Chance is ln 10 = 2.30; a model that learns nothing stays there.
    assert!(losses[0] > 1.9, "{losses:?}");
    assert!(losses[5] < 0.85 * losses[0], "the loss did not fall: {losses:?}");
}
