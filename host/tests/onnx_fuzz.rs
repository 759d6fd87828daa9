//! The ONNX importer under mutation fuzzing: seeds are valid models (the conformance table's,
//! written by `scripts/onnx_conformance.py`, and pare's own ONNX exports of zoo models), each
//! mutated by bit flips, boundary values, varints of extreme size, cuts, repeats and splices.
//! Every input must import or fail with an error: a panic fails the test and leaves the input in
//! the temp folder named in the message; the process's peak memory must stay under 2 GB.
//! `PARE_ONNX_FUZZ_RUNS` sets the number of mutated inputs (default 20,000; BENCHMARKS.md
//! records a long run).

/// xorshift64*: a fixed, dependency-free stream so a failing run repeats exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = vec![];
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// One mutation of `x` (splices draw from `seeds`).
fn mutate(x: &mut Vec<u8>, seeds: &[Vec<u8>], r: &mut Rng) {
    const VARINTS: [u64; 8] = [0, 1, 0x7f, 0x80, 1 << 31, 1 << 40, 1 << 62, u64::MAX];
    if x.is_empty() {
        x.push(0);
    }
    let at = r.below(x.len());
    match r.below(7) {
        0 => x[at] ^= 1 << r.below(8),
        1 => x[at] = [0u8, 0xff, 0x7f, 0x80, 0x01][r.below(5)],
        2 => {
            let v = varint(VARINTS[r.below(VARINTS.len())]);
            let end = (at + v.len()).min(x.len());
            x.splice(at..end, v);
        }
        3 => {
            let len = 1 + r.below(16.min(x.len() - at));
            x.drain(at..at + len);
        }
        4 => {
            let len = 1 + r.below(64.min(x.len() - at));
            let part: Vec<u8> = x[at..at + len].to_vec();
            x.splice(at..at, part);
        }
        5 => {
            let other = &seeds[r.below(seeds.len())];
            let from = r.below(other.len());
            let len = 1 + r.below(256.min(other.len() - from));
            x.splice(at..at, other[from..from + len].iter().copied());
        }
        _ => x.truncate(at),
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let mut seeds: Vec<Vec<u8>> =
        pare::testing::onnx_conformance_models(dir.path()).iter().map(|p| std::fs::read(p).unwrap()).collect();
    let device = burn::tensor::Device::flex();
    for name in ["tiny", "resnet8"] {
        let net = pare::testing::random_net(name, 1, &device);
        seeds.push(pare::export::onnx::export_onnx(&net).unwrap());
    }
    assert!(seeds.len() > 20, "only {} seeds", seeds.len());
    seeds
}

/// Peak resident memory of this process so far, in bytes.
fn peak_rss() -> u64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    assert_eq!(rc, 0);
    u64::try_from(u.ru_maxrss).unwrap_or(0) * 1024
}

#[test]
fn mutated_models_import_or_fail_cleanly() {
    let seeds = seeds();
    let runs: usize = std::env::var("PARE_ONNX_FUZZ_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut refused) = (0usize, 0usize);
    // A panic inside the importer is caught, saved and reported; the default hook stays quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let start = std::time::Instant::now();
    for run in 0..runs {
        let mut x = seeds[r.below(seeds.len())].clone();
        for _ in 0..1 + r.below(8) {
            mutate(&mut x, &seeds, &mut r);
        }
        match std::panic::catch_unwind(|| pare::model::onnx::import_arch(&x).is_ok()) {
            Ok(true) => ok += 1,
            Ok(false) => refused += 1,
            Err(e) => {
                let _ = std::panic::take_hook();
                let path = std::env::temp_dir().join(format!("onnx-fuzz-crash-{run}.onnx"));
                std::fs::write(&path, &x).unwrap();
                let msg =
                    e.downcast_ref::<String>().cloned().or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()));
                panic!("run {run}: the importer panicked ({msg:?}); input saved as {}", path.display());
            }
        }
    }
    let _ = std::panic::take_hook();
    let peak = peak_rss();
    eprintln!(
        "onnx fuzz: {runs} inputs in {:.1} s, {ok} imported, {refused} refused, 0 panics, peak memory {} MB",
        start.elapsed().as_secs_f64(),
        peak >> 20
    );
    assert!(peak < 2 << 30, "peak memory {peak} bytes");
}
