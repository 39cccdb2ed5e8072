//! Formats and data ranges from clients: the pin's own round-trip, every refusal, and random
//! bytes that never panic and are only accepted as one of the offered formats.

use ks_sample_core::format::{
    FORMATS, FRAME_INTERVAL_30, FormatError, ImageFormat, MAX_FRAME_INTERVAL, MAX_STRIDE,
    MIN_FRAME_INTERVAL, Subtype, parse_format, parse_range,
};
use ks_sys::{KS_DATAFORMAT_VIDEOINFOHEADER, KS_DATARANGE_VIDEO};
use proptest::prelude::*;

fn bytes_of<T>(value: &T) -> Vec<u8> {
    // SAFETY: the KS video structures are plain data without padding (their layouts are
    // asserted in ks-sys), so all their bytes are initialised.
    unsafe { std::slice::from_raw_parts((&raw const *value).cast::<u8>(), size_of::<T>()) }.to_vec()
}

fn format_bytes(format: &ImageFormat) -> Vec<u8> {
    bytes_of(&format.to_raw())
}

#[test]
fn the_offered_formats_and_ranges_parse_as_themselves() {
    assert_eq!(size_of::<KS_DATAFORMAT_VIDEOINFOHEADER>(), 152);
    for format in FORMATS {
        assert_eq!(parse_format(&format_bytes(&format)), Ok(format), "{format}");
        assert_eq!(parse_range(&bytes_of(&format.data_range())), Ok(format), "{format}");
    }
    assert_eq!(FORMATS[3].image_size(), 640 * 480 * 3);
    assert_eq!(FORMATS[0].image_size(), 320 * 240 * 2);
}

#[test]
fn every_refusal_names_its_reason() {
    let good = ImageFormat::new(Subtype::Rgb24, 320, 240);
    let edit = |f: &dyn Fn(&mut KS_DATAFORMAT_VIDEOINFOHEADER)| {
        let mut raw = good.to_raw();
        f(&mut raw);
        bytes_of(&raw)
    };
    let cases: Vec<(Vec<u8>, FormatError)> = vec![
        (format_bytes(&good)[..151].to_vec(), FormatError::TooShort { len: 151, needed: 152 }),
        (
            edit(&|r| r.DataFormat.FormatSize = 200),
            FormatError::FormatSize { stated: 200, len: 152 },
        ),
        (edit(&|r| r.DataFormat.FormatSize = 64), FormatError::FormatSize { stated: 64, len: 152 }),
        (edit(&|r| r.DataFormat.MajorFormat = ks_sys::GUID_NULL), FormatError::NotVideoInfo),
        (edit(&|r| r.DataFormat.Specifier = ks_sys::GUID_NULL), FormatError::NotVideoInfo),
        (
            edit(&|r| r.DataFormat.SubFormat = ks_sys::KSDATAFORMAT_SUBTYPE_YUY2),
            FormatError::PixelFormat,
        ),
        (edit(&|r| r.DataFormat.SubFormat = ks_sys::GUID_NULL), FormatError::NotOffered),
        (edit(&|r| r.VideoInfoHeader.bmiHeader.biWidth = 321), FormatError::NotOffered),
        (edit(&|r| r.VideoInfoHeader.bmiHeader.biHeight = -240), FormatError::NotOffered),
        (edit(&|r| r.VideoInfoHeader.bmiHeader.biBitCount = 32), FormatError::PixelFormat),
        (edit(&|r| r.VideoInfoHeader.bmiHeader.biCompression = 3), FormatError::PixelFormat),
        (edit(&|r| r.VideoInfoHeader.bmiHeader.biPlanes = 2), FormatError::PixelFormat),
        (
            edit(&|r| r.VideoInfoHeader.bmiHeader.biSizeImage = 1000),
            FormatError::SizeImage { stated: 1000, needed: 230_400 },
        ),
        (
            edit(&|r| r.VideoInfoHeader.AvgTimePerFrame = 1),
            FormatError::FrameInterval { interval: 1 },
        ),
        (
            edit(&|r| r.VideoInfoHeader.AvgTimePerFrame = MIN_FRAME_INTERVAL - 1),
            FormatError::FrameInterval { interval: MIN_FRAME_INTERVAL - 1 },
        ),
        (
            edit(&|r| r.VideoInfoHeader.AvgTimePerFrame = MAX_FRAME_INTERVAL + 1),
            FormatError::FrameInterval { interval: MAX_FRAME_INTERVAL + 1 },
        ),
    ];
    for (bytes, error) in cases {
        assert_eq!(parse_format(&bytes), Err(error), "{error}");
    }
    // A larger biSizeImage, a slower frame rate and trailing bytes inside FormatSize are fine.
    let mut longer = edit(&|r| {
        r.VideoInfoHeader.bmiHeader.biSizeImage = 300_000;
        r.VideoInfoHeader.AvgTimePerFrame = 2 * FRAME_INTERVAL_30;
        r.DataFormat.FormatSize = 160;
    });
    longer.extend_from_slice(&[0; 8]);
    let parsed = parse_format(&longer).unwrap();
    assert_eq!((parsed.width, parsed.frame_interval), (320, 2 * FRAME_INTERVAL_30));
    assert_eq!(
        parse_range(&format_bytes(&good)),
        Err(FormatError::TooShort { len: 152, needed: 296 })
    );
    assert_eq!(size_of::<KS_DATARANGE_VIDEO>(), 296);
}

