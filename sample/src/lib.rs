//! A sample AVStream capture minidriver in Rust, built on ks-allocator: the Rust counterpart of
//! the WDK's avshws ("AVStream simulated hardware") sample.
//!
//! One device, one filter (categories video, capture and video camera) with one capture pin
//! that produces YUY2 or RGB24 frames at 320x240 or 640x480, 30 frames per second, from
//! simulated hardware: a periodic kernel timer whose DPC asks AVStream to process the pin, which
//! draws the next frame ([`scene`]) into the next buffer in its queue, or counts a drop when
//! there is none.
//!
//! What it shows a driver author:
//!
//! - the pin's allocator framing declared with the library's `const` builders and resized with
//!   `KsEdit` to the frame size at pin creation and on a format change;
//! - the pin as the owner of its pipe's allocator (`MUST_ALLOCATE`): its
//!   `KSPIN_DISPATCH.Allocator` is the library's frame-pool allocator, within a budget sized for
//!   the largest format, so every frame it fills comes from the library's pool;
//! - the library's allocator property sets in the pin's automation table;
//! - untrusted formats and data ranges parsed from bytes, never cast ([`format`]).
//!
//! The same code builds as the Windows driver and as a library the user-mode host (ks-host)
//! loads: the only differences are the crate attributes. It uses only ks-sys and ks-allocator.

#![no_std]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod check;
pub mod format;
pub mod render;
pub mod scene;
