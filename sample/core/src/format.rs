//! The pin's video formats: the four it offers, their data ranges, and the checks applied to a
//! format or a data range a client sends.
//!
//! A format arrives as a `KS_DATAFORMAT_VIDEOINFOHEADER` in `KSPIN.ConnectionFormat`, and a data
//! range in a data-intersection request; both can come from any process that opened the filter.
//! They are read here from bytes whose length was checked first ([`parse_format`],
//! [`parse_range`]), never cast.

use core::fmt;

use ks_allocator::framing::Guid;
use ks_sys::{
    KS_BITMAPINFOHEADER, KS_DATAFORMAT_VIDEOINFOHEADER, KS_DATARANGE_VIDEO,
    KS_VIDEO_STREAM_CONFIG_CAPS, KS_VIDEOINFOHEADER, KSDATAFORMAT, RECT, SIZE,
};

/// `biCompression` of YUY2: the FOURCC `'YUY2'`.
pub const FOURCC_YUY2: u32 = u32::from_le_bytes(*b"YUY2");

/// 30 frames per second in 100 ns units, as the WDK samples write it (29.97 fps): the
/// interval the ranges offer by default.
pub const FRAME_INTERVAL_30: i64 = 333_667;
/// The shortest frame interval the ranges allow: exactly 30.000 frames per second (what Media
/// Foundation asks for as 30/1). Any interval from here to [`MAX_FRAME_INTERVAL`] is accepted.
pub const MIN_FRAME_INTERVAL: i64 = 333_333;
/// The longest frame interval the ranges allow: one frame every 64 seconds.
pub const MAX_FRAME_INTERVAL: i64 = 640_000_000;
/// The widest row a format may ask for, in bytes: a renderer's surface pitch up to 4 KiB (the
/// widest image row is 640 x 3 = 1920 bytes).
pub const MAX_STRIDE: usize = 4096;

/// The pixel format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subtype {
    /// Packed YUV 4:2:2, `Y0 U Y1 V` per pixel pair, top-down.
    Yuy2,
    /// 24-bit RGB, `B G R` per pixel, rows padded to 4 bytes, bottom-up (`biHeight > 0`).
    Rgb24,
}

impl Subtype {
    /// `KSDATAFORMAT_SUBTYPE_*`.
    #[must_use]
    pub const fn guid(self) -> ks_sys::GUID {
        match self {
            Self::Yuy2 => ks_sys::KSDATAFORMAT_SUBTYPE_YUY2,
            Self::Rgb24 => ks_sys::KSDATAFORMAT_SUBTYPE_RGB24,
        }
    }

    /// `biBitCount`.
    #[must_use]
    pub const fn bit_count(self) -> u16 {
        match self {
            Self::Yuy2 => 16,
            Self::Rgb24 => 24,
        }
    }

    /// `biCompression`.
    #[must_use]
    pub const fn compression(self) -> u32 {
        match self {
            Self::Yuy2 => FOURCC_YUY2,
            Self::Rgb24 => ks_sys::KS_BI_RGB,
        }
    }

    /// `"yuy2"` or `"rgb24"`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Yuy2 => "yuy2",
            Self::Rgb24 => "rgb24",
        }
    }
}

/// A video format the pin produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageFormat {
    /// The pixel format.
    pub subtype: Subtype,
    /// Width of the picture in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixels from the start of one row to the next (`biWidth`): the width, or a wider surface
    /// pitch a renderer asked for (the picture then fills `rcTarget`, the rest of each row is
    /// left alone).
    pub row_pixels: u32,
    /// Frame interval in 100 ns units.
    pub frame_interval: i64,
}

impl ImageFormat {
    /// A format at 29.97 frames per second, rows as wide as the picture.
    #[must_use]
    pub const fn new(subtype: Subtype, width: u32, height: u32) -> Self {
        Self { subtype, width, height, row_pixels: width, frame_interval: FRAME_INTERVAL_30 }
    }

