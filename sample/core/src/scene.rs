//! What every frame shows, so that a consumer can check it without the renderer's code.
//!
//! From top to bottom of the picture (as a viewer sees it):
//!
//! - a **barcode** of [`BARCODE_ROWS`] rows: [`BARCODE_CELLS`] cells of equal width, the frame
//!   number most significant bit first, a set bit white ([`WHITE`]) and a clear bit black;
//! - **75% colour bars** (EIA-189-A) filling the rest: [`BARS`], each `width / 8` pixels wide;
//! - over the bars, a **block** of [`BLOCK_SIZE`] pixels square in [`WHITE`], its top at
//!   `height / 2 - BLOCK_SIZE / 2`, its left edge at `(frame * BLOCK_STEP) % (width -
//!   BLOCK_SIZE)`: it moves one step per frame;
//! - the frame number in decimal **digits**, [`DIGIT_SCALE`] times a 5x7 font, white on a black
//!   box, at the bottom left corner ([`DIGITS_MARGIN`] pixels in).
//!
//! The overlay transform marks each frame it passes, over the picture:
//!
//! - a **border** around the picture in [`MARK_COLOR`], [`MARK_BORDER_COLUMNS`] pixels wide at
//!   the sides and [`MARK_BORDER_ROWS`] rows at the top and bottom;
//! - a **stamp** of [`STAMP_ROWS`] rows ending at the bottom border: a barcode
//!   like the top one (cells `width / BARCODE_CELLS` wide) of the time the overlay saw the frame,
//!   in milliseconds of interrupt time (the low 32 bits).
//!
//! The scaling transform halves the picture in both directions, each pixel the average of the
//! 2x2 pixels it replaces, so that every element stays where [`crate::check`] looks for it, at
//! half the coordinates.
//!
//! Colours are 8-bit RGB; YUY2 frames carry them converted with the BT.601 studio-range
//! formulas of [`to_yuv`], the chroma of each pixel pair taken from its left pixel.

/// An 8-bit RGB colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb {
    /// Red.
    pub r: u8,
    /// Green.
    pub g: u8,
    /// Blue.
    pub b: u8,
}

impl Rgb {
    /// A colour from its components.
    #[must_use]
    pub const fn new(r: u8, g: u8, b: u8) -> Self {
        Self { r, g, b }
    }
}

/// 100% white: the barcode's set bits, the block and the digits.
pub const WHITE: Rgb = Rgb::new(255, 255, 255);
/// Black: the barcode's clear bits and the box behind the digits.
pub const BLACK: Rgb = Rgb::new(0, 0, 0);

/// The eight 75% colour bars, left to right: white, yellow, cyan, green, magenta, red, blue,
/// black.
pub const BARS: [Rgb; 8] = [
    Rgb::new(191, 191, 191),
    Rgb::new(191, 191, 0),
    Rgb::new(0, 191, 191),
    Rgb::new(0, 191, 0),
    Rgb::new(191, 0, 191),
    Rgb::new(191, 0, 0),
    Rgb::new(0, 0, 191),
    Rgb::new(0, 0, 0),
];

/// Rows of the barcode at the top of the picture.
pub const BARCODE_ROWS: u32 = 8;
/// Cells of the barcode: one per bit of the frame number.
pub const BARCODE_CELLS: u32 = 32;
/// Side of the moving block in pixels.
pub const BLOCK_SIZE: u32 = 32;
/// Pixels the block moves per frame.
pub const BLOCK_STEP: u32 = 4;
/// Scale of the 5x7 digit font.
pub const DIGIT_SCALE: u32 = 2;
/// Distance of the digit box from the left and bottom edges.
pub const DIGITS_MARGIN: u32 = 8;

/// The overlay's border and its width in pixels.
pub const MARK_COLOR: Rgb = Rgb::new(255, 0, 255);
/// Width of the overlay's left and right borders, in pixels: a multiple of 4, so that they are
/// whole YUY2 pixel pairs at their size and at half of it.
pub const MARK_BORDER_COLUMNS: u32 = 4;
/// Height of the overlay's top and bottom borders, in rows: 2, so that the top one leaves the
/// middle row of a halved barcode (4 rows) alone, and a halved border is a whole row.
pub const MARK_BORDER_ROWS: u32 = 2;
/// Rows of the overlay's stamp (even, so that a 2:1 scaling keeps whole rows of it).
pub const STAMP_ROWS: u32 = 4;

/// The first row of the overlay's stamp in a picture `height` pixels high.
#[must_use]
pub const fn stamp_top(height: u32) -> u32 {
    height.saturating_sub(MARK_BORDER_ROWS + STAMP_ROWS)
}

/// `(Y, U, V)` of an RGB colour: BT.601, studio range (Y 16..=235), integer arithmetic.
#[must_use]
pub const fn to_yuv(color: Rgb) -> (u8, u8, u8) {
    let (red, green, blue) = (color.r as i32, color.g as i32, color.b as i32);
    let luma = ((66 * red + 129 * green + 25 * blue + 128) >> 8) + 16;
    let cb = ((-38 * red - 74 * green + 112 * blue + 128) >> 8) + 128;
    let cr = ((112 * red - 94 * green - 18 * blue + 128) >> 8) + 128;
    // Each lies in 16..=240 for 8-bit inputs.
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "16..=240")]
    let yuv = (luma as u8, cb as u8, cr as u8);
    yuv
}

/// The left edge of the block in frame `frame` of a picture `width` pixels wide.
#[must_use]
pub const fn block_left(width: u32, frame: u32) -> u32 {
    let travel = width.saturating_sub(BLOCK_SIZE);
    if travel == 0 {
        return 0;
    }
    #[expect(clippy::cast_possible_truncation, reason = "a remainder below `travel`")]
    let left = ((frame as u64 * BLOCK_STEP as u64) % travel as u64) as u32;
    left
}

/// The top edge of the block in a picture `height` pixels high.
#[must_use]
pub const fn block_top(height: u32) -> u32 {
    (height / 2).saturating_sub(BLOCK_SIZE / 2)
}
