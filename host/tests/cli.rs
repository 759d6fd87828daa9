//! The `pare` binary: help, train and resume, eval JSON, and one clear error per bad input.

use std::process::Command;

fn pare(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pare")).args(args).output().expect("run pare");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The zoo's `tiny`, exported as int8 into `dir`.
fn tiny_model(dir: &std::path::Path) -> std::path::PathBuf {
    let model = dir.join("tiny.pare");
    let (ok, _, err) =
        pare(&["export", "--model", "tiny", "--calib-data", "synthetic", "--out", model.to_str().unwrap()]);
    assert!(ok, "{err}");
    model
}

#[test]
fn help_lists_every_command() {
    let (ok, out, _) = pare(&["--help"]);
    assert!(ok);
    for c in ["pipeline", "train", "eval", "score", "prune", "export", "run", "flash", "boards", "data"] {
        assert!(out.contains(c), "--help lacks {c}:\n{out}");
    }
}

#[test]
fn train_with_no_steps_still_writes_the_initialised_model() {
    // `--max-steps 0` once printed "saved" and wrote nothing (no epoch ended to save it).
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("init.safetensors");
    let (ok, _, err) = pare(&["train", "--model", "tiny", "--max-steps", "0", "--out", ck.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (tensors, meta) = pare::model::weights::read(&ck).unwrap();
    assert_eq!(meta.get("pare.epoch").map(String::as_str), Some("0"));
    // tiny: 16 filters of 3×3 over RGB, then 32 of 3×3 over 16 (host/src/model/zoo.rs by hand).
    assert_eq!(tensors.get("conv1.weight").map(|t| t.0.clone()), Some(vec![16, 3, 3, 3]));
    assert_eq!(tensors.get("conv2.weight").map(|t| t.0.clone()), Some(vec![32, 16, 3, 3]));
}

#[test]
fn train_checkpoints_every_epoch_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck.safetensors");
    let ck_s = ck.to_str().unwrap();
    let (ok, _, err) = pare(&["train", "--model", "tiny", "--epochs", "1", "--max-steps", "3", "--out", ck_s]);
    assert!(ok, "{err}");
    let (_, meta) = pare::model::weights::read(&ck).unwrap();
    assert_eq!(meta.get("pare.epoch").map(String::as_str), Some("1"));
    let (ok, _, err) = pare(&["train", "--resume", "--epochs", "2", "--max-steps", "6", "--out", ck_s]);
    assert!(ok, "{err}");
    assert!(err.contains("resuming") && err.contains("from epoch 1 (step 3)"), "{err}");
    assert!(err.contains("epoch   2"), "{err}");
    let (_, meta) = pare::model::weights::read(&ck).unwrap();
    assert_eq!(meta.get("pare.epoch").map(String::as_str), Some("2"));
    // The checkpoint evaluates with no other input, and --json writes the tables.
    let json = dir.path().join("eval.json");
    let (ok, out, err) = pare(&["eval", "--weights", ck_s, "--limit", "50", "--json", json.to_str().unwrap()]);
    assert!(ok, "{err}");
    // Trained from scratch on the synthetic data, the model names its classes after it.
    assert!(out.contains("top-1") && out.contains("| warm-hstripes |"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["samples"], 50);
    assert_eq!(v["confusion"].as_array().unwrap().len(), 10);
    // The same checkpoint on burn-wgpu (lavapipe without a GPU) predicts the same.
    if std::env::var_os("PARE_SKIP_GPU").is_some() {
        eprintln!("\n!!!!!!!! SKIPPED: PARE_SKIP_GPU is set; no `pare eval --device gpu` !!!!!!!!\n");
        return;
    }
    let gpu_json = dir.path().join("eval-gpu.json");
    let (ok, _, err) =
        pare(&["eval", "--weights", ck_s, "--limit", "50", "--device", "gpu", "--json", gpu_json.to_str().unwrap()]);
    assert!(ok && err.contains("device: burn-wgpu on"), "{err}");
    let g: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&gpu_json).unwrap()).unwrap();
    assert_eq!(g["confusion"], v["confusion"]);
}

#[test]
fn bad_inputs_give_one_clear_error_each() {
    let (ok, _, err) = pare(&["eval", "--model", "resnet9000"]);
    assert!(!ok && err.contains("unknown model 'resnet9000'") && err.contains("resnet20"), "{err}");
    let (ok, _, err) = pare(&["eval", "--model", "tiny", "--data", "/nonexistent/cifar"]);
    assert!(!ok && err.contains("/nonexistent/cifar"), "{err}");
    let (ok, _, err) = pare(&["eval"]);
    assert!(!ok && err.contains("--model"), "{err}");
    let (ok, _, err) = pare(&["run", "/nonexistent/model.pare"]);
    assert!(!ok && err.contains("/nonexistent/model.pare"), "{err}");
    let (ok, _, err) = pare(&["prune", "--resume", "--out", "/nonexistent/run"]);
    assert!(!ok && err.contains("nothing to resume"), "{err}");
    let (ok, _, err) = pare(&["flash", "--board", "esp32", "x.pare"]);
    assert!(!ok && err.contains("unknown board 'esp32'"), "{err}");
    let (ok, _, err) = pare(&["prune", "--model", "tiny", "--step", "1.5"]);
    assert!(!ok && err.contains("neither a channel count nor a fraction"), "{err}");
    // Mixup and a distillation split are about what the teacher labels.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out = out.to_str().unwrap();
    let (ok, _, err) = pare(&["prune", "--model", "tiny", "--target-flops", "0.5", "--mixup", "1.5", "--out", out]);
    assert!(!ok && err.contains("--mixup must be a fraction in [0, 1]"), "{err}");
    let (ok, _, err) =
        pare(&["prune", "--model", "tiny", "--target-flops", "0.5", "--no-distill", "--mixup", "0.5", "--out", out]);
    assert!(!ok && err.contains("it needs distillation"), "{err}");
    let (ok, _, err) = pare(&[
        "prune",
        "--model",
        "tiny",
        "--target-flops",
        "0.5",
        "--no-distill",
        "--distill-split",
        "test",
        "--out",
        out,
    ]);
    assert!(!ok && err.contains("--distill-split needs distillation"), "{err}");
}

#[test]
fn boards_lists_flash_and_ram() {
    let (ok, out, _) = pare(&["boards"]);
    assert!(ok);
    assert!(
        out.contains("| qemu-mps2-an500 | 4096 KiB | 4096 KiB |")
            && out.contains("nucleo-h743zi")
            && out.contains("rp-pico2"),
        "{out}"
    );
}

/// Issue 15, item 11: counts of zero are refused before any work, `flash --dry-run` (which only
/// prints the commands) succeeds, and a reader that goes away ends `pare` without a panic.
#[test]
fn zero_counts_dry_runs_and_closed_pipes() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let model_s = model.to_str().unwrap();
    for args in [
        &["run", model_s, "--limit", "0"][..],
        &["eval", "--model", "tiny", "--limit", "0"],
        &["flash", model_s, "--samples", "0"],
    ] {
        let (ok, out, err) = pare(args);
        assert!(!ok && err.contains("must be at least 1") && out.is_empty(), "{args:?}: {out}{err}");
    }
    let (ok, out, err) = pare(&["flash", model_s, "--samples", "3", "--dry-run"]);
    assert!(ok && out.contains("cargo") && out.contains("qemu-system-arm"), "{out}{err}");
    // The reader closes its end before `pare` writes: the write fails with EPIPE.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pare"))
        .args(["run", model_s, "--limit", "20"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pare");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
}

/// Issue 15, item 12: an error's cause is printed once, not once per layer that wraps it.
#[test]
fn each_cause_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let model_s = model.to_str().unwrap();
    let mut bytes = std::fs::read(&model).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&model, bytes).unwrap();
    let missing = dir.path().join("missing.safetensors");
    for (args, cause) in [
        (vec!["run", model_s], "checksum mismatch"),
        (vec!["flash", model_s, "--dry-run"], "checksum mismatch"),
        (vec!["eval", "--weights", missing.to_str().unwrap()], "No such file"),
        (vec!["eval", "--model", "tiny", "--data", "/nonexistent/cifar"], "not found"),
    ] {
        let (ok, _, err) = pare(&args);
        assert!(!ok && err.matches(cause).count() == 1, "{args:?}: {cause:?} should appear once in: {err}");
    }
}