    /// The same format with rows `row_pixels` pixels apart (a surface pitch).
    #[must_use]
    pub const fn with_row_pixels(self, row_pixels: u32) -> Self {
        Self { row_pixels, ..self }
    }

    /// The same format at another frame interval.
    #[must_use]
    pub const fn with_frame_interval(self, frame_interval: i64) -> Self {
        Self { frame_interval, ..self }
    }

    /// Whether two formats show the same picture (subtype and size), whatever their pitch and
    /// frame rate.
    #[must_use]
    pub const fn same_picture(&self, other: &Self) -> bool {
        self.subtype as u8 == other.subtype as u8
            && self.width == other.width
            && self.height == other.height
    }

    /// Bytes from one row to the next: `row_pixels` pixels, padded to 4 bytes as DIB rows are.
    #[must_use]
    pub const fn stride(&self) -> usize {
        let bytes = self.row_pixels as usize * (self.subtype.bit_count() as usize / 8);
        (bytes + 3) & !3
    }

    /// `biSizeImage`: the bytes of one frame.
    #[must_use]
    pub const fn image_size(&self) -> usize {
        self.stride() * self.height as usize
    }

    /// The format as a `KS_DATAFORMAT_VIDEOINFOHEADER`.
    #[must_use]
    pub const fn to_raw(&self) -> KS_DATAFORMAT_VIDEOINFOHEADER {
        #[expect(clippy::cast_possible_truncation, reason = "152 bytes")]
        let format_size = size_of::<KS_DATAFORMAT_VIDEOINFOHEADER>() as u32;
        KS_DATAFORMAT_VIDEOINFOHEADER {
            DataFormat: self.data_format(format_size),
            VideoInfoHeader: self.video_info_header(),
        }
    }

    /// The `KSDATAFORMAT` that starts both the format and the range, `size` bytes in all.
    const fn data_format(&self, size: u32) -> KSDATAFORMAT {
        KSDATAFORMAT {
            FormatSize: size,
            Flags: 0,
            SampleSize: self.image_size_u32(),
            Reserved: 0,
            MajorFormat: ks_sys::KSDATAFORMAT_TYPE_VIDEO,
            SubFormat: self.subtype.guid(),
            Specifier: ks_sys::KSDATAFORMAT_SPECIFIER_VIDEOINFO,
        }
    }

    #[expect(clippy::cast_possible_truncation, reason = "at most 640 x 480 x 3 bytes")]
    const fn image_size_u32(&self) -> u32 {
        self.image_size() as u32
    }

