//! The `pare` binary's output files: created with the mode the umask gives, written into (not
//! over) devices and FIFOs, never over one of the command's inputs, and no temporary files left
//! behind by a killed run.

#![cfg(unix)]

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

const PARE: &str = env!("CARGO_BIN_EXE_pare");

fn pare(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(PARE).args(args).output().expect("run pare");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// `pare args` under the shell's `umask mask`.
fn pare_under_umask(mask: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("umask {mask} && exec \"$0\" \"$@\""))
        .arg(PARE)
        .args(args)
        .output()
        .expect("run sh");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into())
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An f32 export of the zoo's `tiny` (quick; no calibration).
fn export_args(out: &Path) -> Vec<&str> {
    vec!["export", "--model", "tiny", "--quant", "f32", "--out", s(out)]
}

/// A checkpoint of the zoo's `tiny`, untrained.
fn checkpoint(dir: &Path) -> PathBuf {
    let ck = dir.join("ck.safetensors");
    let (ok, _, err) = pare(&["train", "--model", "tiny", "--max-steps", "0", "--out", s(&ck)]);
    assert!(ok, "{err}");
    ck
}

/// The temporary-looking files in `dir`: names starting with a dot.
fn hidden(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// New outputs are 0666 less the umask (they were always 0644); a file written over keeps its
/// mode.
#[test]
fn outputs_follow_the_umask_and_keep_an_existing_mode() {
    let dir = tempfile::tempdir().unwrap();
    for (mask, want) in [("077", 0o600), ("022", 0o644), ("002", 0o664)] {
        let out = dir.path().join(format!("m{mask}.pare"));
        let (ok, err) = pare_under_umask(mask, &export_args(&out));
        assert!(ok, "{err}");
        assert_eq!(mode(&out), want, "umask {mask}");
        // A checkpoint goes through the same write.
        let ck = dir.path().join(format!("ck{mask}.safetensors"));
        let (ok, err) = pare_under_umask(mask, &["train", "--model", "tiny", "--max-steps", "0", "--out", s(&ck)]);
        assert!(ok, "{err}");
        assert_eq!(mode(&ck), want, "umask {mask}");
    }
    let kept = dir.path().join("kept.pare");
    std::fs::write(&kept, b"old").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (ok, err) = pare_under_umask("022", &export_args(&kept));
    assert!(ok, "{err}");
    assert_eq!(mode(&kept), 0o640);
    assert_ne!(std::fs::read(&kept).unwrap(), b"old");
}

/// A FIFO's reader gets the file, and the FIFO stays one; `-o /dev/null` discards the output
/// and leaves the device alone (it replaced it with a regular file).
#[test]
fn devices_and_fifos_are_written_to_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.pipe");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("run mkfifo");
    assert!(status.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let (ok, _, err) = pare(&export_args(&fifo));
    assert!(ok, "{err}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    let bytes = reader.join().unwrap();
    // What came through the pipe is the whole model: it decodes, under the zoo's name.
    let model = pare_format::decode(&bytes).expect("a .pare file through the FIFO");
    assert_eq!(model.meta.name, "tiny");
    assert_eq!(hidden(dir.path()), Vec::<String>::new());

    // `run`'s predictions into a FIFO: one line per image.
    let m = dir.path().join("m.pare");
    let (ok, _, err) = pare(&export_args(&m));
    assert!(ok, "{err}");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let (ok, _, err) = pare(&["run", s(&m), "--limit", "7", "--predictions", s(&fifo), "--json", "/dev/null"]);
    assert!(ok, "{err}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(reader.join().unwrap().lines().count(), 7);
    assert!(std::fs::symlink_metadata("/dev/null").unwrap().file_type().is_char_device());
    let (ok, _, err) = pare(&export_args(Path::new("/dev/null")));
    assert!(ok, "{err}");
    assert!(std::fs::symlink_metadata("/dev/null").unwrap().file_type().is_char_device());
}

/// `--json /dev/stdout` with stdout redirected to a file adds the JSON after what `pare`
/// printed, in that same file (it is neither replaced nor truncated).
#[test]
fn json_to_dev_stdout_follows_the_printed_table() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    let file = std::fs::File::create(&log).unwrap();
    let status = Command::new(PARE)
        .args(["eval", "--model", "tiny", "--limit", "6", "--json", "/dev/stdout"])
        .stdout(file)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let start = text.find("\n{").expect("the JSON after the table") + 1;
    assert!(text[..start].contains("top-1"), "{text}");
    let doc: serde_json::Value = serde_json::from_str(&text[start..]).unwrap();
    assert_eq!(doc["samples"], 6);
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());
}

/// An output that names a folder is refused, and the folder is left as it was.
#[test]
fn a_folder_is_not_an_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("models");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("keep.txt"), b"x").unwrap();
    let (ok, out, err) = pare(&export_args(&folder));
    assert!(!ok && err.contains("is a folder") && err.contains("models"), "{out}{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(folder.is_dir() && folder.join("keep.txt").exists());
}

