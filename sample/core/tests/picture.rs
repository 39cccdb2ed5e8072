//! The synthesizer and the reader agree, for every format and many frame numbers, and the reader
//! catches a wrong picture: a wrong bar, a missing block, the wrong row order.

use ks_sample_core::{
    check::{FrameProblem, read_frame, read_frame_as, read_mark},
    format::{FORMATS, ImageFormat, Subtype},
    render::{mark, render, scale_half},
    scene::{self, BARCODE_ROWS},
};

fn frame(format: &ImageFormat, number: u32) -> Vec<u8> {
    let mut data = vec![0xEEu8; format.image_size()];
    assert_eq!(render(format, number, &mut data), Some(format.image_size()));
    data
}

#[test]
fn every_format_reads_back_its_frame_number() {
    for format in FORMATS {
        for number in [0, 1, 2, 29, 30, 255, 1000, 65_535, 1 << 20, u32::MAX] {
            let data = frame(&format, number);
            assert_eq!(read_frame(&format, &data), Ok(number), "{format} frame {number}");
        }
    }
}

#[test]
fn a_short_buffer_is_refused_and_left_untouched() {
    let format = FORMATS[0];
    let mut short = vec![7u8; format.image_size() - 1];
    assert_eq!(render(&format, 3, &mut short), None);
    assert!(short.iter().all(|b| *b == 7));
    assert_eq!(
        read_frame(&format, &short),
        Err(FrameProblem::Short { len: format.image_size() - 1, needed: format.image_size() })
    );
}

#[test]
fn rgb24_is_bottom_up_and_yuy2_top_down() {
    let rgb = ImageFormat::new(Subtype::Rgb24, 320, 240);
    let data = frame(&rgb, u32::MAX);
    // The barcode (all bits set: white) is at the top of the picture, so at the end of an RGB24
    // buffer and at the start of a YUY2 one.
    let last_row = &data[rgb.stride() * 239..];
    assert!(last_row.iter().all(|b| *b == 255), "the top row of a bottom-up image");
    let yuy2 = ImageFormat::new(Subtype::Yuy2, 320, 240);
    let data = frame(&yuy2, u32::MAX);
    let (white_y, white_u, _, white_v) = {
        let (y, u, v) = scene::to_yuv(scene::WHITE);
        (y, u, y, v)
    };
    assert_eq!(&data[..4], &[white_y, white_u, white_y, white_v]);
    // Reading one as the other fails.
    let flipped = frame(&rgb, 12345);
    let mut upside_down = vec![0u8; flipped.len()];
    for (row, chunk) in flipped.chunks(rgb.stride()).enumerate() {
        let target = (239 - row) * rgb.stride();
        upside_down[target..target + rgb.stride()].copy_from_slice(chunk);
    }
    assert!(read_frame(&rgb, &upside_down).is_err());
}

#[test]
fn a_wrong_bar_or_a_missing_block_is_caught() {
    let format = ImageFormat::new(Subtype::Rgb24, 640, 480);
    let number = 77;
    let mut data = frame(&format, number);
    // Paint the third bar's sample row black.
    let y = BARCODE_ROWS + 2;
    let row = (format.height - 1 - y) as usize * format.stride();
    let x = 2 * 80 + 40;
    data[row + x * 3..row + x * 3 + 3].copy_from_slice(&[0, 0, 0]);
    assert!(matches!(read_frame(&format, &data), Err(FrameProblem::Pixel { .. })));

    let mut data = frame(&format, number);
    let (left, top) = (scene::block_left(640, number), scene::block_top(480));
    let (cx, cy) = (left + 16, top + 16);
    let row = (format.height - 1 - cy) as usize * format.stride();
    data[row + cx as usize * 3..row + cx as usize * 3 + 3].copy_from_slice(&[191, 191, 191]);
    assert!(matches!(read_frame(&format, &data), Err(FrameProblem::Pixel { x, .. }) if x == cx));
}

