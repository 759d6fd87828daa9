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
    assert!(!ok && err.contains("--mixup") && err.contains("must be a fraction in [0, 1]"), "{err}");
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

/// Counts of zero are refused before any work, `flash --dry-run` (which only
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

/// An error's cause is printed once, not once per layer that wraps it.
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

/// An output that cannot be written is refused before any work, naming it.
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

/// An int8 export names its calibration data; it no longer falls back to the
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

/// Ctrl-C saves, says so, and exits 130 (it exited 0); an interrupted prune
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

/// `pare run --json` writes its evaluation; the confusion matrix accounts
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

/// The criteria's settings reach `prune` (they were hard-wired to defaults
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
    assert!(!ok && err.contains("--std") && err.contains("must be positive"), "{err}");
    let (ok, _, err) = pare(&["export", "--model", "tiny", "--mean", "a,b,c"]);
    assert!(!ok && err.contains("not a comma-separated list"), "{err}");
}

/// Every numeric option that makes no sense at zero, below zero, as NaN or infinite is refused
/// before any work, as a usage error (exit 2) naming the option, never a panic or a useless
/// result with exit 0 (`--batch-size 0` divided by zero; `--lr NaN`, `--temperature inf`,
/// `--step 0`, a negative `--max-accuracy-drop`, `export --calib-samples 0` ran to exit 0).
#[test]
fn bad_numbers_are_usage_errors_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (ck, run, p, m) = (out("ck.safetensors"), out("run"), out("p"), out("m.pare"));
    let train = ["train", "--model", "tiny", "--epochs", "1", "--max-steps", "1", "--out", &ck];
    let eval = ["eval", "--model", "tiny", "--limit", "10"];
    let score = ["score", "--model", "tiny", "--criterion", "l1", "--calib-samples", "8"];
    let prune = ["prune", "--model", "tiny", "--finetune-steps", "1", "--max-iterations", "1", "--out", &run];
    let pipeline = ["pipeline", "--model", "tiny", "--epochs", "1", "--budget", "1", "--samples", "1", "--out", &p];
    let export = ["export", "--model", "tiny", "--calib-data", "synthetic", "--out", &m];
    let run_ = ["run", "x.pare"];
    let flash = ["flash", "x.pare", "--dry-run"];
    let bench = ["bench", "train", "--model", "tiny", "--steps", "1", "--batch", "2"];
    #[rustfmt::skip]
    let cases: Vec<(&[&str], &[&str], &str)> = vec![
        (&train, &["--batch-size", "0"], "--batch-size"),
        (&train, &["--batch-size", "-3"], "--batch-size"),
        (&train, &["--lr", "NaN"], "--lr"),
        (&train, &["--lr", "inf"], "--lr"),
        (&train, &["--lr", "0"], "--lr"),
        (&train, &["--lr", "-0.1"], "--lr"),
        (&train, &["--momentum", "1"], "--momentum"),
        (&train, &["--momentum", "-0.5"], "--momentum"),
        (&train, &["--weight-decay", "-1"], "--weight-decay"),
        (&train, &["--weight-decay", "nan"], "--weight-decay"),
        (&train, &["--label-smoothing", "1"], "--label-smoothing"),
        (&train, &["--epochs", "0"], "--epochs"),
        (&train, &["--log-every", "0"], "--log-every"),
        (&train, &["--input-size", "0"], "--input-size"),
        (&eval, &["--batch-size", "0"], "--batch-size"),
        (&eval, &["--limit", "-1"], "--limit"),
        (&eval, &["--std", "0"], "--std"),
        (&eval, &["--std", "-1,1,1"], "--std"),
        (&eval, &["--mean", "nan"], "--mean"),
        (&score, &["--batch-size", "0"], "--batch-size"),
        (&score, &["--calib-samples", "0"], "--calib-samples"),
        (&score, &["--iba-steps", "0"], "--iba-steps"),
        (&score, &["--iba-lr", "nan"], "--iba-lr"),
        (&score, &["--iba-beta", "inf"], "--iba-beta"),
        (&score, &["--iba-min-std", "0"], "--iba-min-std"),
        (&score, &["--iba-active-threshold", "2"], "--iba-active-threshold"),
        (&score, &["--iba-active-threshold", "-0.5"], "--iba-active-threshold"),
        (&score, &["--sss-steps", "0"], "--sss-steps"),
        (&score, &["--sss-lr", "-1"], "--sss-lr"),
        (&score, &["--sss-lambda", "-1"], "--sss-lambda"),
        (&score, &["--variational-steps", "0"], "--variational-steps"),
        (&score, &["--variational-lr", "0"], "--variational-lr"),
        (&score, &["--variational-prior-std", "0"], "--variational-prior-std"),
        (&prune, &["--target-flops", "0.3", "--batch-size", "0"], "--batch-size"),
        (&prune, &["--target-flops", "0.3", "--temperature", "inf"], "--temperature"),
        (&prune, &["--target-flops", "0.3", "--temperature", "0"], "--temperature"),
        (&prune, &["--target-flops", "0.3", "--step", "0"], "--step"),
        (&prune, &["--max-accuracy-drop", "-1"], "--max-accuracy-drop"),
        (&prune, &["--max-accuracy-drop", "NaN"], "--max-accuracy-drop"),
        (&prune, &["--target-flops", "1.5"], "--target-flops"),
        (&prune, &["--target-flops", "0"], "--target-flops"),
        (&prune, &["--target-params", "nan"], "--target-params"),
        (&prune, &["--target-ratio", "1"], "--target-ratio"),
        (&prune, &["--target-flops", "0.3", "--target-params", "0.3"], "--target-params"),
        (&prune, &["--target-ratio", "0.5", "--target-flops", "0.3"], "--target-flops"),
        (&prune, &["--target-flops", "0.3", "--min-channels", "0"], "--min-channels"),
        (&prune, &["--target-flops", "0.3", "--min-width", "1"], "--min-width"),
        (&prune, &["--target-flops", "0.3", "--round-to", "0"], "--round-to"),
        (&prune, &["--target-flops", "0.3", "--cost-exponent", "-1"], "--cost-exponent"),
        (&prune, &["--target-flops", "0.3", "--budget", "0"], "--budget"),
        (&prune, &["--target-flops", "0.3", "--budget", "infs"], "--budget"),
        (&prune, &["--target-flops", "0.3", "--iteration-share", "0"], "--iteration-share"),
        (&prune, &["--target-flops", "0.3", "--distill-weight", "2"], "--distill-weight"),
        (&prune, &["--target-flops", "0.3", "--mixup", "NaN"], "--mixup"),
        (&prune, &["--target-flops", "0.3", "--reconstruct-ridge", "-1"], "--reconstruct-ridge"),
        (&prune, &["--target-flops", "0.3", "--polish-share", "2"], "--polish-share"),
        (&prune, &["--target-flops", "0.3", "--calib-samples", "0"], "--calib-samples"),
        (&prune, &["--target-flops", "0.3", "--finetune-epochs", "-1"], "--finetune-epochs"),
        (&prune, &["--target-flops", "0.3", "--finetune-lr", "0"], "--finetune-lr"),
        (&prune, &["--target-flops", "0.3", "--max-iterations", "0"], "--max-iterations"),
        (&prune, &["--target-flops", "0.3", "--eval-limit", "0"], "--eval-limit"),
        (&prune, &["--max-latency", "0.4"], "--max-latency"),
        (&prune, &["--max-arena", "0"], "--max-arena"),
        (&prune, &["--max-flash", "-1k"], "--max-flash"),
        (&prune, &["--max-latency", "-50%"], "--max-latency"),
        (&prune, &["--target-flops", "0.3", "--step", "-2"], "--step"),
        (&prune, &["--target-flops", "0.3", "--budget", "-5m"], "--budget"),
        (&prune, &["--target-flops", "0.3", "--bn-batches", "-1"], "--bn-batches"),
        (&pipeline, &["--target-flops", "0"], "--target-flops"),
        (&pipeline, &["--epochs", "0"], "--epochs"),
        (&pipeline, &["--calib-samples", "0"], "--calib-samples"),
        (&pipeline, &["--samples", "0"], "--samples"),
        (&pipeline, &["--step", "0"], "--step"),
        (&pipeline, &["--eval-limit", "0"], "--eval-limit"),
        (&pipeline, &["--iba-lr", "inf"], "--iba-lr"),
        (&export, &["--calib-samples", "0"], "--calib-samples"),
        (&export, &["--calib-percentile", "20"], "--calib-percentile"),
        (&export, &["--calib-percentile", "NaN"], "--calib-percentile"),
        (&run_, &["--limit", "0"], "--limit"),
        (&flash, &["--samples", "0"], "--samples"),
        (&bench, &["--batch", "0"], "--batch"),
        (&bench, &["--steps", "0"], "--steps"),
    ];
    for (command, bad, option) in cases {
        let args = [command, bad].concat();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pare")).args(&args).output().expect("run pare");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(option) && !err.contains("panicked"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?} printed a result");
    }
    // Nothing ran: no output was written.
    for f in [&ck, &run, &p, &m] {
        assert!(!std::path::Path::new(f).exists(), "{f} was written");
    }
}

