//! Reading a frame back, as a consumer would: the frame number from the barcode, and a check
//! that the bars and the block are where [`scene`] says they are. It reads pixels
//! through its own addressing and compares colours through [`scene::to_yuv`], so a renderer
//! that draws the wrong thing, in the wrong row order or format, fails it.

use core::fmt;

use crate::{
    format::{ImageFormat, Subtype},
    scene::{self, BARCODE_CELLS, BARCODE_ROWS, BARS, BLOCK_SIZE, Rgb, WHITE},
};

/// What is wrong with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameProblem {
    /// Fewer bytes than a frame.
    Short {
        /// Bytes given.
        len: usize,
        /// Bytes of a frame.
        needed: usize,
    },
    /// A barcode cell is neither black nor white.
    Barcode {
        /// The cell.
        cell: u32,
    },
    /// A pixel has the wrong colour.
    Pixel {
        /// Column.
        x: u32,
        /// Row, from the top of the picture.
        y: u32,
        /// What it should show.
        expected: Rgb,
    },
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Short { len, needed } => write!(f, "{len} bytes, a frame has {needed}"),
            Self::Barcode { cell } => write!(f, "barcode cell {cell} is neither black nor white"),
            Self::Pixel { x, y, expected } => write!(
                f,
                "pixel ({x}, {y}) is not rgb({}, {}, {})",
                expected.r, expected.g, expected.b
            ),
        }
    }
}

/// A pixel as stored: RGB, or the `(Y, U, V)` of a YUY2 pixel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stored {
    Rgb(Rgb),
    Yuv(u8, u8, u8),
}

#[expect(clippy::many_single_char_names, reason = "pixel coordinates and components")]
fn stored(format: &ImageFormat, data: &[u8], x: u32, y: u32) -> Option<Stored> {
    let stride = format.stride();
    match format.subtype {
        Subtype::Rgb24 => {
            let row = (format.height - 1 - y) as usize;
            let at = row * stride + x as usize * 3;
            let [b, g, r] = *data.get(at..at + 3)?.first_chunk::<3>()?;
            Some(Stored::Rgb(Rgb::new(r, g, b)))
        }
        Subtype::Yuy2 => {
            let at = y as usize * stride + (x as usize / 2) * 4;
            let [y0, u, y1, v] = *data.get(at..at + 4)?.first_chunk::<4>()?;
            Some(Stored::Yuv(if x.is_multiple_of(2) { y0 } else { y1 }, u, v))
        }
    }
}

/// Whether a stored pixel shows `expected` (exactly for RGB; luma and chroma within 2 for YUY2,
/// whose chroma is shared by a pixel pair).
fn shows(pixel: Stored, expected: Rgb, check_chroma: bool) -> bool {
    match pixel {
        Stored::Rgb(rgb) => rgb == expected,
        Stored::Yuv(y, u, v) => {
            let (ey, eu, ev) = scene::to_yuv(expected);
            y.abs_diff(ey) <= 2 && (!check_chroma || (u.abs_diff(eu) <= 2 && v.abs_diff(ev) <= 2))
        }
    }
}

/// The frame number a frame shows, after checking its barcode, its colour bars (just below the
/// barcode) and the block (at its centre).
///
/// # Errors
///
/// The first problem found.
pub fn read_frame(format: &ImageFormat, data: &[u8]) -> Result<u32, FrameProblem> {
    let needed = format.image_size();
    if data.len() < needed {
        return Err(FrameProblem::Short { len: data.len(), needed });
    }
    let cell_width = (format.width / BARCODE_CELLS).max(1);
    let mut number = 0u32;
    for cell in 0..BARCODE_CELLS {
        let (x, y) = (cell * cell_width + cell_width / 2, BARCODE_ROWS / 2);
        let pixel =
            stored(format, data, x, y).ok_or(FrameProblem::Short { len: data.len(), needed })?;
        let bit = if shows(pixel, WHITE, false) {
            1
        } else if shows(pixel, scene::BLACK, false) {
            0
        } else {
            return Err(FrameProblem::Barcode { cell });
        };
        number = number << 1 | bit;
    }
    let bar_width = format.width / 8;
    let y = BARCODE_ROWS + 2;
    for (index, expected) in (0u32..).zip(BARS) {
        // The centre of a pixel pair, so that YUY2 chroma belongs to this bar.
        let x = (index * bar_width + bar_width / 2) & !1;
        check_pixel(format, data, x, y, expected)?;
    }
    let (left, top) = (scene::block_left(format.width, number), scene::block_top(format.height));
    let centre = (left + BLOCK_SIZE / 2) & !1;
    check_pixel(format, data, centre, top + BLOCK_SIZE / 2, WHITE)?;
    Ok(number)
}

fn check_pixel(
    format: &ImageFormat,
    data: &[u8],
    x: u32,
    y: u32,
    expected: Rgb,
) -> Result<(), FrameProblem> {
    let pixel = stored(format, data, x, y);
    if pixel.is_some_and(|pixel| shows(pixel, expected, true)) {
        Ok(())
    } else {
        Err(FrameProblem::Pixel { x, y, expected })
    }
}
