//! Stream headers and stream pointers (`ks.h`).

use crate::{KSPIN, LONGLONG, PUCHAR, PVOID, ULONG};

ks_struct! {
    /// `KSTIME`: a time with a rational scale.
    pub struct KSTIME (size 16, align 8) {
        /// The time value.
        pub Time: LONGLONG => 0,
        /// Scale numerator.
        pub Numerator: ULONG => 8,
        /// Scale denominator.
        pub Denominator: ULONG => 12,
    }
}

ks_struct! {
    /// `KSSTREAM_HEADER`: describes one frame travelling through a pin (x64 layout, with the
    /// trailing `Reserved` that x86 lacks).
    pub struct KSSTREAM_HEADER (size 56, align 8) {
        /// Size of this header plus any extended header.
        pub Size: ULONG => 0,
        /// Type-specific flags.
        pub TypeSpecificFlags: ULONG => 4,
        /// Presentation time.
        pub PresentationTime: KSTIME => 8,
        /// Duration.
        pub Duration: LONGLONG => 24,
        /// Usable size of the frame.
        pub FrameExtent: ULONG => 32,
        /// Valid bytes in the frame.
        pub DataUsed: ULONG => 36,
        /// The frame.
        pub Data: PVOID => 40,
        /// `KSSTREAM_HEADER_OPTIONSF_*`.
        pub OptionsFlags: ULONG => 48,
        /// Reserved, 0.
        pub Reserved: ULONG => 52,
    }
}
/// Pointer to a [`KSSTREAM_HEADER`].
pub type PKSSTREAM_HEADER = *mut KSSTREAM_HEADER;

ks_struct! {
    /// `KSMAPPING`: one scatter/gather element AVStream builds for a pin with
    /// `KSPIN_FLAG_GENERATE_MAPPINGS`: a bus address, a length, and the alignment the adapter
    /// gives it.
    ///
    /// `PhysicalAddress` is a `PHYSICAL_ADDRESS` in C (a `LARGE_INTEGER` union); it is its
    /// `QuadPart` here, the same 8 bytes.
    pub struct KSMAPPING (size 16, align 8) {
        /// The bus (logical) address the device writes (`PHYSICAL_ADDRESS.QuadPart`).
        pub PhysicalAddress: LONGLONG => 0,
        /// Bytes from there.
        pub ByteCount: ULONG => 8,
        /// The alignment of the address.
        pub Alignment: ULONG => 12,
    }
}
/// Pointer to a [`KSMAPPING`].
pub type PKSMAPPING = *mut KSMAPPING;

ks_struct! {
    /// `KSSTREAM_POINTER_OFFSET`: position within the input or output side of a frame.
    ///
    /// The C union `Data`/`Mappings` is modelled by `Data`: for a pin with
    /// `KSPIN_FLAG_GENERATE_MAPPINGS` it holds the current `KSMAPPING` (see
    /// [`KSSTREAM_POINTER_OFFSET::mappings`]), and `Count`/`Remaining` count mappings, not bytes.
    pub struct KSSTREAM_POINTER_OFFSET (size 16, align 8) {
        /// Current position (or the current mapping when mappings are generated).
        pub Data: PUCHAR => 0,
        /// Bytes (or mappings) in the frame.
        pub Count: ULONG => 8,
        /// Bytes (or mappings) left from the position.
        pub Remaining: ULONG => 12,
    }
}
/// Pointer to a [`KSSTREAM_POINTER_OFFSET`].
pub type PKSSTREAM_POINTER_OFFSET = *mut KSSTREAM_POINTER_OFFSET;

impl KSSTREAM_POINTER_OFFSET {
    /// The `Mappings` member of the C union: the current mapping, for a pin that has AVStream
    /// generate mappings.
    #[must_use]
    pub const fn mappings(&self) -> PKSMAPPING {
        self.Data.cast()
    }
}

ks_struct! {
    /// `KSSTREAM_POINTER`: a minidriver's handle on a frame in a pin's queue.
    pub struct KSSTREAM_POINTER (size 64, align 8) {
        /// Minidriver context of a clone.
        pub Context: PVOID => 0,
        /// The pin.
        pub Pin: *mut KSPIN => 8,
        /// The frame's stream header.
        pub StreamHeader: PKSSTREAM_HEADER => 16,
        /// `&OffsetIn` or `&OffsetOut`, whichever applies to the pin.
        pub Offset: PKSSTREAM_POINTER_OFFSET => 24,
        /// Input-side position.
        pub OffsetIn: KSSTREAM_POINTER_OFFSET => 32,
        /// Output-side position.
        pub OffsetOut: KSSTREAM_POINTER_OFFSET => 48,
    }
}
/// Pointer to a [`KSSTREAM_POINTER`].
pub type PKSSTREAM_POINTER = *mut KSSTREAM_POINTER;

/// `KSSTREAM_POINTER_STATE` (a C enum).
pub type KSSTREAM_POINTER_STATE = i32;

ks_consts! {
    STREAM_CONSTANTS_TABLE, "A stream-pointer state or a `KSSTREAM_HEADER_OPTIONSF_*` bit.";
    /// The stream pointer is unlocked.
    KSSTREAM_POINTER_STATE_UNLOCKED: KSSTREAM_POINTER_STATE = 0;
    /// The stream pointer is locked (its frame is accessible).
    KSSTREAM_POINTER_STATE_LOCKED: KSSTREAM_POINTER_STATE = 1;
    /// Splice point.
    KSSTREAM_HEADER_OPTIONSF_SPLICEPOINT: ULONG = 0x0000_0001;
    /// Preroll data.
    KSSTREAM_HEADER_OPTIONSF_PREROLL: ULONG = 0x0000_0002;
    /// Data discontinuity.
    KSSTREAM_HEADER_OPTIONSF_DATADISCONTINUITY: ULONG = 0x0000_0004;
    /// The format changed.
    KSSTREAM_HEADER_OPTIONSF_TYPECHANGED: ULONG = 0x0000_0008;
    /// `PresentationTime` is valid.
    KSSTREAM_HEADER_OPTIONSF_TIMEVALID: ULONG = 0x0000_0010;
    /// Time discontinuity.
    KSSTREAM_HEADER_OPTIONSF_TIMEDISCONTINUITY: ULONG = 0x0000_0040;
    /// Flush on pause.
    KSSTREAM_HEADER_OPTIONSF_FLUSHONPAUSE: ULONG = 0x0000_0080;
    /// `Duration` is valid.
    KSSTREAM_HEADER_OPTIONSF_DURATIONVALID: ULONG = 0x0000_0100;
    /// End of stream.
    KSSTREAM_HEADER_OPTIONSF_ENDOFSTREAM: ULONG = 0x0000_0200;
    /// Buffered transfer.
    KSSTREAM_HEADER_OPTIONSF_BUFFEREDTRANSFER: ULONG = 0x0000_0400;
    /// VRAM data transfer.
    KSSTREAM_HEADER_OPTIONSF_VRAM_DATA_TRANSFER: ULONG = 0x0000_0800;
    /// Looped data.
    KSSTREAM_HEADER_OPTIONSF_LOOPEDDATA: ULONG = 0x8000_0000;
}
