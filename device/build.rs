//! `cfg(pare_dsp)` on Cortex-M targets with the DSP extension, because ARM target features are
//! not visible to `cfg` on stable Rust: ARMv7E-M (`thumbv7em`: M4, M7) always has it; ARMv8-M
//! Mainline (`thumbv8m.main`: M33, M35P, M55) has it optionally, so there the build must say so
//! with `-C target-cpu=cortex-m33` (or m35p, m55; the RP2350 and nRF54 cores have it) or
//! `-C target-feature=+dsp` in its rustflags, as `boards/rp-pico2/.cargo/config.toml` does.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(pare_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let v8m_dsp = ["target-cpu=cortex-m33", "target-cpu=cortex-m35p", "target-cpu=cortex-m55", "+dsp"]
        .iter()
        .any(|f| flags.split('\x1f').any(|flag| flag.contains(f)));
    if target.starts_with("thumbv7em") || (target.starts_with("thumbv8m.main") && v8m_dsp) {
        println!("cargo::rustc-cfg=pare_dsp");
    }
}