/// `export --weights X -o X` overwrote the checkpoint; every command with an input and an
/// output refuses an output that is the input, under any name, and leaves the input as it was.
#[test]
fn an_output_that_is_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ck = checkpoint(dir.path());
    let original = std::fs::read(&ck).unwrap();
    let link = dir.path().join("link.safetensors");
    std::os::unix::fs::symlink(&ck, &link).unwrap();
    let model = dir.path().join("m.pare");
    let (ok, _, err) = pare(&export_args(&model));
    assert!(ok, "{err}");
    let model_bytes = std::fs::read(&model).unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let final_ck = run.join("final.safetensors");
    std::fs::copy(&ck, &final_ck).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["export", "--weights", s(&ck), "--quant", "f32", "-o", s(&ck)], "--weights"),
        (vec!["export", "--weights", s(&ck), "--quant", "f32", "-o", s(&link)], "--weights"),
        (vec!["train", "--weights", s(&ck), "--max-steps", "1", "--out", s(&ck)], "--weights"),
        (vec!["eval", "--weights", s(&ck), "--limit", "5", "--json", s(&ck)], "--weights"),
        (vec!["score", "--weights", s(&ck), "--criterion", "l1", "--json", s(&link)], "--weights"),
        (vec!["run", s(&model), "--limit", "5", "--json", s(&model)], "MODEL"),
        (vec!["run", s(&model), "--limit", "5", "--predictions", s(&model)], "MODEL"),
        (vec!["flash", s(&model), "--samples", "1", "--json", s(&model)], "MODEL"),
        (
            vec![
                "prune",
                "--weights",
                s(&final_ck),
                "--target-flops",
                "0.3",
                "--max-iterations",
                "1",
                "--out",
                s(&run),
            ],
            "--weights",
        ),
        (vec!["pipeline", "--weights", s(&ck), "--out", s(&run), "--json", s(&ck)], "--weights"),
    ];
    for (args, input) in cases {
        let (ok, out, err) = pare(&args);
        assert!(!ok && err.contains("same file as") && err.contains(input), "{args:?}: {out}{err}");
        assert!(!err.contains("panicked") && !err.contains("epoch") && !err.contains("iteration"), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&ck).unwrap(), original);
    assert_eq!(std::fs::read(&final_ck).unwrap(), original);
    assert_eq!(std::fs::read(&model).unwrap(), model_bytes);
    // --resume reads --out on purpose.
    let (ok, _, err) = pare(&["train", "--resume", "--max-steps", "1", "--out", s(&ck)]);
    assert!(ok, "{err}");
}

/// A run killed while writing leaves `.<name>.pare-tmp.<pid>.<random>` beside the output; the
/// next write of that output removes it once its process is gone (kill -9 during `export` left
/// `.tmpXXXXXX` files that nothing ever removed). A live process's temporary file stays.
#[test]
fn temporaries_of_killed_runs_are_removed_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.path().join(format!(".m.pare.pare-tmp.{dead}.12345678"));
    // Process 1 lives as long as the system.
    let live = dir.path().join(".m.pare.pare-tmp.1.12345678");
    std::fs::write(&stale, b"half a model").unwrap();
    std::fs::write(&live, b"being written").unwrap();
    let out = dir.path().join("m.pare");
    let (ok, _, err) = pare(&export_args(&out));
    assert!(ok, "{err}");
    assert!(!stale.exists(), "the stale temporary file is still there");
    assert!(live.exists());
    assert_eq!(hidden(dir.path()), vec![".m.pare.pare-tmp.1.12345678".to_string()]);

    // Killed at moments spread over an export: whatever it left carries the output's name and
    // its pid, and the next export cleans it up.
    for i in 0..8 {
        let mut child = Command::new(PARE)
            .args(export_args(&out))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20 * i));
        child.kill().unwrap();
        child.wait().unwrap();
        for name in hidden(dir.path()) {
            assert!(name.starts_with(".m.pare.pare-tmp."), "{name}");
        }
    }
    let (ok, _, err) = pare(&export_args(&out));
    assert!(ok, "{err}");
    assert_eq!(hidden(dir.path()), vec![".m.pare.pare-tmp.1.12345678".to_string()]);
}
