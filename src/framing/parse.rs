//! Parsing untrusted extended-framing bytes into a borrowed view.

use core::fmt;

use super::{
    Compression, FramingExHeader, FramingItem,
    codec::{Reader, Writer},
};
use crate::{Error, Result};

/// Size of the `KSALLOCATOR_FRAMING_EX` header (the offset of `FramingItem[0]`).
pub const HEADER_LEN: usize = 24;
/// Size of one `KS_FRAMING_ITEM`.
pub const ITEM_LEN: usize = 88;
/// The largest `CountItems` whose size `24 + 88 * CountItems` fits the 32-bit lengths KS uses.
#[expect(clippy::cast_possible_truncation, reason = "the quotient is below u32::MAX")]
pub const MAX_ITEMS: u32 = ((u32::MAX as usize - HEADER_LEN) / ITEM_LEN) as u32;

/// The byte size of an extended framing with `count` items, `24 + 88 * count`, or `None` if it
/// does not fit a 32-bit length.
#[must_use]
pub const fn ex_len(count: u32) -> Option<u32> {
    // Both constants are small; the casts are exact.
    #[expect(clippy::cast_possible_truncation, reason = "ITEM_LEN and HEADER_LEN are small")]
    let (item, header) = (ITEM_LEN as u32, HEADER_LEN as u32);
    match count.checked_mul(item) {
        Some(items) => items.checked_add(header),
        None => None,
    }
}

/// Why bytes are not a `KSALLOCATOR_FRAMING_EX` (or a legacy `KSALLOCATOR_FRAMING`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// Fewer bytes than the fixed header (24 for either structure).
    TooShort {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// `CountItems` is 0: a framing needs at least one item.
    NoItems,
    /// `CountItems` is so large that `24 + 88 * CountItems` overflows a 32-bit length.
    TooManyItems {
        /// The count read.
        count: u32,
    },
    /// The buffer is shorter than `CountItems` requires.
    Truncated {
        /// The count read.
        count: u32,
        /// Bytes given.
        len: usize,
        /// Bytes needed, `24 + 88 * count`.
        needed: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len, needed } => {
                write!(f, "{len} bytes is shorter than the {needed}-byte header")
            }
            Self::NoItems => f.write_str("CountItems is 0: a framing needs at least one item"),
            Self::TooManyItems { count } => write!(
                f,
                "CountItems {count} overflows: 24 + 88 * {count} does not fit 32 bits (at most {MAX_ITEMS} items)"
            ),
            Self::Truncated { count, len, needed } => write!(
                f,
                "CountItems {count} needs {needed} bytes (24 + 88 * {count}) but the buffer holds {len}"
            ),
        }
    }
}

impl core::error::Error for ParseError {}

