//! The body of the fuzz targets (`fuzz/`), also run boundedly by the test suite: whatever the
//! bytes, decoding and running must return, never panic.

use crate::Runtime;

/// Decodes `bytes` as a model and, if it is valid and small, runs it on `input`.
pub fn exercise(bytes: &[u8], input: &[u8]) {
    let Ok(rt) = Runtime::from_bytes(bytes) else { return };
    let mut arena = [0u32; 16 * 1024];
    let arena: &mut [u8] = bytemuck::cast_slice_mut(&mut arena);
    let mut out = [0u8; 4096];
    let Some(out) = out.get_mut(..rt.output_bytes() as usize) else { return };
    let Some(arena) = arena.get_mut(..rt.arena_bytes() as usize) else { return };
    let n = rt.input_bytes() as usize;
    let mut raw = [0u8; 16 * 1024];
    if let Some(raw) = raw.get_mut(..n) {
        for (i, b) in raw.iter_mut().enumerate() {
            *b = input.get(i % input.len().max(1)).copied().unwrap_or(0);
        }
        let _ = rt.run(arena, raw, out);
    }
    let pixels = rt.model().input_buffer().and_then(|b| b.elements()).unwrap_or(0) as usize;
    if let Some(px) = raw.get(..pixels) {
        let _ = rt.run_pixels(arena, px, out);
    }
}