/// Writes an image folder `root/<class>/<n>.png` of `per_class` 8×8 images per class, each
/// class one flat colour.
fn image_folder(root: &std::path::Path, classes: &[&str], per_class: usize) {
    for (k, class) in classes.iter().enumerate() {
        let d = root.join(class);
        std::fs::create_dir_all(&d).unwrap();
        for n in 0..per_class {
            let v = (40 * k + n) as u8;
            image::RgbImage::from_pixel(8, 8, image::Rgb([v, 255 - v, v / 2]))
                .save(d.join(format!("{n}.png")))
                .unwrap();
        }
    }
}

/// `pare` with the cache of decoded images in `cache`.
fn pare_cached(cache: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pare"))
        .args(args)
        .env("PARE_CACHE", cache)
        .output()
        .expect("run pare");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// A 10-class checkpoint on 12-class data panicked in a gather while training (and on fewer
/// classes trained a classifier for the wrong ones); every command that runs a model on data
/// refuses it up front, naming both numbers.
#[test]
fn a_model_for_other_classes_is_refused_naming_both_counts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("twelve");
    image_folder(&data, &["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"], 5);
    let ck = dir.path().join("ck.safetensors");
    let (ok, _, err) = pare(&["train", "--model", "tiny", "--max-steps", "0", "--out", ck.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ck, data) = (ck.to_str().unwrap(), data.to_str().unwrap());
    let (out_ck, run) = (dir.path().join("out.safetensors"), dir.path().join("run"));
    for args in [
        vec!["train", "--weights", ck, "--data", data, "--max-steps", "2", "--out", out_ck.to_str().unwrap()],
        vec!["eval", "--weights", ck, "--data", data, "--split", "all"],
        vec!["score", "--weights", ck, "--data", data, "--calib-split", "all"],
        vec![
            "prune",
            "--weights",
            ck,
            "--data",
            data,
            "--train-split",
            "all",
            "--eval-split",
            "all",
            "--calib-split",
            "all",
            "--target-flops",
            "0.3",
            "--out",
            run.to_str().unwrap(),
        ],
    ] {
        let (ok, out, err) = pare_cached(dir.path(), &args);
        assert!(!ok && !err.contains("panicked"), "{args:?}: {out}{err}");
        assert!(err.contains("10 classes") && err.contains("has 12"), "{args:?}: {err}");
    }
    assert!(!out_ck.exists());
    // Fewer classes than the model's: refused as well.
    let three = dir.path().join("three");
    image_folder(&three, &["a", "b", "c"], 5);
    let (ok, _, err) =
        pare_cached(dir.path(), &["eval", "--weights", ck, "--data", three.to_str().unwrap(), "--split", "all"]);
    assert!(!ok && err.contains("10 classes") && err.contains("has 3"), "{err}");
}

/// Labels come from folder names and model metadata: control characters in them are escaped
/// before they reach the terminal (an ESC sequence could recolour, retitle or hide output).
#[test]
fn control_characters_in_labels_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("esc");
    image_folder(&data, &["cat", "dog\u{1b}[2J\u{1b}]0;owned\u{7}"], 5);
    let ck = dir.path().join("ck.safetensors");
    let (ck, data_s) = (ck.to_str().unwrap(), data.to_str().unwrap());
    let (ok, _, err) = pare_cached(
        dir.path(),
        &["train", "--model", "tiny", "--data", data_s, "--input-size", "32", "--max-steps", "1", "--out", ck],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = pare_cached(dir.path(), &["eval", "--weights", ck, "--data", data_s, "--split", "all"]);
    assert!(ok, "{err}");
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "raw control characters printed: {out:?}");
    assert!(out.contains("| dog\\u{1b}[2J\\u{1b}]0;owned\\u{7} |") && out.contains("| cat |"), "{out}");
}

#[test]
fn a_seeded_prune_of_a_fresh_zoo_model_repeats_exactly() {
    // `--seed` fixed the pruning but not the zoo model's random initial weights: two identical
    // runs removed 37 and 41 channels.
    let dir = tempfile::tempdir().unwrap();
    let history = |name: &str| -> serde_json::Value {
        let out = dir.path().join(name);
        let args = ["prune", "--model", "tiny", "--data", "synthetic", "--target-flops", "0.5", "--budget", "10"];
        let (ok, _, err) = pare(&[&args[..], &["--seed", "1", "--out", out.to_str().unwrap()]].concat());
        assert!(ok, "{err}");
        let state: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("state.json")).unwrap()).unwrap();
        // Everything each iteration recorded but its timing and its checkpoint's path.
        let mut h = state["history"].clone();
        for it in h.as_array_mut().unwrap() {
            let it = it.as_object_mut().unwrap();
            it.retain(|k, _| !["seconds", "checkpoint"].contains(&k.as_str()));
        }
        h
    };
    let (a, b) = (history("a"), history("b"));
    assert!(a.as_array().is_some_and(|h| h.len() >= 2), "{a}");
    assert_eq!(a, b);
}
