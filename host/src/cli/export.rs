//! `pare export`.

use super::common::ModelArgs;
use crate::export::{export_with, Calibration, Quant};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// f32, or int8 post-training quantisation calibrated on --calib-data.
    #[arg(long, value_enum, default_value = "int8")]
    pub quant: Quant,
    /// Calibration images for int8: `synthetic` or a CIFAR-10 folder/archive (train split).
    /// Required for int8: calibrating on other data than the model's gives wrong ranges
    /// silently (a CIFAR model calibrated on the synthetic stripes), so there is no default.
    #[arg(long)]
    pub calib_data: Option<String>,
    /// Calibration images used (the first of the split).
    #[arg(long, default_value_t = 512, value_parser = super::common::positive, allow_negative_numbers = true)]
    pub calib_samples: usize,
    /// Activation ranges from the central P percent of calibration values (e.g. 99.99, in
    /// [50, 100]) instead of min/max.
    #[arg(long, value_parser = super::common::percentile, allow_negative_numbers = true)]
    pub calib_percentile: Option<f64>,
    /// Output file.
    #[arg(long, short, default_value = "model.pare")]
    pub out: PathBuf,
    /// `pare` (the board's format) or `onnx` (f32, opset 13, for PyTorch/onnxruntime/TF
    /// tooling; the input is the normalised NCHW image, `pare.mean`/`pare.std` in the file's
    /// metadata) [default: onnx when --out ends in .onnx, else pare].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

/// What `pare export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Pare,
    Onnx,
}

pub fn run(a: ExportArgs) -> anyhow::Result<()> {
    super::common::check_out(&a.out, false)?;
    let mut inputs = a.model.inputs();
    inputs.extend(a.calib_data.as_deref().map(|d| ("--calib-data", std::path::Path::new(d))));
    crate::atomic::check_distinct(&[("--out", &a.out)], &inputs)?;
    let device = a.model.device.device()?;
    let (net, meta) = a.model.load_with_metadata(&device)?;
    let onnx = a.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    if a.format.unwrap_or(if onnx { Format::Onnx } else { Format::Pare }) == Format::Onnx {
        let bytes = crate::export::onnx::export_onnx(&net)?;
        crate::atomic::write(&a.out, &bytes)?;
        println!("wrote {}: {} bytes, ONNX opset 13, f32", a.out.display(), bytes.len());
        return Ok(());
    }
    let calib = match a.quant {
        Quant::F32 => None,
        Quant::Int8 => {
            let Some(data) = &a.calib_data else {
                anyhow::bail!(
                    "int8 export needs calibration images from the model's own data: add --calib-data \
                     (`synthetic` or a CIFAR-10 folder), or use --quant f32"
                );
            };
            Some(crate::data::load_sized(data, "train", Some(net.arch.input.h))?.take(a.calib_samples))
        }
    };
    let prov = meta.provenance;
    let method = a.calib_percentile.map_or(Calibration::MinMax, Calibration::Percentile);
    let bytes = export_with(&net, a.quant, calib.as_ref(), method, prov.as_ref().map(|p| p.as_format()))?;
    crate::atomic::write(&a.out, &bytes)?;
    let rt = pare_device::Runtime::from_bytes(&bytes)?;
    let (macs, params) = net.arch.cost().map_err(anyhow::Error::msg)?;
    println!(
        "wrote {}: {} bytes, arena {} bytes, {:.2} M MACs, {:.1} k params, {:?}",
        a.out.display(),
        bytes.len(),
        rt.arena_bytes(),
        macs as f64 / 1e6,
        params as f64 / 1e3,
        a.quant
    );
    Ok(())
}