/// Issue 15, item 10: an output that cannot be written is refused before any work, naming it.
/// (A path under a regular file: unwritable even for root, which ignores permissions.)
#[test]
fn unwritable_outputs_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let under = |name: &str| file.join(name).to_str().unwrap().to_string();
    for args in [
        vec![
            "train".to_string(),
            "--model".into(),
            "tiny".into(),
            "--epochs".into(),
            "1".into(),
            "--out".into(),
            under("ck.safetensors"),
        ],
        vec![
            "prune".into(),
            "--model".into(),
            "tiny".into(),
            "--target-flops".into(),
            "0.3".into(),
            "--out".into(),
            under("run"),
        ],
        vec!["export".into(), "--model".into(), "tiny".into(), "--out".into(), under("m.pare")],
        vec!["pipeline".into(), "--model".into(), "tiny".into(), "--out".into(), under("run")],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = pare(&args);
        assert!(!ok && err.contains("cannot write there") && err.contains("a-file"), "{args:?}: {err}");
        assert!(
            !err.contains("epoch") && !err.contains("iteration") && out.is_empty(),
            "{args:?} did work first: {out}{err}"
        );
    }
}

/// Issue 15, item 7: an int8 export names its calibration data; it no longer falls back to the
/// synthetic stripes for a CIFAR model.
#[test]
fn int8_export_requires_calibration_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.pare");
    let (ok, _, err) = pare(&["export", "--model", "tiny", "--out", out.to_str().unwrap()]);
    assert!(!ok && err.contains("--calib-data") && !out.exists(), "{err}");
    let (ok, _, err) = pare(&["export", "--model", "tiny", "--quant", "f32", "--out", out.to_str().unwrap()]);
    assert!(ok && out.exists(), "{err}");
}