    #[expect(
        clippy::cast_possible_wrap,
        clippy::cast_possible_truncation,
        reason = "at most 640 x 480; a 40-byte header"
    )]
    const fn video_info_header(&self) -> KS_VIDEOINFOHEADER {
        let empty = RECT { left: 0, top: 0, right: 0, bottom: 0 };
        // A pitch wider than the picture is stated as biWidth, with the picture in rcTarget.
        let target = if self.row_pixels == self.width {
            empty
        } else {
            RECT { left: 0, top: 0, right: self.width as i32, bottom: self.height as i32 }
        };
        let bits_per_second = self.image_size_u32() * 8 * 30;
        KS_VIDEOINFOHEADER {
            rcSource: empty,
            rcTarget: target,
            dwBitRate: bits_per_second,
            dwBitErrorRate: 0,
            AvgTimePerFrame: self.frame_interval,
            bmiHeader: KS_BITMAPINFOHEADER {
                biSize: size_of::<KS_BITMAPINFOHEADER>() as u32,
                biWidth: self.row_pixels as i32,
                biHeight: self.height as i32,
                biPlanes: 1,
                biBitCount: self.subtype.bit_count(),
                biCompression: self.subtype.compression(),
                biSizeImage: self.image_size_u32(),
                biXPelsPerMeter: 0,
                biYPelsPerMeter: 0,
                biClrUsed: 0,
                biClrImportant: 0,
            },
        }
    }

    /// The format's data range: one size, 29.97 fps down to one frame in 64 s.
    #[must_use]
    #[expect(clippy::cast_possible_wrap, reason = "at most 640 x 480")]
    pub const fn data_range(&self) -> KS_DATARANGE_VIDEO {
        let size = SIZE { cx: self.width as i32, cy: self.height as i32 };
        let header = self.video_info_header();
        #[expect(clippy::cast_possible_truncation, reason = "296 bytes")]
        let range_size = size_of::<KS_DATARANGE_VIDEO>() as u32;
        KS_DATARANGE_VIDEO {
            DataRange: self.data_format(range_size),
            bFixedSizeSamples: 1,
            bTemporalCompression: 0,
            StreamDescriptionFlags: ks_sys::KS_VIDEOSTREAM_CAPTURE,
            MemoryAllocationFlags: 0,
            ConfigCaps: KS_VIDEO_STREAM_CONFIG_CAPS {
                guid: ks_sys::KSDATAFORMAT_SPECIFIER_VIDEOINFO,
                VideoStandard: 0,
                InputSize: size,
                MinCroppingSize: size,
                MaxCroppingSize: size,
                CropGranularityX: 8,
                CropGranularityY: 1,
                CropAlignX: 8,
                CropAlignY: 1,
                MinOutputSize: size,
                MaxOutputSize: size,
                OutputGranularityX: 8,
                OutputGranularityY: 1,
                StretchTapsX: 0,
                StretchTapsY: 0,
                ShrinkTapsX: 0,
                ShrinkTapsY: 0,
                MinFrameInterval: MIN_FRAME_INTERVAL,
                MaxFrameInterval: MAX_FRAME_INTERVAL,
                MinBitsPerSecond: (header.dwBitRate / 30 / 64) as i32,
                MaxBitsPerSecond: header.dwBitRate as i32,
            },
            VideoInfoHeader: header,
        }
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}x{}", self.subtype.name(), self.width, self.height)
    }
}

/// The formats the pin offers, in the order of its data ranges (the first is the default).
pub const FORMATS: [ImageFormat; 4] = [
    ImageFormat::new(Subtype::Yuy2, 320, 240),
    ImageFormat::new(Subtype::Yuy2, 640, 480),
    ImageFormat::new(Subtype::Rgb24, 320, 240),
    ImageFormat::new(Subtype::Rgb24, 640, 480),
];

/// The largest frame of any format with rows as wide as the picture.
pub const MAX_IMAGE_SIZE: usize = {
    let mut largest = 0;
    let mut rest: &[ImageFormat] = &FORMATS;
    while let [format, tail @ ..] = rest {
        if format.image_size() > largest {
            largest = format.image_size();
        }
        rest = tail;
    }
    largest
};

/// The largest frame any accepted format needs: the tallest picture at [`MAX_STRIDE`]. The
/// allocator budget's frame size.
pub const MAX_FRAME_BYTES: usize = {
    let mut tallest = 0;
    let mut rest: &[ImageFormat] = &FORMATS;
    while let [format, tail @ ..] = rest {
        if format.height as usize > tallest {
            tallest = format.height as usize;
        }
        rest = tail;
    }
    tallest * MAX_STRIDE
};

