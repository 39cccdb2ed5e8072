//! The synthesizer and the reader agree, for every format and many frame numbers, and the reader
//! catches a wrong picture: a wrong bar, a missing block, the wrong row order.

use ks_sample_core::{
    check::{FrameProblem, read_frame},
    format::{FORMATS, ImageFormat, Subtype},
    render::render,
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