/// Review finding: a format at exactly 30.000 fps was refused, and the parser required biWidth
/// to be the picture's width, so a renderer's surface (a wider pitch, the picture in rcTarget)
/// failed the second SetDataFormat that "Data Range Intersections in AVStream" says not to fail.
#[test]
fn surfaces_and_any_interval_in_range_are_accepted() {
    let good = ImageFormat::new(Subtype::Rgb24, 320, 240);
    let edit = |f: &dyn Fn(&mut KS_DATAFORMAT_VIDEOINFOHEADER)| {
        let mut raw = good.to_raw();
        f(&mut raw);
        bytes_of(&raw)
    };
    // 30.000 fps, as Media Foundation asks for 30/1.
    let thirty = parse_format(&edit(&|r| r.VideoInfoHeader.AvgTimePerFrame = 333_333)).unwrap();
    assert_eq!(thirty.frame_interval, 333_333);
    // A surface 512 pixels wide holding the 320x240 picture: rows 1536 bytes apart.
    let surface = good.with_row_pixels(512);
    let parsed = parse_format(&format_bytes(&surface)).unwrap();
    assert_eq!(parsed, surface);
    assert_eq!((parsed.width, parsed.row_pixels, parsed.stride()), (320, 512, 1536));
    assert_eq!(parsed.image_size(), 1536 * 240);
    assert!(parsed.same_picture(&good));
    // Written by hand, as a renderer would: biWidth the pitch, rcTarget the picture.
    let by_hand = edit(&|r| {
        r.VideoInfoHeader.bmiHeader.biWidth = 512;
        r.VideoInfoHeader.rcTarget = ks_sys::RECT { left: 0, top: 0, right: 320, bottom: 240 };
        r.VideoInfoHeader.bmiHeader.biSizeImage = 1536 * 240;
    });
    assert_eq!(parse_format(&by_hand), Ok(surface));
    // Refused, each named: a picture not at the buffer's start, a pitch narrower than the
    // picture, one wider than MAX_STRIDE, and a biSizeImage that does not hold the pitch.
    let target = |left, top, right, bottom| ks_sys::RECT { left, top, right, bottom };
    for (row_pixels, rect, error) in [
        (
            512,
            target(8, 0, 328, 240),
            FormatError::Surface { row_pixels: 512, target: [8, 0, 328, 240] },
        ),
        (
            300,
            target(0, 0, 320, 240),
            FormatError::Surface { row_pixels: 300, target: [0, 0, 320, 240] },
        ),
        (
            2000,
            target(0, 0, 320, 240),
            FormatError::Surface { row_pixels: 2000, target: [0, 0, 320, 240] },
        ),
        (
            512,
            target(0, 0, 320, 120),
            FormatError::Surface { row_pixels: 512, target: [0, 0, 320, 120] },
        ),
    ] {
        let bytes = edit(&|r| {
            r.VideoInfoHeader.bmiHeader.biWidth = row_pixels;
            r.VideoInfoHeader.rcTarget = rect;
            r.VideoInfoHeader.bmiHeader.biSizeImage = 4_000_000;
        });
        assert_eq!(parse_format(&bytes), Err(error), "{error}");
    }
    let short = edit(&|r| {
        r.VideoInfoHeader.bmiHeader.biWidth = 512;
        r.VideoInfoHeader.rcTarget = target(0, 0, 320, 240);
    });
    assert_eq!(
        parse_format(&short),
        Err(FormatError::SizeImage { stated: 230_400, needed: 1536 * 240 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random bytes, lengths and mutations of good formats: no panic, and anything accepted is
    /// one of the offered formats with a biSizeImage that holds it.
    #[test]
    fn random_formats_are_parsed_safely(
        base in 0usize..4,
        edits in prop::collection::vec((0usize..300, any::<u8>()), 0..8),
        len in prop_oneof![Just(None), (0usize..400).prop_map(Some)],
        range in any::<bool>(),
    ) {
        let format = FORMATS[base];
        let mut bytes = if range { bytes_of(&format.data_range()) } else { format_bytes(&format) };
        for (at, value) in edits {
            if let Some(byte) = bytes.get_mut(at) {
                *byte = value;
            }
        }
        if let Some(len) = len {
            bytes.resize(len, 0);
        }
        let parsed = if range { parse_range(&bytes) } else { parse_format(&bytes) };
        if let Ok(parsed) = parsed {
            prop_assert!(FORMATS.iter().any(|f| f.subtype == parsed.subtype && f.width == parsed.width && f.height == parsed.height));
            prop_assert!((MIN_FRAME_INTERVAL..=MAX_FRAME_INTERVAL).contains(&parsed.frame_interval));
            prop_assert!(parsed.row_pixels >= parsed.width && parsed.stride() <= MAX_STRIDE);
        }
    }
}