/// Why a format or a data range is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatError {
    /// Fewer bytes than the structure.
    TooShort {
        /// Bytes given.
        len: usize,
        /// Bytes needed.
        needed: usize,
    },
    /// `FormatSize` says more bytes than there are, or fewer than the structure.
    FormatSize {
        /// `FormatSize`.
        stated: u32,
        /// Bytes given.
        len: usize,
    },
    /// Not `KSDATAFORMAT_TYPE_VIDEO` with `KSDATAFORMAT_SPECIFIER_VIDEOINFO`.
    NotVideoInfo,
    /// A subtype or a size the pin does not offer.
    NotOffered,
    /// `biBitCount`, `biCompression` or `biPlanes` do not fit the subtype.
    PixelFormat,
    /// `biSizeImage` smaller than the frame.
    SizeImage {
        /// `biSizeImage`.
        stated: u32,
        /// What the frame needs.
        needed: usize,
    },
    /// A frame interval outside the range's.
    FrameInterval {
        /// `AvgTimePerFrame`.
        interval: i64,
    },
    /// `rcTarget` is not empty and not the whole picture at the start of the buffer, or
    /// `biWidth` is narrower than the picture or wider than [`MAX_STRIDE`] allows.
    Surface {
        /// `biWidth`.
        row_pixels: i32,
        /// `rcTarget` as left, top, right, bottom.
        target: [i32; 4],
    },
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TooShort { len, needed } => write!(f, "{len} bytes, fewer than {needed}"),
            Self::FormatSize { stated, len } => {
                write!(f, "FormatSize {stated} does not fit the {len} bytes given")
            }
            Self::NotVideoInfo => f.write_str("not a VIDEOINFO video format"),
            Self::NotOffered => f.write_str("a subtype or size the pin does not offer"),
            Self::PixelFormat => {
                f.write_str("bit count, compression or planes wrong for the subtype")
            }
            Self::SizeImage { stated, needed } => {
                write!(f, "biSizeImage {stated} is smaller than the {needed} bytes of a frame")
            }
            Self::FrameInterval { interval } => {
                write!(f, "AvgTimePerFrame {interval} is outside the range")
            }
            Self::Surface { row_pixels, target: [left, top, right, bottom] } => write!(
                f,
                "a surface of biWidth {row_pixels} with rcTarget ({left}, {top}, {right}, \
                 {bottom}): the picture must fill rcTarget from the buffer's start, rows at most \
                 {MAX_STRIDE} bytes"
            ),
        }
    }
}

/// Little-endian fields at fixed offsets of a byte slice whose length was checked.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn bytes<const N: usize>(&self, offset: usize) -> [u8; N] {
        let mut out = [0; N];
        if let Some(field) = self.0.get(offset..offset + N) {
            out.copy_from_slice(field);
        }
        out
    }

    fn u16(&self, offset: usize) -> u16 {
        u16::from_le_bytes(self.bytes(offset))
    }

    fn u32(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.bytes(offset))
    }

    fn i32(&self, offset: usize) -> i32 {
        i32::from_le_bytes(self.bytes(offset))
    }

    fn i64(&self, offset: usize) -> i64 {
        i64::from_le_bytes(self.bytes(offset))
    }

    fn guid(&self, offset: usize) -> Guid {
        Guid::from_le_bytes(self.bytes(offset))
    }
}

/// Offsets in a `KSDATAFORMAT` / `KSDATARANGE`.
const FORMAT_SIZE: usize = 0;
const MAJOR_FORMAT: usize = 16;
const SUB_FORMAT: usize = 32;
const SPECIFIER: usize = 48;

/// What a video header must state: a format states everything; a range may leave
/// `biSizeImage` and `AvgTimePerFrame` at 0 ("any").
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Format,
    Range,
}

