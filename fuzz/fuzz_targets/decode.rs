//! Arbitrary bytes as a model file: decode, validate, and run when valid.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.len() / 2;
    pare_device::fuzzing::exercise(&data[..split.max(data.len().min(16))], &data[split..]);
    let _ = pare_format::decode(data);
});
