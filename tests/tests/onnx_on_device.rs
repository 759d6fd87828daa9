//! Every model of the ONNX conformance table that pare imports (`scripts/onnx_conformance.py`:
//! asymmetric and `auto_pad` padding, pools, MLP heads, a classifier over a flattened spatial
//! map, …) exported to `.pare` and run by pare-device on the host, against burn's forward pass
//! of the same imported model; and written back to ONNX by pare's exporter and imported again.

use burn::tensor::Device;
use pare::export::{export, Quant};
use rand::{Rng, SeedableRng};

/// Largest |a − b| over the largest |b|.
fn rel(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let (mut diff, mut scale) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len());
        for (p, q) in x.iter().zip(y) {
            diff = diff.max(f64::from((p - q).abs()));
            scale = scale.max(f64::from(q.abs()));
        }
    }
    diff / scale.max(1e-6)
}

#[test]
fn imported_models_run_on_the_device_as_in_burn_and_round_trip_through_onnx() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let models = pare::testing::onnx_conformance_models(dir.path());
    let (mut checked, mut failures) = (0, vec![]);
    for path in &models {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let Ok(net) = pare::model::onnx::import_file(path, &device) else { continue };
        let s = net.arch.input;
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let ds = pare::data::Dataset {
            images: (0..3 * s.c * s.h * s.w).map(|_| rng.random()).collect(),
            labels: vec![0; 3],
            shape: [s.c, s.h, s.w],
            classes: net.arch.labels.len(),
            source: "random".into(),
            class_names: vec![],
        };
        let want = pare::train::logits(&net, &ds, 3, &device);
        // f32 on the device: the same function up to float rounding.
        let bytes = match export(&net, Quant::F32, Some(&ds), None) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("{name}: export {e}"));
                continue;
            }
        };
        let got = pare::emulate::emulate(&bytes, &ds).unwrap().outputs;
        let r = rel(&got, &want);
        if r >= 1e-4 {
            failures.push(format!("{name}: device f32 vs burn {r:.2e}"));
        }
        // int8 exports and runs.
        let bytes = export(&net, Quant::Int8, Some(&ds), None).unwrap();
        let q = pare::emulate::emulate(&bytes, &ds).unwrap().outputs;
        if q.iter().flatten().any(|x| !x.is_finite()) {
            failures.push(format!("{name}: int8 outputs not finite"));
        }
        // pare's ONNX exporter and importer: the same logits.
        let back = pare::model::onnx::import(&pare::export::onnx::export_onnx(&net).unwrap(), &device).unwrap();
        let r = rel(&pare::train::logits(&back, &ds, 3, &device), &want);
        if r >= 1e-5 {
            failures.push(format!("{name}: ONNX round trip {r:.2e}"));
        }
        checked += 1;
    }
    eprintln!("{checked} imported conformance models checked on the device and through ONNX");
    assert!(checked >= 60, "only {checked} models imported");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
