//! Host emulation: runs `pare-device`, the code the board runs, over a dataset.

use crate::data::Dataset;
use crate::train::Evaluation;
use pare_device::Runtime;

/// Outputs (dequantised) and accuracy of `model` on `ds`.
pub struct Emulation {
    pub outputs: Vec<Vec<f32>>,
    /// The output buffer's bytes as the device wrote them.
    pub raw_outputs: Vec<Vec<u8>>,
    pub evaluation: Evaluation,
}

/// Runs every image of `ds` through the device runtime.
pub fn emulate(model: &[u8], ds: &Dataset) -> Result<Emulation, pare_device::Error> {
    let rt = Runtime::from_bytes(model)?;
    // u32 storage gives the 4-byte alignment the runtime requires.
    let mut storage = vec![0u32; (rt.arena_bytes() as usize).div_ceil(4)];
    let arena: &mut [u8] = bytemuck::cast_slice_mut(&mut storage);
    let mut out = vec![0u8; rt.output_bytes() as usize];
    let classes = rt.classes() as usize;
    let mut outputs = Vec::with_capacity(ds.len());
    let mut preds = Vec::with_capacity(ds.len());
    let mut raw_outputs = Vec::with_capacity(ds.len());
    let bar = crate::progress::steps(ds.len() as u64, "emulating");
    for i in 0..ds.len() {
        rt.run_pixels(arena, &ds.image_hwc(i), &mut out)?;
        let v: Vec<f32> = (0..classes).map(|c| rt.output_value(&out, c).unwrap_or(f32::NAN)).collect();
        preds.push(rt.argmax(&out).unwrap_or(0) as usize);
        outputs.push(v);
        raw_outputs.push(out.clone());
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Emulation { outputs, raw_outputs, evaluation: Evaluation::from_predictions(&ds.labels, preds, classes) })
}
