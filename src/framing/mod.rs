//! Allocator framing: what a pin declares about the frames it wants.
//!
//! C headers: `ks.h` (`KSALLOCATOR_FRAMING`, `KSALLOCATOR_FRAMING_EX`, `KS_FRAMING_ITEM`,
//! `KS_FRAMING_RANGE(_WEIGHTED)`, `KS_COMPRESSION`, `DECLARE_SIMPLE_FRAMING_EX`).
//!
//! - [`FramingEx`] is an owned extended framing with `N` items, `const`-constructible so it can
//!   live in a `static` next to the pin descriptor; [`FramingEx::simple`] is
//!   `DECLARE_SIMPLE_FRAMING_EX`, and [`FramingItem`]'s `with_*` methods build anything else.
//! - [`Framing`] is the legacy 24-byte framing of allocator create requests and of the legacy
//!   property.
//! - [`FramingExView::parse`] and [`Framing::parse`] read untrusted bytes into a structurally
//!   valid view or a [`ParseError`].
//! - [`FramingExView::validate`] and [`Framing::validate`] report every [`Finding`], each naming
//!   the item and the field.
//!
//! Every type converts to and from its `ks_sys` counterpart (`from_raw`/`to_raw`), and the owned
//! types have the exact C layout, checked at compile time.
//!
//! Parsing, validation and encoding run inside the allocator and property callbacks, so nothing
//! here may panic: the lints below hold the module to that.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

mod codec;
mod ex;
mod flags;
mod legacy;
mod parse;
mod types;
mod validate;

pub use ex::{Compression, FramingEx, FramingExHeader, FramingItem, FramingRange, WeightedRange};
pub use flags::{ItemFlags, OptionFlags, RequirementFlags};
pub use legacy::{Framing, LEGACY_LEN};
pub use parse::{FramingExView, HEADER_LEN, ITEM_LEN, MAX_ITEMS, ParseError, ex_len};
pub use types::{BusType, Guid, MemoryType, PoolType};
/// A writer over `bytes` for the crate's own encoders.
pub(crate) fn codec_writer(bytes: &mut [u8]) -> codec::Writer<'_> {
    codec::Writer::new(bytes)
}

pub use validate::{
    Finding, KsValidateRejection, LegacyRole, MAX_ALIGNMENT_MASK, Problem, Severity, Summary,
};
