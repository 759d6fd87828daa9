//! Embeds the bundle `pare flash` prepared (PARE_BUNDLE: model.pare, samples.bin, labels.bin,
//! expected.bin). Without one the firmware still builds and reports that nothing is embedded.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=PARE_BUNDLE");
    let bundle = std::env::var("PARE_BUNDLE").ok().map(PathBuf::from);
    let mut arena = 4u64;
    for name in ["model.pare", "samples.bin", "labels.bin", "expected.bin", "outputs.bin"] {
        let bytes = match &bundle {
            Some(dir) => {
                let p = dir.join(name);
                println!("cargo:rerun-if-changed={}", p.display());
                std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            }
            None => Vec::new(),
        };
        if name == "model.pare" && bytes.len() >= 16 {
            // The arena size is only known from the model; read it without decoding: the
            // bundle also carries it as a separate file.
            if let Some(dir) = &bundle {
                if let Ok(s) = std::fs::read_to_string(dir.join("arena.txt")) {
                    arena = s.trim().parse().unwrap_or(4);
                }
            }
        }
        std::fs::write(out.join(name), bytes).expect("write OUT_DIR");
    }
    std::fs::write(out.join("arena.rs"), format!("pub const ARENA_WORDS: usize = {};\n", arena.div_ceil(4).max(1)))
        .expect("write OUT_DIR");
}
