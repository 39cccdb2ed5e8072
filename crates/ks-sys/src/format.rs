//! Data formats, data ranges and the video format structures (`ks.h`, `ksmedia.h`).

use crate::{
    DWORD, GUID, HANDLE, LONG, LONGLONG, RECT, REFERENCE_TIME, SIZE, ULONG, WINBOOL, WORD,
};

ks_struct! {
    /// `KSDATAFORMAT`: header of every data format. `KSDATARANGE` has the same layout.
    ///
    /// In C it is a union with a `LONGLONG` that forces 8-byte alignment; modelled by
    /// `repr(align(8))`.
    #[repr(align(8))]
    pub struct KSDATAFORMAT (size 64, align 8) {
        /// Size of the whole format, this header included.
        pub FormatSize: ULONG => 0,
        /// `KSDATAFORMAT_*` flags.
        pub Flags: ULONG => 4,
        /// Fixed sample size, or 0.
        pub SampleSize: ULONG => 8,
        /// Reserved, 0.
        pub Reserved: ULONG => 12,
        /// Major type (`KSDATAFORMAT_TYPE_*`).
        pub MajorFormat: GUID => 16,
        /// Subtype (`KSDATAFORMAT_SUBTYPE_*`).
        pub SubFormat: GUID => 32,
        /// Specifier of what follows the header (`KSDATAFORMAT_SPECIFIER_*`).
        pub Specifier: GUID => 48,
    }
}
/// Pointer to a [`KSDATAFORMAT`].
pub type PKSDATAFORMAT = *mut KSDATAFORMAT;
/// `KSDATARANGE`: header of every data range.
pub type KSDATARANGE = KSDATAFORMAT;
/// Pointer to a [`KSDATARANGE`].
pub type PKSDATARANGE = *mut KSDATARANGE;

ks_struct! {
    /// `KSMULTIPLE_ITEM`: header of a variable-length list.
    pub struct KSMULTIPLE_ITEM (size 8, align 4) {
        /// Size of the whole list in bytes, this header included.
        pub Size: ULONG => 0,
        /// Number of items.
        pub Count: ULONG => 4,
    }
}
/// Pointer to a [`KSMULTIPLE_ITEM`].
pub type PKSMULTIPLE_ITEM = *mut KSMULTIPLE_ITEM;

ks_struct! {
    /// `KSPRIORITY`: connection priority.
    pub struct KSPRIORITY (size 8, align 4) {
        /// `KSPRIORITY_*` class.
        pub PriorityClass: ULONG => 0,
        /// Sub-class within the class.
        pub PrioritySubClass: ULONG => 4,
    }
}

ks_struct! {
    /// `KS_BITMAPINFOHEADER`: the bitmap header of a video format.
    pub struct KS_BITMAPINFOHEADER (size 40, align 4) {
        /// Size of this header, 40.
        pub biSize: DWORD => 0,
        /// Width in pixels.
        pub biWidth: LONG => 4,
        /// Height in pixels; negative for top-down images.
        pub biHeight: LONG => 8,
        /// Planes, 1.
        pub biPlanes: WORD => 12,
        /// Bits per pixel.
        pub biBitCount: WORD => 14,
        /// FourCC or `BI_RGB`.
        pub biCompression: DWORD => 16,
        /// Size of one image in bytes.
        pub biSizeImage: DWORD => 20,
        /// Horizontal resolution.
        pub biXPelsPerMeter: LONG => 24,
        /// Vertical resolution.
        pub biYPelsPerMeter: LONG => 28,
        /// Palette entries used.
        pub biClrUsed: DWORD => 32,
        /// Important palette entries.
        pub biClrImportant: DWORD => 36,
    }
}

ks_struct! {
    /// `KS_VIDEOINFOHEADER`: format block of `KSDATAFORMAT_SPECIFIER_VIDEOINFO`.
    pub struct KS_VIDEOINFOHEADER (size 88, align 8) {
        /// Source rectangle.
        pub rcSource: RECT => 0,
        /// Target rectangle.
        pub rcTarget: RECT => 16,
        /// Bit rate.
        pub dwBitRate: DWORD => 32,
        /// Bit error rate.
        pub dwBitErrorRate: DWORD => 36,
        /// Frame duration in 100 ns units.
        pub AvgTimePerFrame: REFERENCE_TIME => 40,
        /// The bitmap header.
        pub bmiHeader: KS_BITMAPINFOHEADER => 48,
    }
}