impl From<ParseError> for Error {
    /// Short buffers are `STATUS_BUFFER_TOO_SMALL`; a bad item count is
    /// `STATUS_INVALID_PARAMETER`.
    fn from(error: ParseError) -> Self {
        match error {
            ParseError::TooShort { .. } | ParseError::Truncated { .. } => Self::BUFFER_TOO_SMALL,
            ParseError::NoItems | ParseError::TooManyItems { .. } => Self::INVALID_PARAMETER,
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Items<'a> {
    /// Exactly `count * 88` encoded bytes.
    Bytes(&'a [u8]),
    /// Items already in memory.
    Owned(&'a [FramingItem]),
}

/// A structurally valid extended framing borrowed from bytes or from an owned
/// [`FramingEx`](super::FramingEx).
///
/// Structurally valid means the header is present, `CountItems` is at least 1 and its byte size
/// fits 32 bits, and every item is present. Whether the values make sense is the validator's
/// business ([`FramingExView::validate`]).
///
/// # Invariants
///
/// The item source holds exactly `header.count_items` items.
#[derive(Clone, Copy, Debug)]
pub struct FramingExView<'a> {
    header: FramingExHeader,
    items: Items<'a>,
    trailing: usize,
}

impl<'a> FramingExView<'a> {
    /// Parses untrusted bytes (a property payload, a file, a descriptor copy).
    ///
    /// Bytes beyond `24 + 88 * CountItems` are not part of the framing; their number is
    /// [`FramingExView::trailing_len`].
    ///
    /// # Errors
    ///
    /// A [`ParseError`] naming what is wrong: too short for the header, no items, an item count
    /// whose size overflows, or fewer bytes than the items need. No input panics or reads out of
    /// bounds.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn parse(bytes: &'a [u8]) -> core::result::Result<Self, ParseError> {
        let mut reader = Reader::new(bytes);
        let too_short = ParseError::TooShort { len: bytes.len(), needed: HEADER_LEN };
        let mut next = || reader.u32().ok_or(too_short);
        let header = FramingExHeader {
            count_items: next()?,
            pin_flags: next()?,
            output_compression: Compression {
                numerator: next()?,
                denominator: next()?,
                constant_margin: next()?,
            },
            pin_weight: next()?,
        };
        let count = header.count_items;
        if count == 0 {
            return Err(ParseError::NoItems);
        }
        let needed = ex_len(count).ok_or(ParseError::TooManyItems { count })? as usize;
        let body = bytes.get(HEADER_LEN..needed).ok_or(ParseError::Truncated {
            count,
            len: bytes.len(),
            needed,
        })?;
        // INVARIANT: `body` is exactly `count * ITEM_LEN` bytes.
        Ok(Self { header, items: Items::Bytes(body), trailing: bytes.len() - needed })
    }

    /// A view of items already in memory.
    pub(crate) fn from_items(header: FramingExHeader, items: &'a [FramingItem]) -> Self {
        debug_assert_eq!(header.count_items as usize, items.len());
        Self { header, items: Items::Owned(items), trailing: 0 }
    }

    /// A view of a `KSALLOCATOR_FRAMING_EX` in memory, such as the one a pin descriptor's
    /// `AllocatorFraming` points at, or `None` for NULL or an item count that is 0 or too large.
    ///
    /// # Safety
    ///
    /// `framing` is NULL or points at an initialised extended framing whose `24 + 88 *
    /// CountItems` bytes are readable and not written while the view lives.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub unsafe fn from_raw(framing: *const ks_sys::KSALLOCATOR_FRAMING_EX) -> Option<Self> {
        if framing.is_null() {
            return None;
        }
        // SAFETY: a non-NULL `framing` points at a readable header (the caller's contract).
        let count = unsafe { (*framing).CountItems };
        let len = ex_len(count)? as usize;
        // SAFETY: the caller guarantees `24 + 88 * CountItems` readable bytes, unchanged while
        // the view lives.
        let bytes = unsafe { core::slice::from_raw_parts(framing.cast::<u8>(), len) };
        Self::parse(bytes).ok()
    }

    /// A framing of any number of items built at run time (the reserved fields 0), or `None` for
    /// no items or more than [`MAX_ITEMS`].
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub fn from_parts(output_compression: Compression, items: &'a [FramingItem]) -> Option<Self> {
        let count_items =
            u32::try_from(items.len()).ok().filter(|n| (1..=MAX_ITEMS).contains(n))?;
        // INVARIANT: the item source holds exactly `count_items` items.
        Some(Self::from_items(
            FramingExHeader { count_items, pin_flags: 0, output_compression, pin_weight: 0 },
            items,
        ))
    }

    /// The header.
    #[must_use]
    pub const fn header(&self) -> FramingExHeader {
        self.header
    }

    /// `CountItems`, at least 1.
    #[must_use]
    pub const fn count(&self) -> usize {
        self.header.count_items as usize
    }

    /// `24 + 88 * CountItems`: the size of the framing, and of the property value that
    /// returns it.
    #[must_use]
    pub const fn byte_len(&self) -> usize {
        HEADER_LEN + ITEM_LEN * self.count()
    }

    /// Bytes after the framing in the parsed buffer.
    #[must_use]
    pub const fn trailing_len(&self) -> usize {
        self.trailing
    }

    /// Item `index`, or `None` past the last one.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub fn item(&self, index: usize) -> Option<FramingItem> {
        match self.items {
            Items::Owned(items) => items.get(index).copied(),
            Items::Bytes(bytes) => {
                let start = index.checked_mul(ITEM_LEN)?;
                let chunk = bytes.get(start..start.checked_add(ITEM_LEN)?)?;
                FramingItem::decode(&mut Reader::new(chunk))
            }
        }
    }

    /// The items in order.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn items(&self) -> impl Iterator<Item = FramingItem> + '_ {
        (0..self.count()).map_while(|index| self.item(index))
    }

    /// Writes the framing's `24 + 88 * CountItems` bytes into `out` and returns their number.
    ///
    /// # Errors
    ///
    /// [`Error::BUFFER_TOO_SMALL`] if `out` is shorter; `out` is then left unchanged.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize> {
        let len = self.byte_len();
        let target = out.get_mut(..len).ok_or(Error::BUFFER_TOO_SMALL)?;
        let mut writer = Writer::new(target);
        let header = self.header;
        let compression = header.output_compression;
        for value in [
            header.count_items,
            header.pin_flags,
            compression.numerator,
            compression.denominator,
            compression.constant_margin,
            header.pin_weight,
        ] {
            writer.u32(value).ok_or(Error::BUFFER_TOO_SMALL)?;
        }
        for item in self.items() {
            item.encode(&mut writer).ok_or(Error::BUFFER_TOO_SMALL)?;
        }
        Ok(len)
    }
}