/// Runs `pare args`, sends SIGINT once a stderr line contains `after`, and returns the exit
/// code and all of stderr.
#[cfg(unix)]
fn interrupt_after(args: &[&str], after: &str) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pare"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pare");
    let mut err = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        err += &line;
        err.push('\n');
        if line.contains(after) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            break;
        }
    }
    for line in lines {
        err += &line.unwrap();
        err.push('\n');
    }
    (child.wait().expect("wait").code(), err)
}

/// Issue 15, item 8: Ctrl-C saves, says so, and exits 130 (it exited 0); an interrupted prune
/// writes no final.safetensors and marks its report partial.
#[cfg(unix)]
#[test]
fn ctrl_c_exits_130_and_a_partial_prune_ships_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck.safetensors");
    let (code, err) = interrupt_after(
        &["train", "--model", "tiny", "--device", "flex", "--epochs", "10000", "--out", ck.to_str().unwrap()],
        "epoch",
    );
    assert_eq!(code, Some(130), "{err}");
    assert!(ck.exists() && err.contains("interrupted") && err.contains("--resume"), "{err}");

    let run = dir.path().join("run");
    let (code, err) = interrupt_after(
        &[
            "prune",
            "--model",
            "tiny",
            "--device",
            "flex",
            "--target-flops",
            "0.9",
            "--step",
            "1",
            "--finetune-steps",
            "200",
            "--max-iterations",
            "1000",
            "--out",
            run.to_str().unwrap(),
        ],
        "iteration 1",
    );
    assert_eq!(code, Some(130), "{err}");
    assert!(!run.join("final.safetensors").exists() && !run.join("report.md").exists(), "{err}");
    let partial = std::fs::read_to_string(run.join("report-partial.md")).unwrap();
    assert!(partial.starts_with("# PARTIAL"), "{partial}");
}

/// Issue 15, item 19: `pare run --json` writes its evaluation; the confusion matrix accounts
/// for every image and the per-class accuracies for the top-1.
#[test]
fn run_writes_its_result_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let json = dir.path().join("run.json");
    let (ok, out, err) = pare(&["run", model.to_str().unwrap(), "--limit", "40", "--json", json.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["images"], 40);
    let confusion = doc["evaluation"]["confusion"].as_array().unwrap();
    let total: u64 = confusion.iter().flat_map(|r| r.as_array().unwrap()).map(|v| v.as_u64().unwrap()).sum();
    let diagonal: u64 = confusion.iter().enumerate().map(|(i, r)| r[i].as_u64().unwrap()).sum();
    assert_eq!(total, 40);
    let top1 = doc["evaluation"]["top1"].as_f64().unwrap();
    assert!((top1 - diagonal as f64 / 40.0).abs() < 1e-12, "{top1} vs {diagonal}/40");
}

