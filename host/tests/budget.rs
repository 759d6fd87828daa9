//! Board budgets without a board: the cost ranking on a hand-worked three-layer model, and the
//! command-line forms of the limits.

use pare::budget::{BoardTarget, LatencyLimit, LatencyModel};
use pare::channels::Groups;
use pare::model::{Arch, Node, Shape, Src};
use pare::prune::schedule::{cost_per_channel, per_cost, select};

/// input → conv a (4) → conv b (4) → conv c (4) → global average → linear (2).
fn three_layers() -> Arch {
    let conv = |name: &str, input, out| Node::Conv {
        name: name.into(),
        bn: format!("{name}_bn"),
        input,
        out,
        kernel: 3,
        stride: 1,
        padding: 1,
        relu: true,
        pads: None,
    };
    Arch {
        name: "three".into(),
        input: Shape { c: 3, h: 4, w: 4 },
        nodes: vec![
            conv("a", Src::Input, 4),
            conv("b", Src::Node(0), 4),
            conv("c", Src::Node(1), 4),
            Node::GlobalAvgPool { input: Src::Node(2) },
            Node::Dense { name: "fc".into(), input: Src::Node(3), out: 2, relu: false },
        ],
        mean: vec![0.0; 3],
        std: vec![1.0; 3],
        labels: vec!["x".into(), "y".into()],
    }
}

#[test]
fn ranking_by_latency_freed_matches_the_hand_worked_three_layer_example() {
    let arch = three_layers();
    let groups = Groups::of(&arch).unwrap();
    // A latency model costing 10, 1 and 4 instructions per output channel of a, b, c and
    // nothing else (conv features: 1, kp, co, ⌈co/2⌉·kp, ⌈co/2⌉, tail, tail·⌈co/2⌉, tail·kp).
    let conv = |per: f64| vec![0.0, 0.0, per, 0.0, 0.0, 0.0, 0.0, 0.0];
    let latency =
        LatencyModel { coefficients: vec![vec![0.0], conv(10.0), conv(1.0), conv(4.0), vec![0.0; 2], vec![0.0; 4]] };
    let target = BoardTarget {
        board: "qemu-mps2-an500".into(),
        unit: "instructions".into(),
        max_latency: Some(1000),
        max_arena: None,
        max_flash: None,
        latency,
        runtime_bytes: 0,
        criterion: "attribution".into(),
        base: (0, 0),
        points: vec![],
        profile_points: 0,
    };
    // Full model: 4·10 + 4·1 + 4·4 = 60 instructions.
    assert_eq!(target.latency.predict(&arch).unwrap(), 60.0);
    let (sa, sb, sc) = (groups.node_space[0], groups.node_space[1], groups.node_space[2]);
    let spaces = groups.prunable(false);
    assert_eq!(spaces, vec![sa, sb, sc]);
    // Per channel freed, relative to the 1000-instruction budget: a 0.010, b 0.001, c 0.004.
    let per = cost_per_channel(&arch, &groups, 4, &|a| target.cost(a).ok());
    for (s, want) in [(sa, 0.010), (sb, 0.001), (sc, 0.004)] {
        assert!((per[s] - want).abs() < 1e-12, "space {s}: {} vs {want}", per[s]);
    }
    let mut scores = vec![vec![]; groups.spaces.len()];
    scores[sa] = vec![0.4, 0.9, 1.0, 1.2];
    scores[sb] = vec![0.1, 0.3, 0.5, 0.7];
    scores[sc] = vec![0.2, 0.6, 0.8, 1.0];
    let floors = vec![1; groups.spaces.len()];
    // By score alone the three weakest are b0 (0.1), c0 (0.2), b1 (0.3).
    let (keep, n) = select(&groups, &scores, &spaces, 3, &floors, 1);
    assert_eq!(n, 3);
    assert_eq!((keep[sa].clone(), keep[sb].clone(), keep[sc].clone()), (vec![0, 1, 2, 3], vec![2, 3], vec![1, 2, 3]));
    // Per cost (mean 0.005: a ×2, b ×0.2, c ×0.8 of the mean): a = 0.2, 0.45, 0.5, 0.6;
    // b = 0.5, 1.5, 2.5, 3.5; c = 0.25, 0.75, 1.0, 1.25. The three lowest: a0, c0, a1.
    per_cost(&mut scores, &spaces, &per, 1.0);
    let (keep, n) = select(&groups, &scores, &spaces, 3, &floors, 1);
    assert_eq!(n, 3);
    assert_eq!((keep[sa].clone(), keep[sb].clone(), keep[sc].clone()), (vec![2, 3], vec![0, 1, 2, 3], vec![1, 2, 3]));
    // Removing a0, a1 and c0 saves 2·10 + 4 = 24 of the 60 instructions; b0, c0, b1 would
    // have saved 2·1 + 4 = 6.
    let pruned = pare::channels::pruned_arch(&arch, &groups, &keep);
    assert_eq!(target.latency.predict(&pruned).unwrap(), 36.0);
}

