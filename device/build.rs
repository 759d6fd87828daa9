//! `cfg(pare_dsp)` on Cortex-M targets with the DSP extension (ARMv7E-M: M4, M7), because ARM
//! target features are not visible to `cfg` on stable Rust.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(pare_dsp)");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") {
        println!("cargo::rustc-cfg=pare_dsp");
    }
    println!("cargo::rerun-if-changed=build.rs");
}
