//! Little-endian readers and writers over byte buffers. They never panic: a read past the end
//! yields `None`, a write past the end reports that the buffer is too small.

use super::types::Guid;

/// Reads fields in order from a byte slice.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) const fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    pub(crate) fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*head))
    }

    pub(crate) fn guid(&mut self) -> Option<Guid> {
        let (head, rest) = self.0.split_first_chunk::<16>()?;
        self.0 = rest;
        Some(Guid::from_le_bytes(*head))
    }
}

/// Writes fields in order into a byte slice.
pub(crate) struct Writer<'a>(&'a mut [u8]);

impl<'a> Writer<'a> {
    pub(crate) const fn new(bytes: &'a mut [u8]) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes<const N: usize>(&mut self, value: [u8; N]) -> Option<()> {
        let (head, rest) = core::mem::take(&mut self.0).split_first_chunk_mut::<N>()?;
        *head = value;
        self.0 = rest;
        Some(())
    }

    pub(crate) fn u32(&mut self, value: u32) -> Option<()> {
        self.bytes(value.to_le_bytes())
    }

    pub(crate) fn guid(&mut self, value: Guid) -> Option<()> {
        self.bytes(value.to_le_bytes())
    }
}