#[test]
fn latency_limits_parse_and_resolve_as_written() {
    let p = |s: &str| s.parse::<LatencyLimit>();
    assert_eq!(p("25000000"), Ok(LatencyLimit::Count(25_000_000)));
    assert_eq!(p("25M"), Ok(LatencyLimit::Count(25_000_000)));
    assert_eq!(p("800k"), Ok(LatencyLimit::Count(800_000)));
    assert_eq!(p("50%"), Ok(LatencyLimit::Share(0.5)));
    assert_eq!(p("12ms"), Ok(LatencyLimit::Millis(12.0)));
    for bad in ["", "-3", "150%", "0%", "fast", "12 s", "NaN"] {
        assert!(p(bad).is_err(), "{bad} parsed");
    }
    // 50 % of 55,642,160 measured instructions; 12 ms at 400 MHz is 4.8 M cycles.
    assert_eq!(LatencyLimit::Share(0.5).resolve(55_642_160, None), Ok(27_821_080));
    assert_eq!(LatencyLimit::Millis(12.0).resolve(0, Some(400e3)), Ok(4_800_000));
    // Milliseconds on an instruction-counting emulator mean nothing: refused.
    assert!(LatencyLimit::Millis(12.0).resolve(1, None).is_err());
    use pare::cli::budget::bytes;
    assert_eq!(bytes("262144"), Ok(262_144));
    assert_eq!(bytes("256k"), Ok(262_144));
    assert_eq!(bytes("1M"), Ok(1_048_576));
    assert!(bytes("lots").is_err() && bytes("-1k").is_err());
}

/// A board target with byte budgets only (no latency model, no board needed for the run) and
/// a hand-set runtime size.
fn bytes_target(max_arena: Option<u64>, max_flash: Option<u64>, arch: &Arch) -> BoardTarget {
    BoardTarget {
        board: "qemu-mps2-an500".into(),
        unit: "instructions".into(),
        max_latency: None,
        max_arena,
        max_flash,
        latency: LatencyModel { coefficients: vec![] },
        runtime_bytes: 50_000,
        criterion: "l1".into(),
        base: arch.cost().unwrap(),
        points: vec![],
        profile_points: 0,
    }
}

fn run_to(target: BoardTarget) -> (pare::model::Net, pare::prune::schedule::RunState) {
    use pare::prune::criteria::{Criterion, Normalize};
    use pare::prune::schedule::{run, PruneConfig, RunData, StepSize, Target};
    let device = burn::tensor::Device::flex();
    let train = pare::data::load("synthetic", "train").unwrap().take(128);
    let calib = train.clone().take(16);
    let eval = pare::data::load("synthetic", "test").unwrap().take(32);
    let cfg = PruneConfig {
        criterion: Criterion::L1,
        normalize: Normalize::L2,
        step: StepSize::Fraction(0.25),
        target: Target::default(),
        finetune_steps: 2,
        batch_size: 16,
        distill: None,
        bn_batches: 0,
        max_iterations: 20,
        board: Some(target),
        ..PruneConfig::default()
    };
    let out = tempfile::tempdir().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let net = pare::testing::random_net("tiny", 1, &device);
    run(
        Some(net),
        &cfg,
        &RunData { train: &train, calib: &calib, eval: &eval, polish: None },
        out.path(),
        false,
        &device,
        &stop,
    )
    .unwrap()
}