ks_struct! {
    /// `KS_VIDEO_STREAM_CONFIG_CAPS`: what a video data range can be configured to.
    pub struct KS_VIDEO_STREAM_CONFIG_CAPS (size 128, align 8) {
        /// Format type GUID.
        pub guid: GUID => 0,
        /// Analog video standards.
        pub VideoStandard: ULONG => 16,
        /// Input size.
        pub InputSize: SIZE => 20,
        /// Smallest cropping rectangle.
        pub MinCroppingSize: SIZE => 28,
        /// Largest cropping rectangle.
        pub MaxCroppingSize: SIZE => 36,
        /// Horizontal cropping granularity.
        pub CropGranularityX: i32 => 44,
        /// Vertical cropping granularity.
        pub CropGranularityY: i32 => 48,
        /// Horizontal cropping alignment.
        pub CropAlignX: i32 => 52,
        /// Vertical cropping alignment.
        pub CropAlignY: i32 => 56,
        /// Smallest output size.
        pub MinOutputSize: SIZE => 60,
        /// Largest output size.
        pub MaxOutputSize: SIZE => 68,
        /// Horizontal output granularity.
        pub OutputGranularityX: i32 => 76,
        /// Vertical output granularity.
        pub OutputGranularityY: i32 => 80,
        /// Horizontal stretch taps.
        pub StretchTapsX: i32 => 84,
        /// Vertical stretch taps.
        pub StretchTapsY: i32 => 88,
        /// Horizontal shrink taps.
        pub ShrinkTapsX: i32 => 92,
        /// Vertical shrink taps.
        pub ShrinkTapsY: i32 => 96,
        /// Shortest frame interval in 100 ns units.
        pub MinFrameInterval: LONGLONG => 104,
        /// Longest frame interval in 100 ns units.
        pub MaxFrameInterval: LONGLONG => 112,
        /// Lowest bit rate.
        pub MinBitsPerSecond: LONG => 120,
        /// Highest bit rate.
        pub MaxBitsPerSecond: LONG => 124,
    }
}

ks_struct! {
    /// `KS_DATARANGE_VIDEO`: a video data range with a `VIDEOINFOHEADER`.
    pub struct KS_DATARANGE_VIDEO (size 296, align 8) {
        /// The data range header.
        pub DataRange: KSDATARANGE => 0,
        /// All samples have the same size.
        pub bFixedSizeSamples: WINBOOL => 64,
        /// Some samples depend on others.
        pub bTemporalCompression: WINBOOL => 68,
        /// `KS_VIDEOSTREAM_*` flags.
        pub StreamDescriptionFlags: DWORD => 72,
        /// `KS_VIDEO_ALLOC_*` flags.
        pub MemoryAllocationFlags: DWORD => 76,
        /// Configuration capabilities.
        pub ConfigCaps: KS_VIDEO_STREAM_CONFIG_CAPS => 80,
        /// The default format.
        pub VideoInfoHeader: KS_VIDEOINFOHEADER => 208,
    }
}

ks_struct! {
    /// `KS_DATAFORMAT_VIDEOINFOHEADER`: a video format, what a video pin's `ConnectionFormat`
    /// points at.
    pub struct KS_DATAFORMAT_VIDEOINFOHEADER (size 152, align 8) {
        /// The format header (`FormatSize` is the size of this structure, or more when the
        /// video header carries a palette or bit masks).
        pub DataFormat: KSDATAFORMAT => 0,
        /// The video header.
        pub VideoInfoHeader: KS_VIDEOINFOHEADER => 64,
    }
}

ks_struct! {
    /// `KSATTRIBUTE`: the header of one attribute in the list that follows a data range or a
    /// format with `KSDATARANGE_ATTRIBUTES` / `KSDATAFORMAT_ATTRIBUTES`.
    pub struct KSATTRIBUTE (size 24, align 4) {
        /// Size of the attribute, this header included.
        pub Size: ULONG => 0,
        /// `KSATTRIBUTE_REQUIRED` or 0.
        pub Flags: ULONG => 4,
        /// What the attribute is.
        pub Attribute: GUID => 8,
    }
}

