//! The check program every board runs: the embedded model over the embedded samples, each
//! prediction compared with its label and with host emulation, timed with the board's clock,
//! reported over defmt, ending in one machine-readable `PARE-RESULT` line. Boards only wire
//! hardware (clock, exit); this crate owns the logic.
#![no_std]
#![forbid(unsafe_code)]

use pare_device::{Error, Runtime};

include!(concat!(env!("OUT_DIR"), "/arena.rs"));

/// The model file.
pub static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.pare"));
/// Samples, HWC pixels, back to back.
pub static SAMPLES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/samples.bin"));
/// One label per sample.
pub static LABELS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/labels.bin"));
/// One host-emulated prediction per sample.
pub static EXPECTED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/expected.bin"));

/// Host-emulated raw output bytes of every sample, back to back.
pub static OUTPUTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/outputs.bin"));

/// Outcome, also the process exit status: 0 all agree, 1 disagreement, 2 cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Outcome {
    Pass = 0,
    Disagree = 1,
    Failed = 2,
}

/// Runs the check. `clock` returns a monotonically increasing count; `clock_to_instructions`
/// is the number of instructions (or cycles) per count, reported alongside.
pub fn run(arena: &mut [u8], clock: &mut dyn FnMut() -> u64, clock_unit: &'static str, per_count: u32) -> Outcome {
    if MODEL.is_empty() {
        defmt::println!("PARE-ERROR no model embedded: build through `pare flash`");
        return Outcome::Failed;
    }
    let rt = match Runtime::from_bytes(MODEL) {
        Ok(rt) => rt,
        Err(e) => {
            defmt::println!("PARE-ERROR model rejected: {}", e);
            return Outcome::Failed;
        }
    };
    let pixels = rt.model().input_buffer().and_then(|b| b.elements()).unwrap_or(0) as usize;
    let n = LABELS.len().min(EXPECTED.len()).min(SAMPLES.len().checked_div(pixels).unwrap_or(0));
    defmt::println!(
        "PARE-START samples={=u32} model_bytes={=u32} arena={=u32} unit={=str} per_count={=u32}",
        n as u32,
        MODEL.len() as u32,
        rt.arena_bytes(),
        clock_unit,
        per_count
    );
    let mut out = [0u8; 4096];
    let Some(out) = out.get_mut(..rt.output_bytes() as usize) else {
        defmt::println!("PARE-ERROR output larger than 4096 bytes");
        return Outcome::Failed;
    };
    let (mut correct, mut agree, mut exact, mut total, mut traced) = (0u32, 0u32, 0u32, 0u64, 0u64);
    let ob = out.len();
    for i in 0..n {
        let Some(px) = SAMPLES.get(i * pixels..(i + 1) * pixels) else { break };
        let first = i == 0;
        let mut last = clock();
        let start = last;
        let mut layer = |t: pare_device::LayerTrace| {
            if first {
                let now = clock();
                defmt::println!("PARE-LAYER {=u32} {=str} counts={=u64}", t.index, t.kind, now - last);
                last = clock();
            }
        };
        let res: Result<(), Error> = rt.run_pixels_traced(arena, px, out, &mut layer);
        let counts = clock() - start;
        if let Err(e) = res {
            defmt::println!("PARE-ERROR sample {=u32}: {}", i as u32, e);
            return Outcome::Failed;
        }
        let pred = rt.argmax(out).unwrap_or(u32::MAX);
        let label = u32::from(LABELS.get(i).copied().unwrap_or(255));
        let host = u32::from(EXPECTED.get(i).copied().unwrap_or(255));
        correct += u32::from(pred == label);
        agree += u32::from(pred == host);
        let same = OUTPUTS.get(i * ob..(i + 1) * ob) == Some(&*out);
        exact += u32::from(same);
        if first {
            traced = counts;
        } else {
            total += counts;
        }
        defmt::println!(
            "PARE-SAMPLE {=u32} predicted={=u32} label={=u32} host={=u32} counts={=u64}",
            i as u32,
            pred,
            label,
            host,
            counts
        );
    }
    // The first sample carries per-layer tracing overhead; the mean is over the others, or is
    // the first sample's own count when it ran alone.
    let timed = (n as u64).saturating_sub(1).max(1);
    if n == 1 {
        total = traced;
    }
    defmt::println!(
        "PARE-RESULT samples={=u32} correct={=u32} agree={=u32} exact={=u32} counts_per_inference={=u64} unit={=str} per_count={=u32}",
        n as u32,
        correct,
        agree,
        exact,
        total / timed,
        clock_unit,
        per_count
    );
    if agree as usize == n && n > 0 {
        Outcome::Pass
    } else {
        Outcome::Disagree
    }
}

/// `[u32]` storage as the 4-byte-aligned byte arena the runtime needs.
pub fn as_bytes(words: &mut [u32]) -> &mut [u8] {
    bytemuck::cast_slice_mut(words)
}

/// Shows the outcome on a status LED forever: slow blink on pass, fast on failure. Written once
/// against embedded-hal 1.0 so every board's HAL plugs in.
pub fn indicate<P: embedded_hal::digital::OutputPin, D: embedded_hal::delay::DelayNs>(
    led: &mut P,
    delay: &mut D,
    outcome: Outcome,
) -> ! {
    let ms = if outcome == Outcome::Pass { 500 } else { 100 };
    loop {
        let _ = led.set_high();
        delay.delay_ms(ms);
        let _ = led.set_low();
        delay.delay_ms(ms);
    }
}

/// A 64-bit cycle clock over the 32-bit DWT counter (extended on every read; reads must come
/// less than 2^32 cycles apart, which one inference on these boards always is).
pub struct CycleClock {
    high: u64,
    last: u32,
}

impl CycleClock {
    /// Enables the DWT cycle counter.
    pub fn start(dcb: &mut cortex_m::peripheral::DCB, dwt: &mut cortex_m::peripheral::DWT) -> Self {
        dcb.enable_trace();
        cortex_m::peripheral::DWT::unlock();
        dwt.enable_cycle_counter();
        Self { high: 0, last: cortex_m::peripheral::DWT::cycle_count() }
    }

    pub fn now(&mut self) -> u64 {
        let c = cortex_m::peripheral::DWT::cycle_count();
        if c < self.last {
            self.high += 1 << 32;
        }
        self.last = c;
        self.high | u64::from(c)
    }
}
