//! The sample driver loaded in the host and streamed end to end: DriverEntry, device add and
//! start, a filter, a pin for each format it offers, connection, RUN, frames checked, STOP,
//! close, removal; with the session's leak and violation checks at the end.

extern crate ks_host;

use std::{
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use ks_allocator::framing::{FramingEx, FramingItem, FramingRange, MemoryType};
use ks_host::{
    Session,
    avstream::{Completed, Driver, Filter},
};
use ks_sample::{check, format};

/// A downstream pin that takes non-paged frames of any size, and does not allocate.
fn sink() -> FramingEx<1> {
    FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)
        .with_optimal_range(FramingRange::new(1, u32::MAX))])
}

/// What the consumer saw: each frame's number as read from its picture, or the problem.
type Seen = Arc<Mutex<Vec<Result<u32, String>>>>;

/// Streams `frames` frames in `format` from a new pin and returns what the consumer read.
fn stream(
    filter: &Filter<'_>,
    format: format::ImageFormat,
    frames: usize,
) -> Vec<Result<u32, String>> {
    let range = filter
        .data_ranges(0)
        .into_iter()
        .find(|bytes| format::parse_range(bytes).is_ok_and(|r| r == format))
        .expect("the pin offers the format");
    let chosen = filter.intersect(0, range).expect("intersection gives a format");
    assert_eq!(format::parse_format(&chosen), Ok(format));
    let pin = filter.create_pin(0, &chosen).expect("the pin is created");
    let seen: Seen = Arc::default();
    let (done, finished) = mpsc::channel();
    let record = Arc::clone(&seen);
    let plan = pin
        .connect(
            &sink().view(),
            Box::new(move |frame: &Completed| {
                let mut seen = record.lock().unwrap();
                seen.push(check::read_frame(&format, frame.data()).map_err(|e| e.to_string()));
                if seen.len() == frames {
                    let _ = done.send(());
                }
            }),
        )
        .expect("the pin connects");
    assert_eq!(plan.framing.frame_size as usize, format.image_size());
    assert!(pin.uses_own_allocator(), "the capture pin must allocate (MUST_ALLOCATE)");
    pin.set_state(ks_sys::KSSTATE_RUN).expect("the pin runs");
    finished.recv_timeout(Duration::from_secs(30)).expect("frames arrive");
    pin.set_state(ks_sys::KSSTATE_STOP).expect("the pin stops");
    assert_eq!(pin.queued(), 0, "STOP frees the queued frames");
    seen.lock().unwrap().clone()
}

#[test]
fn every_format_streams_checked_frames_and_unloads_clean() {
    let session = Session::begin();
    ks_host::ke::set_time_scale(20.0);
    // SAFETY: the sample's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(ks_sample::DriverEntry) }.expect("DriverEntry succeeds");
    let device = driver.add_device().expect("the device starts");
    assert_eq!(device.factories(), 1);
    assert_eq!(device.factory_reference(0).as_deref(), Some("GLOBAL"));
    {
        let filter = device.open_filter(0).expect("the filter opens");
        for format in format::FORMATS {
            let seen = stream(&filter, format, 12);
            assert!(seen.len() >= 12);
            let numbers: Vec<u32> = seen
                .iter()
                .map(|r| r.clone().unwrap_or_else(|e| panic!("{format}: bad frame: {e}")))
                .collect();
            assert!(
                numbers.windows(2).all(|w| w[0] < w[1]),
                "{format}: frame numbers rise: {numbers:?}"
            );
        }
    }
    drop(device);
    drop(driver);
    let stops = session
        .take_output()
        .into_iter()
        .filter(|record| record.text.contains("stopped after"))
        .count();
    assert_eq!(stops, format::FORMATS.len());
    ks_host::ke::set_time_scale(1.0);
}