#[test]
fn the_block_moves_one_step_per_frame_and_wraps() {
    assert_eq!(scene::block_left(320, 0), 0);
    assert_eq!(scene::block_left(320, 1), scene::BLOCK_STEP);
    let travel = 320 - scene::BLOCK_SIZE;
    assert_eq!(scene::block_left(320, travel / scene::BLOCK_STEP), 0, "it wraps");
    assert_eq!(scene::block_top(240), 120 - 16);
}

#[test]
fn colours_convert_to_studio_range_yuv() {
    assert_eq!(scene::to_yuv(scene::WHITE), (235, 128, 128));
    assert_eq!(scene::to_yuv(scene::BLACK), (16, 128, 128));
    // 75% red: the BT.601 values.
    assert_eq!(scene::to_yuv(scene::BARS[5]), (65, 100, 212));
}

/// What the simulated hardware does for each frame: the static picture, then the moving
/// regions drawn span by span over it, gives exactly the frame `render` draws, for every format
/// (odd pitches and odd region edges included) and frame numbers where the block wraps.
#[test]
fn the_static_picture_and_the_moving_spans_make_the_whole_frame() {
    use ks_sample_core::render::{moving_regions, render_span, render_static};
    let mut formats = FORMATS.to_vec();
    formats.push(FORMATS[0].with_row_pixels(FORMATS[0].width + 24));
    formats.push(FORMATS[3].with_row_pixels(FORMATS[3].width + 3));
    for format in formats {
        let mut base = vec![0xEEu8; format.image_size()];
        assert_eq!(render_static(&format, &mut base), Some(format.image_size()));
        for number in [0, 1, 7, 77, 150, 151, 1000, 123_456_789] {
            let mut data = base.clone();
            let mut span = vec![0u8; format.stride()];
            for region in moving_regions(&format, number) {
                for y in region.top..region.bottom {
                    let (at, len) =
                        render_span(&format, number, y, region.left, region.right, &mut span)
                            .expect("a span inside the picture");
                    data[at..at + len].copy_from_slice(&span[..len]);
                }
            }
            // The row padding of a pitch wider than the picture is zeros in the static picture.
            let mut expected = vec![0u8; format.image_size()];
            assert!(render(&format, number, &mut expected).is_some());
            assert!(data == expected, "{format} (stride {}) frame {number}", format.stride());
        }
    }
}

/// The formats the scaler takes, each with the one it makes.
fn halvings() -> Vec<(ImageFormat, ImageFormat)> {
    FORMATS
        .iter()
        .filter_map(|big| {
            let small = FORMATS.iter().find(|small| {
                small.subtype == big.subtype
                    && 2 * small.width == big.width
                    && 2 * small.height == big.height
            })?;
            Some((*big, *small))
        })
        .collect()
}

fn scaled(big: &ImageFormat, small: &ImageFormat, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x11u8; small.image_size()];
    assert_eq!(scale_half(big, data, small, &mut out), Some(small.image_size()));
    out
}

#[test]
fn the_overlay_s_mark_reads_back_and_keeps_the_picture_readable() {
    for format in FORMATS {
        for (number, seen) in [(0, 0), (7, 1), (1234, 0x8000_0001), (u32::MAX, u32::MAX)] {
            let mut data = frame(&format, number);
            assert_eq!(
                read_mark(&format, &format, &data).map(|_| ()),
                Err(FrameProblem::Pixel { x: format.width / 2, y: 0, expected: scene::MARK_COLOR }),
                "{format}: an unmarked frame has no border"
            );
            assert_eq!(mark(&format, &mut data, seen), Some(()));
            assert_eq!(read_mark(&format, &format, &data), Ok(seen), "{format} seen {seen}");
            assert_eq!(read_frame(&format, &data), Ok(number), "{format} frame {number}");
        }
        let mut short = vec![3u8; format.image_size() - 1];
        assert_eq!(mark(&format, &mut short, 1), None);
        assert!(short.iter().all(|b| *b == 3));
    }
}

