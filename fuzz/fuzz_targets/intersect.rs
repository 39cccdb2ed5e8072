//! The sample driver's data intersection and pin creation (its `SetDataFormat` and the
//! allocator framing it sizes from the format) with arbitrary data ranges and formats: sizes,
//! strides, negative heights, bit counts, overflowing `biSizeImage`, wrong lengths.
//!
//! The input is one buffer given to both: the sample loaded in ks-host, its filter opened, the
//! buffer offered as the client's data range for intersection and as the pin's data format for
//! creation. Nothing may panic; a format the intersection produced must create a pin; the session
//! ends with no leak and no broken rule.

#![no_main]

use ks_host::{Session, avstream::Driver};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _host = Session::begin();
    // SAFETY: the sample's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(ks_sample_core::DriverEntry) }.expect("DriverEntry succeeds");
    let device = driver.add_device().expect("the device starts");
    let filter = device.open_filter(0).expect("the filter opens");
    if let Ok(format) = filter.intersect(0, data) {
        let pin = filter.create_pin(0, &format);
        assert!(pin.is_ok(), "a format the sample's intersection produced is refused: {:?}", pin.err());
    }
    let _ = filter.create_pin(0, data);
});
