//! The QEMU board end to end through the library's board check (`pare::flash::run`), and the
//! errors it gives on bad input. One test function runs the board flows in sequence, because
//! they share the firmware build folder.

use burn::tensor::Device;
use pare::export::{export, Quant};
use pare::flash::{FlashError, FlashRequest};
use pare_tests::{random_net, shared};
use std::path::Path;

fn args(model: &Path, board: &str, samples: usize, data: &str, split: &str) -> FlashRequest {
    FlashRequest {
        model: model.into(),
        board: board.into(),
        samples,
        data: data.into(),
        split: split.into(),
        ..FlashRequest::default()
    }
}

#[test]
fn flash_refuses_bad_inputs_with_one_clear_error_each() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("tiny.pare");
    let net = random_net("tiny", 4, &Device::flex());
    std::fs::write(&good, export(&net, Quant::F32, None, None).unwrap()).unwrap();

    let e = pare::flash::run(&args(&good, "arduino-uno", 2, "synthetic", "test")).unwrap_err();
    assert!(matches!(e, FlashError::UnknownBoard(_)), "{e}");

    let missing = dir.path().join("missing.pare");
    let e = pare::flash::run(&args(&missing, "qemu-mps2-an500", 2, "synthetic", "test")).unwrap_err();
    assert!(matches!(e, FlashError::File(_)) && e.to_string().contains("missing.pare"), "{e}");

    let corrupt = dir.path().join("corrupt.pare");
    let mut bytes = std::fs::read(&good).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x55;
    std::fs::write(&corrupt, &bytes).unwrap();
    let e = pare::flash::run(&args(&corrupt, "qemu-mps2-an500", 2, "synthetic", "test")).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");

    // VGG-16 in f32 is ~59 MB: too large for a 2 MiB board, refused before any build.
    let big = dir.path().join("vgg.pare");
    let vgg = random_net("vgg16", 4, &Device::flex());
    std::fs::write(&big, export(&vgg, Quant::F32, None, None).unwrap()).unwrap();
    let e = pare::flash::run(&args(&big, "nucleo-h743zi", 2, "synthetic", "test")).unwrap_err();
    match e {
        FlashError::TooLarge { flash_need, flash, .. } => assert!(flash_need > flash && flash == 2 << 20),
        other => panic!("{other}"),
    }
}

#[test]
fn qemu_board_agrees_with_host_emulation() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    // 1. A synthetic-data model, int8: every sample must agree with host emulation.
    let model = dir.path().join("tiny-int8.pare");
    let net = random_net("tiny", 5, &device);
    let calib = pare::data::load("synthetic", "train").unwrap().take(64);
    std::fs::write(&model, export(&net, Quant::Int8, Some(&calib), None).unwrap()).unwrap();

    // QEMU missing: a clear error naming the tool and how to install it (no build started).
    std::env::set_var("PARE_QEMU", "/nonexistent/qemu-system-arm");
    let e = pare::flash::run(&args(&model, "qemu-mps2-an500", 4, "synthetic", "test")).unwrap_err();
    std::env::remove_var("PARE_QEMU");
    assert!(
        matches!(e, FlashError::ToolMissing { .. }) && e.to_string().contains("apt-get install qemu-system-arm"),
        "{e}"
    );

    let r = pare::flash::run(&args(&model, "qemu-mps2-an500", 30, "synthetic", "test")).unwrap();
    assert_eq!((r.result.samples, r.result.agree, r.result.exact), (30, 30, 30), "{r:?}");
    assert!(r.passed() && r.result.errors.is_empty(), "{r:?}");
    assert!(r.result.per_inference > 0 && r.result.unit == "instructions", "{r:?}");
    assert!(!r.result.layers.is_empty());

    // 2. With ../shared: pruned + int8 ResNet-20 on real CIFAR-10 test samples.
    let shared = shared("models/resnet-cifar10");
    let arch = pare::model::zoo::resnet_cifar(20, 10);
    let net =
        pare::model::weights::load_weights(&arch, &shared.join("models/resnet-cifar10/resnet20.safetensors"), &device)
            .unwrap();
    let groups = pare::prune::groups::Groups::of(&net.arch).unwrap();
    let mut keep = groups.keep_all();
    for s in groups.prunable(true) {
        let n = keep[s].len();
        keep[s].truncate(n / 2);
    }
    let small = pare::prune::surgery::prune(&net, &groups, &keep, &device).unwrap();
    let data = shared.join("data/cifar10");
    let calib = pare::data::load_cifar(&data, "train").unwrap().take(128);
    let model = dir.path().join("resnet20-pruned-int8.pare");
    std::fs::write(&model, export(&small, Quant::Int8, Some(&calib), None).unwrap()).unwrap();
    let samples = std::env::var("PARE_BOARD_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(100);
    let r =
        pare::flash::run(&args(&model, "qemu-mps2-an500", samples, data.to_str().unwrap(), "test_lossless")).unwrap();
    assert_eq!(
        (r.result.samples, r.result.agree, r.result.exact),
        (samples as u64, samples as u64, samples as u64),
        "{r:?}"
    );
}

#[test]
fn real_boards_get_the_exact_probe_rs_command() {
    use pare::boards::find;
    use pare::flash::{render, run_command};
    let elf = Path::new("/fw/pare-board-nucleo-h743zi");
    assert_eq!(
        render(&run_command(find("nucleo-h743zi").unwrap(), elf)),
        "probe-rs run --chip STM32H743ZITx /fw/pare-board-nucleo-h743zi"
    );
    let elf = Path::new("/fw/pare-board-rp-pico2");
    assert_eq!(
        render(&run_command(find("rp-pico2").unwrap(), elf)),
        "probe-rs run --chip RP235x /fw/pare-board-rp-pico2"
    );
    let qemu = render(&run_command(find("qemu-mps2-an500").unwrap(), Path::new("/fw/q")));
    assert!(qemu.ends_with("-M mps2-an500 -display none -serial null -monitor null -icount shift=0 -semihosting-config enable=on,target=native -kernel /fw/q"), "{qemu}");
}

#[test]
fn flashing_a_real_board_without_probe_rs_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.pare");
    std::fs::write(&model, export(&random_net("tiny", 6, &Device::flex()), Quant::F32, None, None).unwrap()).unwrap();
    // The dry run returns the commands and needs no tool, installed or not.
    let mut dry = args(&model, "nucleo-h743zi", 2, "synthetic", "test");
    dry.dry_run = true;
    let commands = pare::flash::run(&dry).unwrap().result.commands;
    assert!(commands.len() == 2 && commands[1].starts_with("probe-rs run --chip STM32H743ZITx"), "{commands:?}");
    // Where probe-rs is installed, a real run would flash whatever board is attached: the
    // missing-tool error is checked only where it is missing.
    if pare::flash::which("probe-rs").is_none() {
        let e = pare::flash::run(&args(&model, "rp-pico2", 2, "synthetic", "test")).unwrap_err();
        assert!(
            matches!(e, FlashError::ToolMissing { .. }) && e.to_string().contains("cargo install probe-rs-tools"),
            "{e}"
        );
    } else {
        eprintln!("probe-rs is installed: the missing-tool error is not checked here (the dry run was)");
    }
}
