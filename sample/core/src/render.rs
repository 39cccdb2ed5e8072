//! The image synthesizer: draws the picture [`scene`] describes into a frame.
//!
//! Pure computation on the frame's bytes: it runs in the pin's process callback at
//! DISPATCH_LEVEL, so it allocates nothing and never panics (every write goes through `get_mut`).

use crate::{
    format::{ImageFormat, Subtype},
    scene::{
        self, BARCODE_CELLS, BARCODE_ROWS, BARS, BLACK, BLOCK_SIZE, DIGIT_SCALE, DIGITS_MARGIN,
        Rgb, WHITE,
    },
};

/// 5x7 glyphs of the digits 0 to 9, one row per byte, the leftmost pixel in bit 4.
const DIGITS: [[u8; 7]; 10] = [
    [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
    [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
    [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
    [0b11110, 0b00001, 0b00001, 0b01110, 0b00001, 0b00001, 0b11110],
    [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
    [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
    [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
    [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
    [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
    [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
];

/// Columns of a glyph cell: five for the glyph and one gap.
const CELL: u32 = 6;

/// The frame number's decimal digits, most significant first, and how many there are.
fn decimal(mut value: u32) -> ([u8; 10], usize) {
    let mut digits = [0u8; 10];
    let mut count = 0;
    loop {
        let digit = u8::try_from(value % 10).unwrap_or(0);
        if let Some(slot) = digits.get_mut(count) {
            *slot = digit;
        }
        count += 1;
        value /= 10;
        if value == 0 || count == digits.len() {
            break;
        }
    }
    digits.get_mut(..count).map(<[u8]>::reverse);
    (digits, count)
}

/// Everything that depends on the frame but not on the pixel.
struct Frame {
    width: u32,
    height: u32,
    number: u32,
    block_left: u32,
    block_top: u32,
    digits: [u8; 10],
    digit_count: u32,
    /// The digit box: left, top, right, bottom (exclusive).
    digit_box: (u32, u32, u32, u32),
}

impl Frame {
    fn new(format: &ImageFormat, number: u32) -> Self {
        let (width, height) = (format.width, format.height);
        let (digits, count) = decimal(number);
        #[expect(clippy::cast_possible_truncation, reason = "at most 10 digits")]
        let digit_count = count as u32;
        let box_width = (digit_count * CELL + 1) * DIGIT_SCALE;
        let box_height = 9 * DIGIT_SCALE;
        let left = DIGITS_MARGIN;
        let bottom = height.saturating_sub(DIGITS_MARGIN);
        Self {
            width,
            height,
            number,
            block_left: scene::block_left(width, number),
            block_top: scene::block_top(height),
            digits,
            digit_count,
            digit_box: (left, bottom.saturating_sub(box_height), left + box_width, bottom),
        }
    }

    /// The colour of pixel (`x`, `y`), `y` counted from the top of the picture.
    fn pixel(&self, x: u32, y: u32) -> Rgb {
        if y < BARCODE_ROWS {
            let cell = (x / (self.width / BARCODE_CELLS).max(1)).min(BARCODE_CELLS - 1);
            let bit = BARCODE_CELLS - 1 - cell;
            return if self.number >> bit & 1 == 1 { WHITE } else { BLACK };
        }
        let (left, top, right, bottom) = self.digit_box;
        if (left..right).contains(&x) && (top..bottom).contains(&y) {
            return self.digit_pixel(x - left, y - top);
        }
        if (self.block_left..self.block_left + BLOCK_SIZE).contains(&x)
            && (self.block_top..self.block_top + BLOCK_SIZE).contains(&y)
        {
            return WHITE;
        }
        self.bar(x)
    }

    /// The colour bar under column `x`.
    fn bar(&self, x: u32) -> Rgb {
        let bar = (x as usize * BARS.len()) / self.width.max(1) as usize;
        BARS.get(bar).copied().unwrap_or(BLACK)
    }

    /// A pixel of the digit box, relative to its top left corner.
    fn digit_pixel(&self, x: u32, y: u32) -> Rgb {
        let (column, row) = (x / DIGIT_SCALE, y / DIGIT_SCALE);
        // One cell of margin above and below, one column before the first glyph.
        let (Some(column), Some(row)) = (column.checked_sub(1), row.checked_sub(1)) else {
            return BLACK;
        };
        let (glyph, within) = (column / CELL, column % CELL);
        if glyph >= self.digit_count || within >= 5 || row >= 7 {
            return BLACK;
        }
        let digit = self.digits.get(glyph as usize).copied().unwrap_or(0);
        let bits = DIGITS.get(digit as usize).and_then(|g| g.get(row as usize)).copied();
        if bits.is_some_and(|bits| bits >> (4 - within) & 1 == 1) { WHITE } else { BLACK }
    }
}

/// Draws frame number `number` of `format` into `out`; returns the bytes written (the image
/// size), or `None`, with `out` untouched, if `out` is shorter than a frame.
///
/// # IRQL
///
/// Any (pure computation on `out`, which must be resident).
#[must_use]
pub fn render(format: &ImageFormat, number: u32, out: &mut [u8]) -> Option<usize> {
    let frame = Frame::new(format, number);
    draw(format, out, |x, y| frame.pixel(x, y))
}

/// Draws the picture every frame of `format` starts from: the colour bars everywhere (the
/// barcode, the digits and the block are drawn over them by [`render_span`]); returns the bytes
/// written (the image size, row padding included, as zeros), or `None` if `out` is shorter than
/// a frame.
///
/// # IRQL
///
/// Any (pure computation on `out`, which must be resident).
#[must_use]
pub fn render_static(format: &ImageFormat, out: &mut [u8]) -> Option<usize> {
    let frame = Frame::new(format, 0);
    let image = out.get_mut(..format.image_size())?;
    image.fill(0);
    draw(format, image, |x, _| frame.bar(x))
}

/// A rectangle of the picture: columns `left..right`, rows `top..bottom`, rows counted from the
/// top of the picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First column.
    pub left: u32,
    /// First row.
    pub top: u32,
    /// Column after the last.
    pub right: u32,
    /// Row after the last.
    pub bottom: u32,
}

/// Where frame `number` differs from [`render_static`]'s picture: the barcode rows, the digit
/// box and the block, clipped to the picture. Drawing these with [`render_span`] over the static
/// picture gives exactly [`render`]'s frame.
///
/// # IRQL
///
/// Any (pure computation).
#[must_use]
pub fn moving_regions(format: &ImageFormat, number: u32) -> [Region; 3] {
    let frame = Frame::new(format, number);
    let clip = |left: u32, top: u32, right: u32, bottom: u32| Region {
        left: left.min(frame.width),
        top: top.min(frame.height),
        right: right.min(frame.width),
        bottom: bottom.min(frame.height),
    };
    let (left, top, right, bottom) = frame.digit_box;
    [
        clip(0, 0, frame.width, BARCODE_ROWS),
        clip(left, top, right, bottom),
        clip(
            frame.block_left,
            frame.block_top,
            frame.block_left + BLOCK_SIZE,
            frame.block_top + BLOCK_SIZE,
        ),
    ]
}

/// Draws columns `left..right` of row `y` (from the top) of frame `number` into `out`, as the
/// frame stores them (a YUY2 span is widened to whole pixel pairs); returns where they go in the
/// frame (a byte offset) and how many bytes they are, or `None` if the span is outside the
/// picture or `out` is too short.
///
/// # IRQL
///
/// Any (pure computation on `out`, which must be resident).
#[must_use]
pub fn render_span(
    format: &ImageFormat,
    number: u32,
    y: u32,
    left: u32,
    right: u32,
    out: &mut [u8],
) -> Option<(usize, usize)> {
    let frame = Frame::new(format, number);
    let (left, right) = match format.subtype {
        Subtype::Rgb24 => (left, right.min(frame.width)),
        Subtype::Yuy2 => (left & !1, (right.saturating_add(1) & !1).min(frame.width & !1)),
    };
    if y >= frame.height || left >= right {
        return None;
    }
    let bytes_per_pixel = match format.subtype {
        Subtype::Rgb24 => 3,
        Subtype::Yuy2 => 2,
    };
    let len = (right - left) as usize * bytes_per_pixel;
    let span = out.get_mut(..len)?;
    draw_row(format, span, y, left, right, |x, y| frame.pixel(x, y));
    let memory_row = match format.subtype {
        Subtype::Yuy2 => y,
        Subtype::Rgb24 => frame.height - 1 - y,
    };
    Some((memory_row as usize * format.stride() + left as usize * bytes_per_pixel, len))
}

/// Draws a whole picture of `format` from `pixel` into `out`; returns the image size, or `None`
/// if `out` is shorter than a frame.
fn draw(format: &ImageFormat, out: &mut [u8], pixel: impl Fn(u32, u32) -> Rgb) -> Option<usize> {
    let size = format.image_size();
    let image = out.get_mut(..size)?;
    let (width, height) = (format.width, format.height);
    let stride = format.stride();
    for y in 0..height {
        // RGB24 is bottom-up: the picture's top row is the last in memory.
        let memory_row = match format.subtype {
            Subtype::Yuy2 => y,
            Subtype::Rgb24 => height - 1 - y,
        };
        let start = memory_row as usize * stride;
        let Some(row) = image.get_mut(start..start + stride) else { continue };
        draw_row(format, row, y, 0, width, &pixel);
    }
    Some(size)
}

/// Draws columns `left..right` of row `y` from `pixel` into `row` (which starts at column
/// `left`); a YUY2 span starts at an even column.
fn draw_row(
    format: &ImageFormat,
    row: &mut [u8],
    y: u32,
    left: u32,
    right: u32,
    pixel: impl Fn(u32, u32) -> Rgb,
) {
    match format.subtype {
        Subtype::Rgb24 => {
            for (x, bytes) in (left..right).zip(row.chunks_exact_mut(3)) {
                let color = pixel(x, y);
                bytes.copy_from_slice(&[color.b, color.g, color.r]);
            }
        }
        Subtype::Yuy2 => {
            for (pair, bytes) in (left / 2..right / 2).zip(row.chunks_exact_mut(4)) {
                let (y0, u, v) = scene::to_yuv(pixel(2 * pair, y));
                let (y1, _, _) = scene::to_yuv(pixel(2 * pair + 1, y));
                bytes.copy_from_slice(&[y0, u, y1, v]);
            }
        }
    }
}

/// Fills `region` (clipped to the picture; widened to whole pixel pairs in YUY2) with `color`;
/// `None`, with `out` untouched, if `out` is shorter than a frame.
///
/// # IRQL
///
/// Any (pure computation on `out`, which must be resident).
pub fn fill(format: &ImageFormat, out: &mut [u8], region: Region, color: Rgb) -> Option<()> {
    let image = out.get_mut(..format.image_size())?;
    let (left, right) = match format.subtype {
        Subtype::Rgb24 => (region.left, region.right.min(format.width)),
        Subtype::Yuy2 => {
            (region.left & !1, (region.right.saturating_add(1) & !1).min(format.width & !1))
        }
    };
    let bytes_per_pixel = match format.subtype {
        Subtype::Rgb24 => 3,
        Subtype::Yuy2 => 2,
    };
    let stride = format.stride();
    for y in region.top..region.bottom.min(format.height) {
        let memory_row = match format.subtype {
            Subtype::Yuy2 => y,
            Subtype::Rgb24 => format.height - 1 - y,
        };
        let start = memory_row as usize * stride + left as usize * bytes_per_pixel;
        let len = right.saturating_sub(left) as usize * bytes_per_pixel;
        let Some(span) = image.get_mut(start..start + len) else { continue };
        draw_row(format, span, y, left, right, |_, _| color);
    }
    Some(())
}

/// The overlay's mark (see [`scene`]): a border in [`scene::MARK_COLOR`] and a stamp of `seen`
/// (the time the overlay saw the frame) above the bottom border, drawn over the picture in
/// `out`; `None`, with `out` untouched, if `out` is shorter than a frame.
///
/// # IRQL
///
/// Any (pure computation on `out`, which must be resident).
pub fn mark(format: &ImageFormat, out: &mut [u8], seen: u32) -> Option<()> {
    if out.len() < format.image_size() {
        return None;
    }
    let (width, height) = (format.width, format.height);
    let cell_width = (width / BARCODE_CELLS).max(1);
    let top = scene::stamp_top(height);
    for cell in 0..BARCODE_CELLS {
        let bit = BARCODE_CELLS - 1 - cell;
        let color = if seen >> bit & 1 == 1 { WHITE } else { BLACK };
        let right = if cell == BARCODE_CELLS - 1 { width } else { (cell + 1) * cell_width };
        let region =
            Region { left: cell * cell_width, top, right, bottom: top + scene::STAMP_ROWS };
        fill(format, out, region, color)?;
    }
    let (rows, columns) = (scene::MARK_BORDER_ROWS, scene::MARK_BORDER_COLUMNS);
    for region in [
        Region { left: 0, top: 0, right: width, bottom: rows },
        Region { left: 0, top: height.saturating_sub(rows), right: width, bottom: height },
        Region { left: 0, top: 0, right: columns, bottom: height },
        Region { left: width.saturating_sub(columns), top: 0, right: width, bottom: height },
    ] {
        fill(format, out, region, scene::MARK_COLOR)?;
    }
    Some(())
}

/// Halves a picture in both directions: each pixel of `output` (in `out_format`) the rounded
/// average of the 2x2 pixels of `input` (in `in_format`) it replaces; YUY2 chroma the average of
/// the four pixel pairs' chroma under an output pair. Returns the bytes written (the output's
/// image size), or `None`, with `output` untouched, if the formats are not one subtype at
/// exactly half the size, or a buffer is shorter than its frame.
///
/// Both storage orders work alike: RGB24 is bottom-up, so the output's memory row `r` holds the
/// input's memory rows `2r` and `2r + 1` as YUY2's does.
///
/// # IRQL
///
/// Any (pure computation on both buffers, which must be resident).
#[must_use]
pub fn scale_half(
    in_format: &ImageFormat,
    input: &[u8],
    out_format: &ImageFormat,
    output: &mut [u8],
) -> Option<usize> {
    let halved = in_format.subtype as u8 == out_format.subtype as u8
        && in_format.width == 2 * out_format.width
        && in_format.height == 2 * out_format.height;
    let input = input.get(..in_format.image_size()).filter(|_| halved)?;
    let size = out_format.image_size();
    let output = output.get_mut(..size)?;
    let (in_stride, out_stride) = (in_format.stride(), out_format.stride());
    let avg = |a: u8, b: u8, c: u8, d: u8| {
        let sum = u16::from(a) + u16::from(b) + u16::from(c) + u16::from(d) + 2;
        #[expect(clippy::cast_possible_truncation, reason = "the average of four bytes")]
        let mean = (sum / 4) as u8;
        mean
    };
    // Bytes per output unit and the input bytes it is made of: an RGB24 pixel from two
    // pixels of each of two rows; a YUY2 pair (Y0 U Y1 V) from two pairs of each of two rows.
    let unit = match out_format.subtype {
        Subtype::Rgb24 => 3,
        Subtype::Yuy2 => 4,
    };
    let units = match out_format.subtype {
        Subtype::Rgb24 => out_format.width as usize,
        Subtype::Yuy2 => out_format.width as usize / 2,
    };
    for r in 0..out_format.height as usize {
        let upper = input.get(2 * r * in_stride..)?;
        let lower = input.get((2 * r + 1) * in_stride..)?;
        let out_row = output.get_mut(r * out_stride..r * out_stride + units * unit)?;
        for (u, out) in out_row.chunks_exact_mut(unit).enumerate() {
            let (a, b) = (upper.get(2 * u * unit..)?, lower.get(2 * u * unit..)?);
            let (a, b) = (a.get(..2 * unit)?, b.get(..2 * unit)?);
            // Both are `2 * unit` bytes long: every index below is in bounds.
            let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
            let four = |i: usize, j: usize| avg(at(a, i), at(a, j), at(b, i), at(b, j));
            match out_format.subtype {
                Subtype::Rgb24 => {
                    for (c, byte) in out.iter_mut().enumerate() {
                        *byte = four(c, c + 3);
                    }
                }
                Subtype::Yuy2 => {
                    // a = [Y0 U Y1 V Y2 U' Y3 V'] of the upper row, b of the lower.
                    for (byte, (i, j)) in out.iter_mut().zip([(0, 2), (1, 5), (4, 6), (3, 7)]) {
                        *byte = four(i, j);
                    }
                }
            }
        }
    }
    Some(size)
}
