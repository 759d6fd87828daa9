//! The ONNX importer against onnxruntime, case by case: `scripts/onnx_conformance.py` builds a
//! table of small models (each conv, pool, pooling and classifier variant an exporter writes,
//! and ones pare must refuse) with onnxruntime's logits for random inputs; every "exact" case
//! must import and give the same logits (max |a − b| / max |b| < 1e-4), every "refuse" case must
//! fail with a message naming what is wrong (the attribute, the node). All failures are reported
//! together, so one run shows the whole table.
//!
//! Needs Python with onnx, onnxruntime and numpy in `$PARE_ONNX_VENV` (default
//! `$PARE_CACHE/onnx-venv`, `$PARE_CACHE` defaulting to `~/.cache/pare`): `scripts/setup`
//! installs them. Without them the test fails rather than passing unchecked.

use burn::tensor::{Device, Tensor, TensorData};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// One row of `cases.json`.
struct Case {
    name: String,
    exact: bool,
    refuse_contains: Vec<String>,
    input: [usize; 4],
    classes: usize,
    reference: bool,
}

fn cases(dir: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(dir.join("cases.json")).expect("cases.json");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&text).expect("cases.json is a JSON list");
    rows.iter()
        .map(|r| {
            let dims: Vec<usize> =
                r["input"].as_array().expect("input").iter().map(|d| d.as_u64().unwrap() as usize).collect();
            Case {
                name: r["name"].as_str().expect("name").to_string(),
                exact: match r["expect"].as_str() {
                    Some("exact") => true,
                    Some("refuse") => false,
                    other => panic!("{}: expect {other:?}", r["name"]),
                },
                refuse_contains: r["refuse_contains"]
                    .as_array()
                    .expect("refuse_contains")
                    .iter()
                    .map(|s| s.as_str().expect("a string").to_string())
                    .collect(),
                input: dims.try_into().expect("input is [N, C, H, W]"),
                classes: r["classes"].as_u64().expect("classes") as usize,
                reference: r["reference"].as_bool().unwrap_or(false),
            }
        })
        .collect()
}

fn floats(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Max |pare − onnxruntime| relative to the largest onnxruntime logit, on the case's inputs.
/// The inputs are used as they are: an imported model without metadata has mean 0 and std 1,
/// and `forward` takes normalised images anyway.
fn relative_error(net: &pare::model::Net, dir: &Path, case: &Case, device: &Device) -> Result<f32, String> {
    let x = floats(&dir.join(format!("{}.in.f32", case.name)));
    let want = floats(&dir.join(format!("{}.out.f32", case.name)));
    let [n, ..] = case.input;
    let x = Tensor::<4>::from_data(TensorData::new(x, case.input), device);
    // The inference path (`pare::train::logits`): BatchNorm folded into the convolutions.
    let y = net.folded().forward(x);
    if y.dims() != [n, case.classes] {
        return Err(format!("logits of shape {:?}, onnxruntime's are {:?}", y.dims(), [n, case.classes]));
    }
    let got = y.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 logits");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    Ok(if diff.is_nan() || got.iter().any(|v| !v.is_finite()) { f32::INFINITY } else { diff / scale.max(1e-12) })
}

/// The case's outcome: when it behaves as the table says, how closely (the relative error or the
/// refusal's message), or else why not.
fn check(dir: &Path, case: &Case, device: &Device) -> Result<String, String> {
    // From the file, as `--weights model.onnx` reads it (external data beside it).
    let imported = pare::model::onnx::import_file(&dir.join(format!("{}.onnx", case.name)), device);
    match (case.exact, imported) {
        (true, Err(e)) => Err(format!("refused: {e}")),
        (true, Ok(net)) => match relative_error(&net, dir, case, device)? {
            rel if rel < 1e-4 => Ok(format!("{rel:.1e}")),
            rel => Err(format!("logits differ from onnxruntime's by {rel:.3e} (relative)")),
        },
        (false, Err(e)) => {
            let text = e.to_string();
            let absent: Vec<&String> = case.refuse_contains.iter().filter(|s| !text.contains(s.as_str())).collect();
            if absent.is_empty() {
                Ok(text)
            } else {
                Err(format!("refused, but the message lacks {absent:?}: {text}"))
            }
        }
        (false, Ok(net)) => {
            let how = if case.reference {
                match relative_error(&net, dir, case, device) {
                    Ok(rel) => format!("logits differ from onnxruntime's by {rel:.3e} (relative)"),
                    Err(e) => e,
                }
            } else {
                "onnxruntime gives no logits to compare with".into()
            };
            Err(format!("accepted, should be refused: {how}"))
        }
    }
}

#[test]
fn onnx_import_matches_onnxruntime_case_by_case() {
    let dir = tempfile::tempdir().expect("temp dir");
    pare::testing::onnx_conformance_models(dir.path());
    let device = Device::flex();
    let table = cases(dir.path());
    assert!(!table.is_empty(), "cases.json lists no cases");
    let (mut exact, mut refused, mut failed) = (0, 0, vec![]);
    for case in &table {
        // A panic inside the importer or the forward pass is one more failure of the table.
        let outcome = catch_unwind(AssertUnwindSafe(|| check(dir.path(), case, &device))).unwrap_or_else(|p| {
            let msg = p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(format!("panicked: {}", msg.unwrap_or_default()))
        });
        let expect = if case.exact { "exact" } else { "refuse" };
        match outcome {
            Ok(how) => {
                println!("  ok {} ({expect}): {how}", case.name);
                *if case.exact { &mut exact } else { &mut refused } += 1;
            }
            Err(why) => failed.push(format!("{} ({expect}): {why}", case.name)),
        }
    }
    println!("onnx conformance: {exact} exact ok, {refused} refusals ok, {} failed", failed.len());
    assert!(
        failed.is_empty(),
        "{} of {} ONNX conformance cases failed:\n  {}",
        failed.len(),
        table.len(),
        failed.join("\n  ")
    );
}
