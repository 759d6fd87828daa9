//! Arbitrary bytes as a model's payload, framed with a correct header and CRC, so every
//! mutation reaches the decoder and validator instead of stopping at the checksum (`decode`
//! alone never gets past the CRC). The first quarter feeds the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.len() / 4;
    let file = pare_format::frame(&data[split..]);
    pare_device::fuzzing::exercise(&file, &data[..split]);
});
