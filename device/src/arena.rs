//! Disjoint views into the arena for one op: its inputs shared, its output exclusive. The
//! memory plan guarantees the output never overlaps an input live at the same step.

use crate::error::Error;

/// A byte range `[offset, offset + len)` of the arena.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub offset: usize,
    pub len: usize,
}

/// Splits the arena into `(inputs, output)`. `op` names the op in errors.
pub fn split<'x, const N: usize>(
    arena: &'x mut [u8],
    inputs: [Span; N],
    output: Span,
    op: u32,
) -> Result<([&'x [u8]; N], &'x mut [u8]), Error> {
    let bad = Error::Internal { op };
    let (left, rest) = arena.split_at_mut_checked(output.offset).ok_or(bad)?;
    let (out, right) = rest.split_at_mut_checked(output.len).ok_or(bad)?;
    let (left, right): (&'x [u8], &'x [u8]) = (left, right);
    let right_start = output.offset + output.len;
    let mut views: [&'x [u8]; N] = [&[]; N];
    for (view, span) in views.iter_mut().zip(inputs) {
        let end = span.offset.checked_add(span.len).ok_or(bad)?;
        *view = if end <= output.offset {
            left.get(span.offset..end).ok_or(bad)?
        } else if span.offset >= right_start {
            right.get(span.offset - right_start..end - right_start).ok_or(bad)?
        } else {
            return Err(bad);
        };
    }
    Ok((views, out))
}
