//! The legacy 24-byte framing (`KSALLOCATOR_FRAMING`).

use super::{
    OptionFlags, PoolType, RequirementFlags,
    codec::{Reader, Writer},
};
use crate::{Error, Result};

/// Size of a `KSALLOCATOR_FRAMING` in bytes.
pub const LEGACY_LEN: usize = 24;

/// A legacy framing (`KSALLOCATOR_FRAMING`), with the exact C layout.
///
/// The same 24 bytes travel in two roles: as an allocator create request (and so as what
/// `InitializeAllocator` receives), where the first word holds [`OptionFlags`], and as the value
/// of `KSPROPERTY_CONNECTION_ALLOCATORFRAMING`, where it holds [`RequirementFlags`]. The word is
/// kept raw in [`Framing::flags`]; [`Framing::options`] and [`Framing::requirements`] read it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Framing {
    /// `OptionsFlags` / `RequirementsFlags`, raw.
    pub flags: u32,
    /// Pool type of the frames.
    pub pool_type: PoolType,
    /// Allowable outstanding frames (0: no requirement or no cap).
    pub frames: u32,
    /// Frame size in bytes (0 is "no requirement" in a query, invalid in a request).
    pub frame_size: u32,
    /// Alignment mask, or the 2-D pitch.
    pub file_alignment: u32,
    /// Reserved, 0.
    pub reserved: u32,
}

const _: () = {
    use core::mem::offset_of;
    use ks_sys::KSALLOCATOR_FRAMING as Raw;
    assert!(size_of::<Framing>() == size_of::<Raw>() && size_of::<Raw>() == LEGACY_LEN);
    assert!(align_of::<Framing>() == align_of::<Raw>());
    assert!(offset_of!(Framing, flags) == offset_of!(Raw, OptionsFlags));
    assert!(offset_of!(Framing, pool_type) == offset_of!(Raw, PoolType));
    assert!(offset_of!(Framing, frames) == offset_of!(Raw, Frames));
    assert!(offset_of!(Framing, frame_size) == offset_of!(Raw, FrameSize));
    assert!(offset_of!(Framing, file_alignment) == offset_of!(Raw, FileAlignment));
    assert!(offset_of!(Framing, reserved) == offset_of!(Raw, Reserved));
};

impl Framing {
    /// An allocator create request (what `InitializeAllocator` receives).
    #[must_use]
    pub const fn request(
        options: OptionFlags,
        pool_type: PoolType,
        frames: u32,
        frame_size: u32,
        file_alignment: u32,
    ) -> Self {
        Self { flags: options.bits(), pool_type, frames, frame_size, file_alignment, reserved: 0 }
    }

    /// A legacy framing query reply (`KSPROPERTY_CONNECTION_ALLOCATORFRAMING`).
    #[must_use]
    pub const fn query(
        requirements: RequirementFlags,
        pool_type: PoolType,
        frames: u32,
        frame_size: u32,
        file_alignment: u32,
    ) -> Self {
        Self {
            flags: requirements.bits(),
            pool_type,
            frames,
            frame_size,
            file_alignment,
            reserved: 0,
        }
    }

    /// The legacy reply a pin with an extended framing gives for `item` (its preferred item):
    /// its requirement bits, paged pool for kernel paged memory and non-paged otherwise, its
    /// frame count, the smallest size of its optimal range, its alignment.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub fn from_item(item: &super::FramingItem) -> Self {
        let pool_type = if item.memory_type == super::MemoryType::KERNEL_PAGED {
            PoolType::PAGED
        } else {
            PoolType::NON_PAGED
        };
        Self::query(
            item.flags.requirements(),
            pool_type,
            item.frames,
            item.framing_range.range.min_frame_size,
            item.file_alignment,
        )
    }

    /// The first word read as create-request options (unknown bits retained).
    #[must_use]
    pub const fn options(&self) -> OptionFlags {
        OptionFlags::from_bits_retain(self.flags)
    }

    /// The first word read as query requirements (unknown bits retained).
    #[must_use]
    pub const fn requirements(&self) -> RequirementFlags {
        RequirementFlags::from_bits_retain(self.flags)
    }

    /// From the raw structure.
    #[must_use]
    pub const fn from_raw(raw: &ks_sys::KSALLOCATOR_FRAMING) -> Self {
        Self {
            flags: raw.OptionsFlags,
            pool_type: PoolType(raw.PoolType),
            frames: raw.Frames,
            frame_size: raw.FrameSize,
            file_alignment: raw.FileAlignment,
            reserved: raw.Reserved,
        }
    }

    /// To the raw structure.
    #[must_use]
    pub const fn to_raw(self) -> ks_sys::KSALLOCATOR_FRAMING {
        ks_sys::KSALLOCATOR_FRAMING {
            OptionsFlags: self.flags,
            PoolType: self.pool_type.0,
            Frames: self.frames,
            FrameSize: self.frame_size,
            FileAlignment: self.file_alignment,
            Reserved: self.reserved,
        }
    }

    /// Reads a framing from the first 24 bytes of `bytes` (untrusted input; bytes after the
    /// 24th are not read).
    ///
    /// # Errors
    ///
    /// [`ParseError::TooShort`](super::ParseError::TooShort) if fewer than 24 bytes are given.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn parse(bytes: &[u8]) -> core::result::Result<Self, super::ParseError> {
        let too_short = super::ParseError::TooShort { len: bytes.len(), needed: LEGACY_LEN };
        let mut reader = Reader::new(bytes);
        let mut next = || reader.u32().ok_or(too_short);
        Ok(Self {
            flags: next()?,
            pool_type: PoolType(next()?.cast_signed()),
            frames: next()?,
            frame_size: next()?,
            file_alignment: next()?,
            reserved: next()?,
        })
    }

    /// The 24 bytes of the structure.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub fn to_bytes(&self) -> [u8; LEGACY_LEN] {
        let mut out = [0; LEGACY_LEN];
        // The array is exactly LEGACY_LEN long, so the write cannot fall short.
        let _ = self.encode(&mut out);
        out
    }

    /// Writes the 24 bytes into `out` and returns 24.
    ///
    /// # Errors
    ///
    /// [`Error::BUFFER_TOO_SMALL`] if `out` is shorter than 24 bytes; `out` is then unchanged.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    pub fn encode(&self, out: &mut [u8]) -> Result<usize> {
        let target = out.get_mut(..LEGACY_LEN).ok_or(Error::BUFFER_TOO_SMALL)?;
        let mut writer = Writer::new(target);
        for value in [
            self.flags,
            self.pool_type.0.cast_unsigned(),
            self.frames,
            self.frame_size,
            self.file_alignment,
            self.reserved,
        ] {
            writer.u32(value).ok_or(Error::BUFFER_TOO_SMALL)?;
        }
        Ok(LEGACY_LEN)
    }
}