/// Issue 15, item 16: the criteria's settings reach `prune` (they were hard-wired to defaults
/// there) and are recorded in the run's state for --resume.
#[test]
fn prune_takes_the_criteria_settings_and_records_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let (ok, out, err) = pare(&[
        "prune",
        "--model",
        "tiny",
        "--device",
        "flex",
        "--criterion",
        "sss",
        "--sss-lambda",
        "0.5",
        "--sss-steps",
        "3",
        "--iba-min-std",
        "0.2",
        "--variational-prior-std",
        "0.3",
        "--target-flops",
        "0.2",
        "--finetune-steps",
        "2",
        "--max-iterations",
        "1",
        "--out",
        run.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    let s = &state["config"]["scorer"];
    assert_eq!((s["sss"]["lambda"].as_f64(), s["sss"]["steps"].as_u64()), (Some(0.5), Some(3)), "{s}");
    assert_eq!(s["iba"]["min_std"].as_f64(), Some(0.2), "{s}");
    assert_eq!(s["variational"]["prior_std"].as_f64(), Some(0.3), "{s}");
}

/// The split the fine-tunes drew from is recorded (state, report) and a resume on another one
/// is warned about: `--distill-split` was neither stored nor checked.
#[test]
fn prune_records_the_fine_tuning_split_and_warns_on_resume_with_another() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let prune = |extra: &[&str]| {
        let mut a = vec!["prune", "--model", "tiny", "--device", "flex", "--criterion", "l1", "--target-flops", "0.2"];
        a.extend(["--finetune-steps", "1", "--max-iterations", "1", "--calib-samples", "8", "--out", run_s]);
        a.extend_from_slice(extra);
        pare(&a)
    };
    let (ok, out, err) = prune(&["--distill-split", "test"]);
    assert!(ok, "{out}{err}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["finetune_data"].as_str(), Some("synthetic:test"), "{state}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("fine-tuned on synthetic:test"), "{report}");
    // Resumed without the flag: the fine-tunes would draw from `train`.
    let (_, _, err) = prune(&["--resume"]);
    assert!(err.contains("fine-tuned on synthetic:test and now resumes on synthetic:train"), "{err}");
}

/// A pare whose boards folder is not where it was built says so and names PARE_BOARDS_DIR (it
/// failed with a bare "No such file or directory").
#[test]
fn flash_without_its_boards_folder_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model(dir.path());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pare"))
        .args(["flash", model.to_str().unwrap(), "--samples", "1"])
        .env("PARE_BOARDS_DIR", dir.path().join("no-boards-here"))
        .output()
        .expect("run pare");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("PARE_BOARDS_DIR") && err.contains("no-boards-here"), "{err}");
}

#[test]
fn mean_and_std_set_the_normalisation_the_file_carries() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("raw.pare");
    // Raw 0..255 inputs (the MLPerf Tiny convention): mean 0, std 1/255.
    let args = ["export", "--model", "tiny", "--quant", "f32", "--mean", "0", "--std", "0.00392156862745098"];
    let (ok, _, err) = pare(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    let bytes = std::fs::read(&out).unwrap();
    let m = pare_format::decode(&bytes).unwrap();
    let mean: Vec<f32> = m.meta.input.mean.iter().collect();
    let std: Vec<f32> = m.meta.input.std.iter().collect();
    assert_eq!(mean, vec![0.0; 3]);
    assert!(std.iter().all(|&s| (s - 1.0 / 255.0).abs() < 1e-9), "{std:?}");
    // Per channel, and refused when the count or a value is wrong.
    let (ok, _, err) =
        pare(&["export", "--model", "tiny", "--quant", "f32", "--mean", "0.1,0.2", "--out", out.to_str().unwrap()]);
    assert!(!ok && err.contains("--mean has 2 values; the model has 3 input channels"), "{err}");
    let (ok, _, err) =
        pare(&["export", "--model", "tiny", "--quant", "f32", "--std", "0,1,1", "--out", out.to_str().unwrap()]);
    assert!(!ok && err.contains("--std must be positive"), "{err}");
    let (ok, _, err) = pare(&["export", "--model", "tiny", "--mean", "a,b,c"]);
    assert!(!ok && err.contains("not a comma-separated list"), "{err}");
}
