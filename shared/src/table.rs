//! Borrowed collections over the input bytes.
//!
//! [`Table`] holds fixed-size little-endian records with O(1) access and no alignment
//! requirement (every read goes through `from_le_bytes`), which is what weights, buffers and the
//! memory plan need. [`Seq`] holds postcard-encoded items of varying size, decoded one by one
//! while iterating, which is what the op list needs. Neither copies nor allocates.

use core::marker::PhantomData;
use serde::{Deserialize, Serialize};

/// A value with a fixed little-endian encoding of `SIZE` bytes.
pub trait Record: Sized {
    const SIZE: usize;
    /// Reads a record from exactly `SIZE` bytes.
    fn read(bytes: &[u8]) -> Self;
    /// Writes the record into exactly `SIZE` bytes.
    fn write(&self, out: &mut [u8]);
}

macro_rules! le_record {
    ($($t:ty),*) => {$(
        impl Record for $t {
            const SIZE: usize = core::mem::size_of::<$t>();
            fn read(bytes: &[u8]) -> Self {
                let mut raw = [0u8; core::mem::size_of::<$t>()];
                raw.copy_from_slice(bytes);
                <$t>::from_le_bytes(raw)
            }
            fn write(&self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_le_bytes());
            }
        }
    )*};
}
le_record!(u8, i8, u16, i16, u32, i32, u64, f32);

/// `len` fixed-size records stored back to back in `bytes`.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Table<'a, R> {
    len: u32,
    bytes: &'a [u8],
    #[serde(skip)]
    _record: PhantomData<R>,
}

impl<R> Clone for Table<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<R> Copy for Table<'_, R> {}

impl<R: Record + core::fmt::Debug> core::fmt::Debug for Table<'_, R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<R: Record + PartialEq> PartialEq for Table<'_, R> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.bytes == other.bytes
    }
}

impl<'a, R: Record + 'a> Table<'a, R> {
    /// Wraps bytes that hold `len` records. Consistency is checked by [`Table::is_consistent`].
    pub fn new(len: u32, bytes: &'a [u8]) -> Self {
        Self { len, bytes, _record: PhantomData }
    }

    /// The empty table.
    pub fn empty() -> Self {
        Self::new(0, &[])
    }

    /// Number of records the table claims to hold.
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The raw little-endian bytes (for kernels that read them in bulk).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// True when the byte length is exactly `len * SIZE`.
    pub fn is_consistent(&self) -> bool {
        (self.len as usize).checked_mul(R::SIZE) == Some(self.bytes.len())
    }

    /// Record `i`, or `None` past the end.
    pub fn get(&self, i: u32) -> Option<R> {
        if i >= self.len {
            return None;
        }
        let start = (i as usize).checked_mul(R::SIZE)?;
        let end = start.checked_add(R::SIZE)?;
        self.bytes.get(start..end).map(R::read)
    }

    pub fn iter(&self) -> impl Iterator<Item = R> + 'a {
        let len = if self.is_consistent() { self.len as usize } else { 0 };
        self.bytes.chunks_exact(R::SIZE).take(len).map(R::read)
    }

    /// Encodes records into bytes for [`Table::new`].
    #[cfg(feature = "alloc")]
    pub fn encode(records: &[R]) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec![0u8; records.len() * R::SIZE];
        for (chunk, r) in out.chunks_exact_mut(R::SIZE).zip(records) {
            r.write(chunk);
        }
        out
    }
}

/// `len` postcard-encoded items of type `T`, stored back to back and decoded on iteration.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Seq<'a, T> {
    len: u32,
    bytes: &'a [u8],
    #[serde(skip)]
    _item: PhantomData<T>,
}

impl<T> Clone for Seq<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Seq<'_, T> {}

impl<T> core::fmt::Debug for Seq<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Seq({} items, {} bytes)", self.len, self.bytes.len())
    }
}

impl<T> PartialEq for Seq<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.bytes == other.bytes
    }
}

impl<'a, T: Deserialize<'a>> Seq<'a, T> {
    pub fn new(len: u32, bytes: &'a [u8]) -> Self {
        Self { len, bytes, _item: PhantomData }
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Decodes items in order; a malformed item ends the iteration with `Err`.
    pub fn iter(&self) -> SeqIter<'a, T> {
        SeqIter { remaining: self.len, bytes: self.bytes, _item: PhantomData }
    }

    /// Item `i`, decoding the items before it (O(i)).
    pub fn get(&self, i: u32) -> Option<T> {
        self.iter().nth(i as usize).and_then(Result::ok)
    }

    /// True when exactly `len` items decode and consume every byte.
    pub fn is_consistent(&self) -> bool {
        let mut it = self.iter();
        for item in it.by_ref() {
            if item.is_err() {
                return false;
            }
        }
        it.bytes.is_empty()
    }

    /// Encodes items for [`Seq::new`].
    #[cfg(feature = "alloc")]
    pub fn encode<I: Serialize>(items: &[I]) -> Result<alloc::vec::Vec<u8>, postcard::Error> {
        let mut out = alloc::vec::Vec::new();
        for item in items {
            out.extend_from_slice(&postcard::to_allocvec(item)?);
        }
        Ok(out)
    }
}

/// Iterator over a [`Seq`].
pub struct SeqIter<'a, T> {
    remaining: u32,
    bytes: &'a [u8],
    _item: PhantomData<T>,
}

impl<'a, T: Deserialize<'a>> Iterator for SeqIter<'a, T> {
    type Item = Result<T, postcard::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        match postcard::take_from_bytes::<T>(self.bytes) {
            Ok((item, rest)) => {
                self.bytes = rest;
                Some(Ok(item))
            }
            Err(e) => {
                self.remaining = 0;
                Some(Err(e))
            }
        }
    }
}