#[test]
fn a_halved_frame_still_reads_back_where_the_scaling_put_it() {
    let pairs = halvings();
    assert_eq!(pairs.len(), 2, "YUY2 and RGB24 each at 640x480 and 320x240");
    for (big, small) in pairs {
        for number in [0, 1, 99, 4096, 1 << 20, u32::MAX - 1] {
            let small_frame = scaled(&big, &small, &frame(&big, number));
            assert_eq!(read_frame_as(&big, &small, &small_frame), Ok(number), "{big} -> {small}");
        }
    }
}

#[test]
fn marks_survive_scaling_in_either_order() {
    for (big, small) in halvings() {
        // Overlay, then scale: the mark drawn at the large size, read at half of it.
        let mut data = frame(&big, 321);
        mark(&big, &mut data, 0xA5A5_0F0F).unwrap();
        let out = scaled(&big, &small, &data);
        assert_eq!(read_mark(&big, &small, &out), Ok(0xA5A5_0F0F), "{big} marked, then scaled");
        assert_eq!(read_frame_as(&big, &small, &out), Ok(321));
        // Scale, then overlay: the mark drawn at the small size.
        let mut out = scaled(&big, &small, &frame(&big, 322));
        mark(&small, &mut out, 42).unwrap();
        assert_eq!(read_mark(&small, &small, &out), Ok(42), "{big} scaled, then marked");
        assert_eq!(read_frame_as(&big, &small, &out), Ok(322));
    }
}

#[test]
fn the_scaler_averages_each_2x2_block() {
    // RGB24: one input pixel per 2x2 block differs; the output pixel is the rounded mean.
    let big = ImageFormat::new(Subtype::Rgb24, 640, 480);
    let small = ImageFormat::new(Subtype::Rgb24, 320, 240);
    let mut data = vec![100u8; big.image_size()];
    data[0] = 103; // the blue of the first pixel of memory row 0
    let out = scaled(&big, &small, &data);
    assert_eq!(out[0], 101, "(103 + 100 + 100 + 100 + 2) / 4");
    assert!(out[1..small.image_size()].iter().all(|b| *b == 100));
    // YUY2: luma of each output pixel from its own two columns, chroma from both input pairs.
    let big = ImageFormat::new(Subtype::Yuy2, 640, 480);
    let small = ImageFormat::new(Subtype::Yuy2, 320, 240);
    let mut data = vec![0u8; big.image_size()];
    // Row 0: pairs [Y0 U Y1 V] = [10 20 30 40], [50 60 70 80]; row 1 the same plus 4.
    for (row, add) in [(0, 0u8), (1, 4)] {
        let at = row * big.stride();
        data[at..at + 8].copy_from_slice(&[10, 20, 30, 40, 50, 60, 70, 80].map(|b| b + add));
    }
    let out = scaled(&big, &small, &data);
    assert_eq!(
        &out[..4],
        &[22, 42, 62, 62],
        "Y (10,30), U (20,60), Y (50,70), V (40,80) with row 1"
    );
}

#[test]
fn the_scaler_refuses_what_is_not_a_halving() {
    let big = ImageFormat::new(Subtype::Rgb24, 640, 480);
    let small = ImageFormat::new(Subtype::Rgb24, 320, 240);
    let input = frame(&big, 5);
    let mut out = vec![9u8; small.image_size()];
    let other = ImageFormat::new(Subtype::Yuy2, 320, 240);
    assert_eq!(scale_half(&big, &input, &other, &mut out), None, "another subtype");
    assert_eq!(scale_half(&small, &input, &small, &mut out), None, "not half the size");
    assert_eq!(scale_half(&big, &input[1..], &small, &mut out), None, "a short input");
    assert_eq!(scale_half(&big, &input, &small, &mut out[1..]), None, "a short output");
    assert!(out.iter().all(|b| *b == 9), "the output is untouched");
}