/// The video part of the format: the `KS_VIDEOINFOHEADER` starts at `header` bytes into it.
///
/// The picture's width is `rcTarget`'s when that is not empty, else `biWidth`; a format may
/// then have rows wider than the picture (`biWidth` pixels, a renderer's surface pitch), with
/// the picture at the start of the buffer (`rcTarget` from (0, 0)). A range states its size in
/// `biWidth` alone.
fn video(fields: &Fields<'_>, header: usize, kind: Kind) -> Result<ImageFormat, FormatError> {
    let major = fields.guid(MAJOR_FORMAT);
    let specifier = fields.guid(SPECIFIER);
    if major != Guid::from_raw(&ks_sys::KSDATAFORMAT_TYPE_VIDEO)
        || specifier != Guid::from_raw(&ks_sys::KSDATAFORMAT_SPECIFIER_VIDEOINFO)
    {
        return Err(FormatError::NotVideoInfo);
    }
    let sub = fields.guid(SUB_FORMAT);
    let bitmap = header + 48;
    let (row_pixels, height) = (fields.i32(bitmap + 4), fields.i32(bitmap + 8));
    let target = [
        fields.i32(header + 16),
        fields.i32(header + 20),
        fields.i32(header + 24),
        fields.i32(header + 28),
    ];
    let width = match target {
        _ if kind == Kind::Range => row_pixels,
        [0, 0, 0, 0] => row_pixels,
        [0, 0, right, bottom] if bottom == height && right > 0 => right,
        _ => return Err(FormatError::Surface { row_pixels, target }),
    };
    let format = FORMATS
        .iter()
        .find(|f| {
            Guid::from_raw(&f.subtype.guid()) == sub
                && i64::from(f.width) == i64::from(width)
                && i64::from(f.height) == i64::from(height)
        })
        .ok_or(FormatError::NotOffered)?;
    let (planes, bit_count) = (fields.u16(bitmap + 12), fields.u16(bitmap + 14));
    if planes != 1
        || bit_count != format.subtype.bit_count()
        || fields.u32(bitmap + 16) != format.subtype.compression()
    {
        return Err(FormatError::PixelFormat);
    }
    let surface = u32::try_from(row_pixels)
        .ok()
        .filter(|pixels| *pixels >= format.width)
        .map(|pixels| format.with_row_pixels(pixels))
        .filter(|surface| surface.stride() <= MAX_STRIDE)
        .ok_or(FormatError::Surface { row_pixels, target })?;
    let size_image = fields.u32(bitmap + 20);
    let any_size = kind == Kind::Range && size_image == 0;
    if !any_size && (size_image as usize) < surface.image_size() {
        return Err(FormatError::SizeImage { stated: size_image, needed: surface.image_size() });
    }
    let interval = match fields.i64(header + 40) {
        0 if kind == Kind::Range => format.frame_interval,
        interval if (MIN_FRAME_INTERVAL..=MAX_FRAME_INTERVAL).contains(&interval) => interval,
        interval => return Err(FormatError::FrameInterval { interval }),
    };
    Ok(surface.with_frame_interval(interval))
}

/// Reads `FormatSize` and checks it against the bytes given and the structure's size.
fn sized(bytes: &[u8], needed: usize) -> Result<Fields<'_>, FormatError> {
    if bytes.len() < needed {
        return Err(FormatError::TooShort { len: bytes.len(), needed });
    }
    let fields = Fields(bytes);
    let stated = fields.u32(FORMAT_SIZE);
    if (stated as usize) < needed || stated as usize > bytes.len() {
        return Err(FormatError::FormatSize { stated, len: bytes.len() });
    }
    Ok(fields)
}

/// Parses a `KS_DATAFORMAT_VIDEOINFOHEADER` (a connection format) and checks that it is one of
/// [`FORMATS`], possibly with wider rows (a surface pitch: `biWidth` pixels, the picture in
/// `rcTarget`), with a `biSizeImage` that holds a frame and a frame interval within the range
/// ([`MIN_FRAME_INTERVAL`] to [`MAX_FRAME_INTERVAL`]). The sign of `biHeight` must be the
/// range's (positive: RGB24 is bottom-up).
///
/// # Errors
///
/// The first check that fails.
pub fn parse_format(bytes: &[u8]) -> Result<ImageFormat, FormatError> {
    let fields = sized(bytes, size_of::<KS_DATAFORMAT_VIDEOINFOHEADER>())?;
    video(&fields, size_of::<KSDATAFORMAT>(), Kind::Format)
}

/// Parses a client's `KS_DATARANGE_VIDEO` (a data-intersection request): the video header it
/// carries must be one of [`FORMATS`], as for [`parse_format`], except that `biSizeImage` and
/// `AvgTimePerFrame` may be 0 ("any": the format's own values).
///
/// # Errors
///
/// The first check that fails.
pub fn parse_range(bytes: &[u8]) -> Result<ImageFormat, FormatError> {
    let fields = sized(bytes, size_of::<KS_DATARANGE_VIDEO>())?;
    video(&fields, core::mem::offset_of!(KS_DATARANGE_VIDEO, VideoInfoHeader), Kind::Range)
}
