//! QEMU mps2-an500 (Cortex-M7): defmt over semihosting, exit status over semihosting, time from
//! SysTick. Under `-icount shift=0` one instruction takes 1 ns and SysTick (25 MHz) counts once
//! per 40 instructions, so counts × 40 = instructions, deterministically.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception, ExceptionFrame};
use defmt_semihosting as _;

/// SysTick wrap-arounds (24-bit counter).
static WRAPS: AtomicU32 = AtomicU32::new(0);
const RELOAD: u32 = 0x00FF_FFFF;

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

fn now() -> u64 {
    loop {
        let w = WRAPS.load(Ordering::Relaxed);
        let v = cortex_m::peripheral::SYST::get_current();
        if WRAPS.load(Ordering::Relaxed) == w {
            return u64::from(w) * u64::from(RELOAD + 1) + u64::from(RELOAD - v);
        }
    }
}

#[entry]
fn main() -> ! {
    let Some(mut cp) = cortex_m::Peripherals::take() else { semihosting::process::exit(2) };
    cp.SYST.set_clock_source(SystClkSource::Core);
    cp.SYST.set_reload(RELOAD);
    cp.SYST.clear_current();
    cp.SYST.enable_interrupt();
    cp.SYST.enable_counter();
    let mut arena = [0u32; pare_check::ARENA_WORDS];
    let bytes: &mut [u8] = bytemuck_bytes(&mut arena);
    let outcome = pare_check::run(bytes, &mut now, "instructions", 40);
    semihosting::process::exit(outcome as i32)
}

/// `[u32]` as bytes, without unsafe: through the check crate's re-exported bytemuck.
fn bytemuck_bytes(words: &mut [u32]) -> &mut [u8] {
    pare_check::as_bytes(words)
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    defmt::println!("PARE-ERROR hard fault");
    semihosting::process::exit(3)
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    defmt::println!("PARE-ERROR panic");
    semihosting::process::exit(4)
}