/// The exported int8 model's exact bytes and arena, as the board would get them.
fn exported(net: &pare::model::Net) -> (u64, u64) {
    let calib = pare::data::load("synthetic", "train").unwrap().take(8);
    let prov = pare::budget::provenance("l1", (0, 0), &net.arch);
    let bytes = pare::export::export(net, pare::export::Quant::Int8, Some(&calib), Some(prov)).unwrap();
    let rt = pare_device::Runtime::from_bytes(&bytes).unwrap();
    (bytes.len() as u64, u64::from(rt.arena_bytes()))
}

#[test]
fn byte_budgets_hold_exactly_for_the_exported_model_or_the_run_says_it_cannot() {
    let arch = pare::model::zoo::tiny(10);
    // The unpruned tiny model, exported: its arena and file size.
    let device = burn::tensor::Device::flex();
    let (model0, arena0) = exported(&pare::testing::random_net("tiny", 1, &device));
    // Budgets at 70 % of each: reachable. The final model's export must hold both, and the
    // run must have pruned (the original does not).
    let (arena_limit, flash_limit) = (arena0 * 7 / 10, 50_000 + model0 * 7 / 10);
    let (net, state) = run_to(bytes_target(Some(arena_limit), Some(flash_limit), &arch));
    let (model, arena) = exported(&net);
    assert!(state.done && state.history.len() > 1);
    assert!(arena <= arena_limit, "arena {arena} > {arena_limit}");
    assert!(50_000 + model <= flash_limit, "flash {} > {flash_limit}", 50_000 + model);
    // An arena of 1 byte cannot be met: the run stops at the width floors with the smallest
    // model it reached, done, well before --max-iterations.
    let (net, state) = run_to(bytes_target(Some(1), None, &arch));
    assert!(state.done && state.history.len() < 20, "{} iterations", state.history.len());
    let last = state.history.last().unwrap();
    let t = bytes_target(Some(1), None, &arch);
    assert!(!t.holds_for(&net.arch, None).unwrap());
    // Every conv at its floor: max(2 channels, ⌈12.5 % of the original⌉).
    for ((_, now), (_, was)) in last.channels.iter().zip(&state.history[0].channels) {
        assert_eq!(*now, 2usize.max((*was as f64 * 0.125).ceil() as usize));
    }
}

#[test]
fn a_cached_profile_is_keyed_by_every_firmware_source_and_nothing_else() {
    use pare::budget::measure::fingerprint_in;
    let board = pare::boards::find("qemu-mps2-an500").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("checkout");
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write("device/src/ops/conv.rs", "fn conv() {}");
    write("boards/check/src/lib.rs", "fn check() {}");
    write("boards/qemu-mps2-an500/src/main.rs", "fn main() {}");
    write("boards/Cargo.lock", "lock");
    write("host/src/main.rs", "fn host() {}");
    let boards = root.join("boards");
    let a = fingerprint_in(&boards, board);
    // Host code and build outputs are not firmware sources.
    write("host/src/main.rs", "fn host2() {}");
    write("boards/qemu-mps2-an500/target/x", "build output");
    assert_eq!(fingerprint_in(&boards, board), a);
    // A kernel, the check program, the board crate and the lock file each are.
    for (rel, text) in [
        ("device/src/ops/conv.rs", "fn conv() { faster() }"),
        ("boards/check/src/lib.rs", "fn check2() {}"),
        ("boards/qemu-mps2-an500/src/main.rs", "fn main2() {}"),
        ("boards/Cargo.lock", "lock2"),
    ] {
        let before = fingerprint_in(&boards, board);
        write(rel, text);
        assert_ne!(fingerprint_in(&boards, board), before, "{rel}");
    }
    // The same sources in another checkout: the same key (paths are taken relative).
    let moved = dir.path().join("elsewhere");
    std::fs::rename(&root, &moved).unwrap();
    let again = fingerprint_in(&moved.join("boards"), board);
    std::fs::rename(&moved, &root).unwrap();
    assert_eq!(again, fingerprint_in(&boards, board));
}
