//! With `--features libtorch`, records libtorch's library folder as the binaries' run-time
//! search path (rpath), so `pare` and its tests start without `LD_LIBRARY_PATH`. The folder is
//! found the way torch-sys finds it: `$LIBTORCH/lib`, else the `torch` package of
//! `$VIRTUAL_ENV`'s Python (`LIBTORCH_USE_PYTORCH=1`, what `scripts/build-libtorch` sets).

use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    if let Some(root) = std::env::var_os("LIBTORCH") {
        return Some(PathBuf::from(root).join("lib"));
    }
    let python = match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) => PathBuf::from(venv).join("bin/python"),
        None => PathBuf::from("python3"),
    };
    let out = Command::new(python)
        .args(["-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
        .output()
        .ok()?;
    out.status.success().then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_LIBTORCH").is_none() {
        return;
    }
    match torch_lib_dir() {
        Some(dir) if dir.is_dir() => println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display()),
        _ => println!(
            "cargo:warning=libtorch's library folder was not found (set LIBTORCH or VIRTUAL_ENV); \
             pare will need LD_LIBRARY_PATH to start"
        ),
    }
}