ks_struct! {
    /// `KS_FRAME_INFO` (`ksmedia.h`): the extended header of a video frame, after its
    /// `KSSTREAM_HEADER`, when the pin asked for one (`KSPIN.StreamHeaderSize`).
    pub struct KS_FRAME_INFO (size 72, align 8) {
        /// `sizeof(KS_FRAME_INFO)`.
        pub ExtendedHeaderSize: ULONG => 0,
        /// `KS_VIDEO_FLAG_*`.
        pub dwFrameFlags: DWORD => 4,
        /// Frames captured since the stream started.
        pub PictureNumber: LONGLONG => 8,
        /// Frames dropped since the stream started.
        pub DropCount: LONGLONG => 16,
        /// DirectDraw surface (unused here).
        pub hDirectDraw: HANDLE => 24,
        /// DirectDraw surface handle (unused here).
        pub hSurfaceHandle: HANDLE => 32,
        /// DirectDraw rectangle (unused here).
        pub DirectDrawRect: RECT => 40,
        /// Reserved.
        pub Reserved1: DWORD => 56,
        /// Reserved.
        pub Reserved2: DWORD => 60,
        /// Reserved.
        pub Reserved3: DWORD => 64,
        /// Reserved.
        pub Reserved4: DWORD => 68,
    }
}

ks_consts! {
    FORMAT_FLAGS, "A flag of `KSDATAFORMAT.Flags` / `KSDATARANGE.Flags`, or a video stream flag.";
    /// Bit number of `KSDATAFORMAT_TEMPORAL_COMPRESSION`.
    KSDATAFORMAT_BIT_TEMPORAL_COMPRESSION: ULONG = 0;
    /// Samples depend on each other.
    KSDATAFORMAT_TEMPORAL_COMPRESSION: ULONG = 1;
    /// Bit number of `KSDATAFORMAT_ATTRIBUTES`.
    KSDATAFORMAT_BIT_ATTRIBUTES: ULONG = 1;
    /// An attribute list follows the format.
    KSDATAFORMAT_ATTRIBUTES: ULONG = 2;
    /// Bit number of `KSDATARANGE_ATTRIBUTES`.
    KSDATARANGE_BIT_ATTRIBUTES: ULONG = 1;
    /// An attribute list follows the range.
    KSDATARANGE_ATTRIBUTES: ULONG = 2;
    /// Bit number of `KSDATARANGE_REQUIRED_ATTRIBUTES`.
    KSDATARANGE_BIT_REQUIRED_ATTRIBUTES: ULONG = 2;
    /// The attribute list is required.
    KSDATARANGE_REQUIRED_ATTRIBUTES: ULONG = 4;
    /// Preview stream.
    KS_VIDEOSTREAM_PREVIEW: ULONG = 0x0001;
    /// Capture stream.
    KS_VIDEOSTREAM_CAPTURE: ULONG = 0x0002;
    /// Still image stream.
    KS_VIDEOSTREAM_STILL: ULONG = 0x1000;
    /// `biCompression` of uncompressed RGB.
    KS_BI_RGB: DWORD = 0;
    /// `KSATTRIBUTE.Flags`: the attribute must be understood, or the range does not match.
    KSATTRIBUTE_REQUIRED: ULONG = 1;
    /// `KS_FRAME_INFO.dwFrameFlags`: a whole frame (not a field).
    KS_VIDEO_FLAG_FRAME: DWORD = 0;
    /// `KS_FRAME_INFO.dwFrameFlags`: field 1.
    KS_VIDEO_FLAG_FIELD1: DWORD = 1;
    /// `KS_FRAME_INFO.dwFrameFlags`: field 2.
    KS_VIDEO_FLAG_FIELD2: DWORD = 2;
}

ks_consts! {
    PRIORITY_CLASSES, "A `KSPRIORITY_*` priority class.";
    /// Lowest priority.
    KSPRIORITY_LOW: ULONG = 0x0000_0001;
    /// Normal priority.
    KSPRIORITY_NORMAL: ULONG = 0x4000_0000;
    /// High priority.
    KSPRIORITY_HIGH: ULONG = 0x8000_0000;
    /// Exclusive use.
    KSPRIORITY_EXCLUSIVE: ULONG = 0xFFFF_FFFF;
}
