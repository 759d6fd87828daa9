//! `pare bench train`: images per second of training steps and of inference, for comparison
//! with PyTorch (`bench/train-vs-pytorch.sh`).

use super::common::{zoo_arch, DeviceKind};
use crate::model::Net;
use crate::train::cross_entropy;
use burn::module::Module;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Distribution, Int, Tensor, TensorData};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Training-step and inference throughput on random data.
    Train {
        /// A zoo model, or a pare checkpoint (`.safetensors`, e.g. a pruned network) whose
        /// architecture is trained from a fresh initialisation.
        #[arg(long, default_value = "resnet56")]
        model: String,
        #[arg(long, default_value_t = 64, value_parser = super::common::positive, allow_negative_numbers = true)]
        batch: usize,
        #[arg(long, value_enum, default_value = "cpu")]
        device: DeviceKind,
        /// Timed training steps (after 2 warm-up steps).
        #[arg(long, default_value_t = 10, value_parser = super::common::positive, allow_negative_numbers = true)]
        steps: usize,
    },
}

pub fn run(c: BenchCommand) -> anyhow::Result<()> {
    let BenchCommand::Train { model, batch, device, steps } = c;
    let dev = device.device()?;
    let ad = dev.clone().autodiff();
    ad.seed(0);
    let arch = if model.ends_with(".safetensors") {
        let path = std::path::Path::new(&model);
        crate::model::weights::load_checkpoint(path, &dev)?.0.arch
    } else {
        zoo_arch(&model)?
    };
    let (macs, _params) = arch.cost().map_err(anyhow::Error::msg)?;
    let mut net = Net::init(&arch, &ad).map_err(anyhow::Error::msg)?;
    let mut optim =
        SgdConfig::new().with_momentum(Some(MomentumConfig { momentum: 0.9, dampening: 0.0, nesterov: true })).init();
    // Labels within the model's classes, images at its input size.
    let classes = crate::train::classes_of(&arch).max(1) as i64;
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % classes).collect();
    let shape = [batch, arch.input.c, arch.input.h, arch.input.w];
    let y: Tensor<1, Int> = Tensor::from_data(TensorData::new(labels, [batch]), &ad);
    let mut step = |net: Net| {
        let x: Tensor<4> = Tensor::random(shape, Distribution::Normal(0.0, 1.0), &ad);
        let loss = cross_entropy(net.forward(x), y.clone(), 0.0);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let net = optim.step(0.01, net, grads);
        // Reading a parameter back forces the step to complete before the clock stops.
        if let Some(d) = net.dense.last() {
            let _ = d.bias.val().into_data();
        }
        net
    };
    for _ in 0..2 {
        net = step(net);
    }
    let t = std::time::Instant::now();
    for _ in 0..steps {
        net = step(net);
    }
    let train = (steps * batch) as f64 / t.elapsed().as_secs_f64();
    let eval = net.valid().folded();
    let x: Tensor<4> = Tensor::random(shape, Distribution::Normal(0.0, 1.0), &dev);
    let _ = eval.forward(x.clone()).into_data();
    let t = std::time::Instant::now();
    for _ in 0..steps {
        let _ = eval.forward(x.clone()).into_data();
    }
    let infer = (steps * batch) as f64 / t.elapsed().as_secs_f64();
    println!(
        "pare {model} batch {batch} {}: train {train:.1} img/s, inference {infer:.1} img/s",
        device.backend_name()
    );
    println!(
        "{}",
        serde_json::json!({"framework": device.backend_name(), "model": model, "batch": batch, "train_img_s": train, "infer_img_s": infer, "macs": macs})
    );
    Ok(())
}
