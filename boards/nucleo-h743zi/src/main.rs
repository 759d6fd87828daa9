//! NUCLEO-H743ZI: 400 MHz from the HSI PLL, time from the DWT cycle counter, defmt over RTT,
//! result on the green LED (LD1, PB0), end of run signalled to probe-rs with a breakpoint.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use defmt_rtt as _;
use panic_probe as _;
use stm32h7xx_hal::{pac, prelude::*};

/// embedded-hal 1.0 view of the HAL's (embedded-hal 0.2) output pin.
struct Led<P>(P);

impl<P> embedded_hal::digital::ErrorType for Led<P> {
    type Error = core::convert::Infallible;
}

impl<P: embedded_hal_02::digital::v2::OutputPin> embedded_hal::digital::OutputPin for Led<P> {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        let _ = self.0.set_low();
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        let _ = self.0.set_high();
        Ok(())
    }
}

#[entry]
fn main() -> ! {
    let (Some(mut cp), Some(dp)) = (cortex_m::Peripherals::take(), pac::Peripherals::take()) else {
        defmt::panic!("peripherals taken twice")
    };
    let pwrcfg = dp.PWR.constrain().freeze();
    let ccdr = dp.RCC.constrain().sys_ck(400.MHz()).freeze(pwrcfg, &dp.SYSCFG);
    let gpiob = dp.GPIOB.split(ccdr.peripheral.GPIOB);
    let mut led = Led(gpiob.pb0.into_push_pull_output());
    let mut clock = pare_check::CycleClock::start(&mut cp.DCB, &mut cp.DWT);
    let mut arena = [0u32; pare_check::ARENA_WORDS];
    let outcome = pare_check::run(pare_check::as_bytes(&mut arena), &mut || clock.now(), "cycles", 1);
    // probe-rs run ends the session at this breakpoint; standalone, the LED keeps the result.
    cortex_m::asm::bkpt();
    let mut delay = cortex_m::delay::Delay::new(cp.SYST, ccdr.clocks.sys_ck().raw());
    pare_check::indicate(&mut led, &mut delay, outcome)
}
