//! The boards `pare flash` knows: memory sizes for the fit check, the firmware crate, and how
//! to run it (QEMU here, probe-rs for real hardware).

use std::path::PathBuf;

/// How firmware reaches a board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `qemu-system-arm -M <machine>` with semihosting.
    Qemu { machine: &'static str },
    /// `probe-rs run --chip <chip>`.
    ProbeRs { chip: &'static str },
}

/// A supported board.
#[derive(Debug, Clone, Copy)]
pub struct Board {
    pub name: &'static str,
    pub description: &'static str,
    /// Folder under `boards/`.
    pub crate_dir: &'static str,
    pub target: &'static str,
    pub flash_bytes: u64,
    pub ram_bytes: u64,
    pub runner: Runner,
    /// Core clock the board's firmware sets (its `main.rs`), in MHz; `None` where the runner
    /// counts instructions instead of time.
    pub clock_mhz: Option<u32>,
}

impl Board {
    /// Cycles per millisecond, for latency budgets in time.
    pub fn cycles_per_ms(&self) -> Option<f64> {
        self.clock_mhz.map(|m| f64::from(m) * 1e3)
    }
}

/// Flash the firmware itself takes besides model and samples (measured: the QEMU check
/// firmware's text is about 40 KiB with fat LTO), with margin.
pub const CODE_RESERVE: u64 = 96 * 1024;
/// RAM beside the arena: stack, output buffer, statics.
pub const RAM_RESERVE: u64 = 24 * 1024;

/// The board a check runs on when none is named: the emulated one, which needs no hardware.
pub const DEFAULT_BOARD: &str = "qemu-mps2-an500";

pub const BOARDS: [Board; 3] = [
    Board {
        name: "qemu-mps2-an500",
        description: "QEMU mps2-an500, Cortex-M7 (emulated; instructions counted exactly)",
        crate_dir: "qemu-mps2-an500",
        target: "thumbv7em-none-eabihf",
        flash_bytes: 4 << 20,
        ram_bytes: 4 << 20,
        runner: Runner::Qemu { machine: "mps2-an500" },
        clock_mhz: None,
    },
    Board {
        name: "nucleo-h743zi",
        description: "ST NUCLEO-H743ZI, STM32H743ZI Cortex-M7",
        crate_dir: "nucleo-h743zi",
        target: "thumbv7em-none-eabihf",
        flash_bytes: 2 << 20,
        ram_bytes: 512 << 10,
        runner: Runner::ProbeRs { chip: "STM32H743ZITx" },
        clock_mhz: Some(400),
    },
    Board {
        name: "rp-pico2",
        description: "Raspberry Pi Pico 2, RP2350 Cortex-M33",
        crate_dir: "rp-pico2",
        target: "thumbv8m.main-none-eabihf",
        flash_bytes: 4 << 20,
        ram_bytes: 512 << 10,
        runner: Runner::ProbeRs { chip: "RP235x" },
        clock_mhz: Some(150),
    },
];

pub fn find(name: &str) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.name == name)
}

/// The `boards/` folder: `PARE_BOARDS_DIR`, or the one beside this crate's source.
pub fn boards_dir() -> PathBuf {
    std::env::var_os("PARE_BOARDS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../boards"))
}

/// Where board builds go (outside the repository, reused between runs).
pub fn build_dir() -> PathBuf {
    std::env::var_os("PARE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/pare")))
        .unwrap_or_else(std::env::temp_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `LENGTH = 4M` / `512K` / `4096K` of a memory.x region, in bytes.
    fn length(memory_x: &str, region: &str) -> Option<u64> {
        let line = memory_x.lines().find(|l| l.trim_start().starts_with(region) && l.contains("LENGTH"))?;
        let v = line.split("LENGTH").nth(1)?.trim_start_matches([' ', '=']).trim().trim_end_matches(',');
        let (num, unit) = match v.chars().last()? {
            'K' => (&v[..v.len() - 1], 1u64 << 10),
            'M' => (&v[..v.len() - 1], 1 << 20),
            _ => (v, 1),
        };
        Some(num.trim().parse::<u64>().ok()? * unit)
    }

    /// Board facts are stated once here and once in each firmware crate (its linker script and
    /// its clock set-up): they must agree (they once disagreed: 480 against 400 MHz).
    #[test]
    fn board_facts_agree_with_each_firmware_crate() {
        for b in BOARDS {
            let dir = boards_dir().join(b.crate_dir);
            let memory = std::fs::read_to_string(dir.join("memory.x")).unwrap();
            assert_eq!(length(&memory, "FLASH"), Some(b.flash_bytes), "{}: FLASH", b.name);
            assert_eq!(length(&memory, "RAM"), Some(b.ram_bytes), "{}: RAM", b.name);
            let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
            let doc = main.lines().next().unwrap_or_default();
            match b.clock_mhz {
                Some(mhz) => assert!(doc.contains(&format!("{mhz} MHz")), "{}: clock {mhz} MHz vs {doc:?}", b.name),
                None => assert!(matches!(b.runner, Runner::Qemu { .. }), "{}: a real board needs its clock", b.name),
            }
        }
        assert!(std::fs::read_to_string(boards_dir().join("nucleo-h743zi/src/main.rs"))
            .unwrap()
            .contains("sys_ck(400.MHz())"));
    }
}
