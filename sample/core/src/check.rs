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
    /// A cell of the overlay's stamp is neither black nor white.
    Stamp {
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
            Self::Stamp { cell } => {
                write!(f, "overlay stamp cell {cell} is neither black nor white")
            }
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
    read_frame_as(format, format, data)
}

/// A point of a picture drawn at `drawn`'s size, where a frame of `shown` (the same size, or
/// scaled) shows it.
fn place(drawn: &ImageFormat, shown: &ImageFormat, x: u32, y: u32) -> (u32, u32) {
    let scale = |v: u32, to: u32, from: u32| {
        #[expect(clippy::cast_possible_truncation, reason = "below `to`")]
        let placed = (u64::from(v) * u64::from(to) / u64::from(from.max(1))) as u32;
        placed
    };
    (scale(x, shown.width, drawn.width), scale(y, shown.height, drawn.height))
}

/// As [`read_frame`], for a picture drawn at `drawn`'s size and shown in a frame of `shown`
/// (scaled by the scaling transform): every point is looked for where the scaling put it.
///
/// # Errors
///
/// The first problem found.
pub fn read_frame_as(
    drawn: &ImageFormat,
    shown: &ImageFormat,
    data: &[u8],
) -> Result<u32, FrameProblem> {
    let needed = shown.image_size();
    if data.len() < needed {
        return Err(FrameProblem::Short { len: data.len(), needed });
    }
    let at = |x: u32, y: u32| place(drawn, shown, x, y);
    let number =
        read_cells(drawn, shown, data, BARCODE_ROWS / 2, |cell| FrameProblem::Barcode { cell })?;
    let bar_width = drawn.width / 8;
    for (index, expected) in (0u32..).zip(BARS) {
        // The centre of a pixel pair, so that YUY2 chroma belongs to this bar.
        let (x, y) = at(index * bar_width + bar_width / 2, BARCODE_ROWS + 2);
        check_pixel(shown, data, x & !1, y, expected)?;
    }
    let (left, top) = (scene::block_left(drawn.width, number), scene::block_top(drawn.height));
    let (x, y) = at(left + BLOCK_SIZE / 2, top + BLOCK_SIZE / 2);
    check_pixel(shown, data, x & !1, y, WHITE)?;
    Ok(number)
}

/// The time the overlay stamped on a frame (see [`scene`]), after checking its border, for a
/// picture the overlay marked at `drawn`'s size and shown in a frame of `shown`.
///
/// # Errors
///
/// The first problem found: a border pixel not in [`scene::MARK_COLOR`], a stamp cell neither
/// black nor white.
pub fn read_mark(
    drawn: &ImageFormat,
    shown: &ImageFormat,
    data: &[u8],
) -> Result<u32, FrameProblem> {
    let needed = shown.image_size();
    if data.len() < needed {
        return Err(FrameProblem::Short { len: data.len(), needed });
    }
    let at = |x: u32, y: u32| place(drawn, shown, x, y);
    let (width, height) = (drawn.width, drawn.height);
    for (x, y) in
        [(width / 2, 0), (width / 2, height - 1), (0, height / 2), (width - 1, height / 2)]
    {
        let (x, y) = at(x, y);
        check_pixel(shown, data, x, y, scene::MARK_COLOR)?;
    }
    let row = scene::stamp_top(height) + scene::STAMP_ROWS / 2;
    read_cells(drawn, shown, data, row, |cell| FrameProblem::Stamp { cell })
}

/// The number a row of [`BARCODE_CELLS`] black and white cells carries (most significant bit
/// first), drawn at `drawn`'s size across row `row` and shown in a frame of `shown`; `bad` names
/// a cell that is neither.
fn read_cells(
    drawn: &ImageFormat,
    shown: &ImageFormat,
    data: &[u8],
    row: u32,
    bad: impl Fn(u32) -> FrameProblem,
) -> Result<u32, FrameProblem> {
    let cell_width = (drawn.width / BARCODE_CELLS).max(1);
    let mut number = 0u32;
    for cell in 0..BARCODE_CELLS {
        let (x, y) = place(drawn, shown, cell * cell_width + cell_width / 2, row);
        let short = FrameProblem::Short { len: data.len(), needed: shown.image_size() };
        let pixel = stored(shown, data, x, y).ok_or(short)?;
        let bit = if shows(pixel, WHITE, false) {
            1
        } else if shows(pixel, scene::BLACK, false) {
            0
        } else {
            return Err(bad(cell));
        };
        number = number << 1 | bit;
    }
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
