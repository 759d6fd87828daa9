//! Raspberry Pi Pico 2 (RP2350, Cortex-M33 at 150 MHz): time from the DWT cycle counter,
//! defmt over RTT, result on the LED (GPIO 25) through embedded-hal 1.0, end of run signalled
//! to probe-rs with a breakpoint.
#![no_std]
#![no_main]

use defmt_rtt as _;
use panic_probe as _;
use rp235x_hal as hal;

/// Tells the boot ROM this is a secure ARM executable.
#[link_section = ".start_block"]
#[used]
pub static IMAGE_DEF: hal::block::ImageDef = hal::block::ImageDef::secure_exe();

const XTAL_FREQ_HZ: u32 = 12_000_000;

#[hal::entry]
fn main() -> ! {
    let (Some(mut cp), Some(mut pac)) = (cortex_m::Peripherals::take(), hal::pac::Peripherals::take()) else {
        defmt::panic!("peripherals taken twice")
    };
    let mut watchdog = hal::Watchdog::new(pac.WATCHDOG);
    let Ok(clocks) = hal::clocks::init_clocks_and_plls(
        XTAL_FREQ_HZ,
        pac.XOSC,
        pac.CLOCKS,
        pac.PLL_SYS,
        pac.PLL_USB,
        &mut pac.RESETS,
        &mut watchdog,
    ) else {
        defmt::panic!("clock setup failed")
    };
    let mut timer = hal::Timer::new_timer0(pac.TIMER0, &mut pac.RESETS, &clocks);
    let sio = hal::Sio::new(pac.SIO);
    let pins = hal::gpio::Pins::new(pac.IO_BANK0, pac.PADS_BANK0, sio.gpio_bank0, &mut pac.RESETS);
    let mut led = pins.gpio25.into_push_pull_output();
    let mut clock = pare_check::CycleClock::start(&mut cp.DCB, &mut cp.DWT);
    let mut arena = [0u32; pare_check::ARENA_WORDS];
    let outcome = pare_check::run(pare_check::as_bytes(&mut arena), &mut || clock.now(), "cycles", 1);
    cortex_m::asm::bkpt();
    pare_check::indicate(&mut led, &mut timer, outcome)
}
