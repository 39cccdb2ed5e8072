//! What a kernel review of the sample found, each checked end to end in the host: frame
//! timing and the headers frames carry, the format change a video capture pin may get before
//! RUN, the allocator properties answered by the class rather than the pin, leading edges that
//! fail to lock, and intersection requests shaped as real clients send them.

extern crate ks_host;

use std::{
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use ks_allocator::framing::{FramingEx, FramingExView, FramingItem, FramingRange, MemoryType};
use ks_host::{
    Session,
    avstream::{Completed, Driver, Filter, IntersectionRequest, Pin},
    property::Client,
};
use ks_sample_core::{
    check,
    format::{self, FORMATS, ImageFormat, Subtype},
};

/// A downstream pin that takes non-paged frames of any size, and does not allocate.
fn sink() -> FramingEx<1> {
    FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)
        .with_optimal_range(FramingRange::new(1, u32::MAX))])
}

fn bytes_of<T>(value: &T) -> Vec<u8> {
    // SAFETY: the KS video structures are plain data without padding (layouts asserted in
    // ks-sys), so all their bytes are initialised.
    unsafe { std::slice::from_raw_parts((&raw const *value).cast::<u8>(), size_of::<T>()) }.to_vec()
}

/// The pin's own data range for `format`.
fn range_of(filter: &Filter<'_>, format: ImageFormat) -> Vec<u8> {
    filter
        .data_ranges(0)
        .into_iter()
        .find(|bytes| format::parse_range(bytes).is_ok_and(|r| r == format))
        .expect("the pin offers the format")
        .to_vec()
}

/// Loads the sample, opens its filter and runs `body` with it.
fn with_filter(body: impl FnOnce(&Filter<'_>)) {
    // SAFETY: the sample's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(ks_sample_core::DriverEntry) }.unwrap();
    let device = driver.add_device().unwrap();
    let filter = device.open_filter(0).unwrap();
    body(&filter);
}

/// What a consumer keeps of each frame's header.
#[derive(Clone, Copy, Debug)]
struct Header {
    size: u32,
    time: i64,
    scale: (u32, u32),
    duration: i64,
    flags: u32,
    data_used: u32,
}

/// What a consumer keeps of each frame's `KS_FRAME_INFO`.
#[derive(Clone, Copy, Debug)]
struct Info {
    flags: u32,
    picture_number: i64,
    drop_count: i64,
}

/// What a consumer keeps of each frame.
#[derive(Clone, Copy, Debug)]
struct Seen {
    number: u32,
    header: Header,
    info: Option<Info>,
}

/// Connects `pin` to a sink that records every frame it reads correctly in `format`, and
/// signals after `frames` of them.
fn record(
    pin: &Pin<'_>,
    format: ImageFormat,
    frames: usize,
) -> (Arc<Mutex<Vec<Seen>>>, mpsc::Receiver<()>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let (done, finished) = mpsc::channel();
    let keep = Arc::clone(&seen);
    pin.connect(
        &sink().view(),
        Box::new(move |frame: &Completed| {
            if frame.header.DataUsed == 0 {
                return; // programmed but not yet written when the pin stopped: given back empty
            }
            let number = check::read_frame(&format, frame.data())
                .unwrap_or_else(|e| panic!("{format}: bad frame: {e}"));
            let mut seen = keep.lock().unwrap();
            let h = &frame.header;
            let header = Header {
                size: h.Size,
                time: h.PresentationTime.Time,
                scale: (h.PresentationTime.Numerator, h.PresentationTime.Denominator),
                duration: h.Duration,
                flags: h.OptionsFlags,
                data_used: h.DataUsed,
            };
            let info = frame.frame_info().map(|i| Info {
                flags: i.dwFrameFlags,
                picture_number: i.PictureNumber,
                drop_count: i.DropCount,
            });
            seen.push(Seen { number, header, info });
            if seen.len() == frames {
                let _ = done.send(());
            }
        }),
    )
    .unwrap();
    (seen, finished)
}

/// The number the driver's stop line reports: "... stopped after N frame times ...".
fn frame_times(output: &[ks_host::debug::DebugRecord]) -> u64 {
    let line = output.iter().find(|r| r.text.contains("stopped after")).expect("a stop line");
    let after = line.text.split("stopped after ").nth(1).unwrap();
    after.split_whitespace().next().unwrap().parse().unwrap()
}

/// Review finding 3: frames carried no presentation time and no `KS_FRAME_INFO`. Each frame now
/// has its time (its number of intervals from the start), its duration, both marked valid, and a
/// `KS_FRAME_INFO` with its picture number and the drops so far.
#[test]
fn frames_carry_their_time_and_frame_info() {
    let _session = Session::begin();
    ks_host::ke::set_time_scale(20.0);
    with_filter(|filter| {
        let format = FORMATS[0];
        let chosen = filter.intersect(0, &range_of(filter, format)).unwrap();
        let pin = filter.create_pin(0, &chosen).unwrap();
        let (seen, finished) = record(&pin, format, 20);
        pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
        finished.recv_timeout(Duration::from_secs(30)).expect("frames arrive");
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
        let seen = seen.lock().unwrap().clone();
        let valid = ks_sys::KSSTREAM_HEADER_OPTIONSF_TIMEVALID
            | ks_sys::KSSTREAM_HEADER_OPTIONSF_DURATIONVALID;
        for frame in &seen {
            let header = &frame.header;
            assert_eq!(header.flags & valid, valid, "{frame:?}");
            assert_eq!(header.duration, format::FRAME_INTERVAL_30);
            assert_eq!(header.time, i64::from(frame.number) * 333_667);
            assert_eq!(header.scale, (1, 1));
            let size = size_of::<ks_sys::KSSTREAM_HEADER>() + size_of::<ks_sys::KS_FRAME_INFO>();
            assert_eq!(header.size as usize, size, "the pin asked for the extended header");
            let info = frame.info.expect("a KS_FRAME_INFO");
            assert_eq!(info.flags, ks_sys::KS_VIDEO_FLAG_FRAME);
            assert_eq!(info.picture_number, i64::from(frame.number) + 1);
            assert!(info.drop_count >= 0 && info.drop_count <= info.picture_number);
        }
        // Times rise with the numbers.
        assert!(seen.windows(2).all(|w| w[0].header.time < w[1].header.time));
    });
    ks_host::ke::set_time_scale(1.0);
}

/// Review finding 3: the frame interrupt was a periodic timer truncated to whole milliseconds
/// (33 ms: 30.3 fps for an advertised 29.97). It is now re-armed at the start time plus a
/// whole number of intervals on the interrupt-time clock, so it never runs ahead of the clock:
/// after any run, the frame times counted are at most the time elapsed divided by the interval
/// (with 33 ms ticks, 100 frame times take 3.3 s where 100 intervals of 30.000 fps take 3.33 s).
#[test]
fn the_frame_interrupt_keeps_the_format_s_rate_exactly() {
    let session = Session::begin();
    ks_host::ke::set_time_scale(25.0);
    with_filter(|filter| {
        // 30.000 fps exactly (AvgTimePerFrame 333333, refused before the review).
        let format = FORMATS[1].with_frame_interval(333_333);
        let mut asked = FORMATS[1].data_range();
        asked.VideoInfoHeader.AvgTimePerFrame = 333_333;
        let chosen = filter.intersect(0, &bytes_of(&asked)).unwrap();
        assert_eq!(format::parse_format(&chosen), Ok(format));
        let pin = filter.create_pin(0, &chosen).unwrap();
        let (_seen, finished) = record(&pin, format, 100);
        let start = ks_host::ke::KeQueryUnbiasedInterruptTime();
        pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
        finished.recv_timeout(Duration::from_mins(1)).expect("frames arrive");
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
        let end = ks_host::ke::KeQueryUnbiasedInterruptTime();
        let ticks = frame_times(&session.take_output());
        assert!(ticks >= 100, "{ticks} frame times for 100 frames");
        assert!(
            ticks <= (end - start) / 333_333,
            "{ticks} frame times in {} intervals",
            (end - start) / 333_333
        );
    });
    ks_host::ke::set_time_scale(1.0);
}

/// Review finding 1: a second SetDataFormat just before RUN, with a renderer's surface
/// parameters (a row pitch wider than the picture), is taken, and frames are drawn at that
/// pitch; a change of picture out of STOP, or a pitch the allocator's frames cannot hold, is
/// refused and leaves the format as it was. While stopped, any offered format is taken and the
/// frames are resized.
#[test]
fn the_surface_format_before_run_is_taken_and_drawn_at_its_pitch() {
    let session = Session::begin();
    ks_host::ke::set_time_scale(20.0);
    with_filter(|filter| {
        let picture = FORMATS[0]; // yuy2 320x240
        let chosen = filter.intersect(0, &range_of(filter, picture)).unwrap();
        let pin = filter.create_pin(0, &chosen).unwrap();
        // Stopped: a wide surface (1024 bytes a row) resizes the frames.
        let wide = picture.with_row_pixels(512);
        pin.set_data_format(&bytes_of(&wide.to_raw())).unwrap();
        let framing = framing_of(&pin);
        assert_eq!(framing, 1024 * 240, "the frames hold the pitch");
        // Before RUN: a narrower surface still fits the allocator's frames: taken.
        let surface = picture.with_row_pixels(400);
        let (seen, finished) = record(&pin, surface, 10);
        pin.set_state(ks_sys::KSSTATE_PAUSE).unwrap();
        pin.set_data_format(&bytes_of(&surface.to_raw())).unwrap();
        assert_eq!(format::parse_format(&pin.connection_format()), Ok(surface));
        // Refused out of STOP, format unchanged: another picture, a pitch too wide for the frames.
        let offered_nowhere = ImageFormat::new(Subtype::Rgb24, 800, 600).to_raw();
        assert_eq!(pin.set_data_format(&bytes_of(&offered_nowhere)), Err(ks_sys::STATUS_NO_MATCH));
        let other = FORMATS[2].to_raw();
        assert_eq!(
            pin.set_data_format(&bytes_of(&other)),
            Err(ks_sys::STATUS_INVALID_DEVICE_STATE)
        );
        let other_size = FORMATS[1].to_raw();
        assert_eq!(
            pin.set_data_format(&bytes_of(&other_size)),
            Err(ks_sys::STATUS_INVALID_DEVICE_STATE)
        );
        let too_wide = picture.with_row_pixels(1024);
        assert_eq!(
            pin.set_data_format(&bytes_of(&too_wide.to_raw())),
            Err(ks_sys::STATUS_INVALID_DEVICE_STATE)
        );
        assert_eq!(format::parse_format(&pin.connection_format()), Ok(surface));
        pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
        finished.recv_timeout(Duration::from_secs(30)).expect("frames arrive");
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
        let seen = seen.lock().unwrap().clone();
        assert!(seen.iter().all(|frame| frame.header.data_used as usize == surface.image_size()));
    });
    let warnings: Vec<String> = session
        .take_output()
        .into_iter()
        .map(|record| record.text)
        .filter(|text| text.contains("refused while streaming"))
        .collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    ks_host::ke::set_time_scale(1.0);
}

/// The largest frame the pin's framing states (its one item's physical maximum).
fn framing_of(pin: &Pin<'_>) -> u32 {
    let mut value = vec![0u8; 256];
    let reply = pin.property(
        &property(
            &ks_sys::KSPROPSETID_Connection,
            ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
            ks_sys::KSPROPERTY_TYPE_GET,
        ),
        &mut value,
        Client::Native,
    );
    assert_eq!(reply.status, ks_sys::STATUS_SUCCESS);
    let view = FramingExView::parse(&value[..reply.information]).unwrap();
    view.item(0).unwrap().physical_range.max_frame_size
}

fn property(set: &ks_sys::GUID, id: u32, flags: u32) -> Vec<u8> {
    ks_host::property::request_bytes(set, id, flags)
}

/// Review finding 2: the pin no longer answers the allocator properties itself; AVStream (the
/// host, as the class) answers them: the framing from the pin's KsEdit copy, a NULL handle for
/// a get of the stream allocator, and a set only while stopped, the handle resolved and its
/// object referenced until the pin closes.
#[test]
fn the_class_answers_the_allocator_properties() {
    let _session = Session::begin();
    with_filter(|filter| {
        let picture = FORMATS[3];
        let chosen = filter.intersect(0, &range_of(filter, picture)).unwrap();
        let pin = filter.create_pin(0, &chosen).unwrap();
        assert_eq!(framing_of(&pin) as usize, picture.image_size());
        let get = property(
            &ks_sys::KSPROPSETID_Stream,
            ks_sys::KSPROPERTY_STREAM_ALLOCATOR,
            ks_sys::KSPROPERTY_TYPE_GET,
        );
        let mut handle = [0xAAu8; 8];
        let reply = pin.property(&get, &mut handle, Client::Native);
        assert_eq!((reply.status, reply.information, handle), (ks_sys::STATUS_SUCCESS, 8, [0; 8]));
        let allocator = ks_host::object::open_file();
        let set = property(
            &ks_sys::KSPROPSETID_Stream,
            ks_sys::KSPROPERTY_STREAM_ALLOCATOR,
            ks_sys::KSPROPERTY_TYPE_SET,
        );
        let reply = pin.property(&set, &mut allocator.to_le_bytes(), Client::Native);
        assert_eq!(reply.status, ks_sys::STATUS_SUCCESS);
        let object = ks_host::object::object_of(allocator).unwrap();
        assert_eq!(pin.assigned_allocator().map(std::ptr::NonNull::as_ptr), Some(object));
        assert_eq!(ks_host::object::driver_references(object), Some(1));
        pin.connect(&sink().view(), Box::new(|_: &Completed| {})).unwrap();
        pin.set_state(ks_sys::KSSTATE_PAUSE).unwrap();
        let reply = pin.property(&set, &mut [0u8; 8], Client::Native);
        assert_eq!(reply.status, ks_sys::STATUS_INVALID_DEVICE_STATE, "only while stopped");
        assert_eq!(pin.assigned_allocator().map(std::ptr::NonNull::as_ptr), Some(object));
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
        drop(pin);
        assert_eq!(ks_host::object::driver_references(object), Some(0), "released at close");
        ks_host::object::close(allocator);
    });
}

/// Review finding 8: leading edges always locked while frames were queued. With every third
/// lock failing (as AVStream's can, leaving the frame queued), the pin programs the frame at a
/// later attempt and goes on: frames in order, pictures right, every frame back, and every frame
/// time either a frame or a counted drop.
#[test]
fn leading_edges_that_fail_to_lock_are_drops_not_damage() {
    let session = Session::begin();
    ks_host::ke::set_time_scale(20.0);
    with_filter(|filter| {
        let format = FORMATS[2];
        let chosen = filter.intersect(0, &range_of(filter, format)).unwrap();
        let pin = filter.create_pin(0, &chosen).unwrap();
        let (seen, finished) = record(&pin, format, 20);
        ks_host::avstream::fail_leading_edge_locks(3);
        pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
        finished.recv_timeout(Duration::from_secs(30)).expect("frames arrive");
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
        assert!(ks_host::avstream::failed_leading_edge_locks() > 0);
        ks_host::avstream::fail_leading_edge_locks(0);
        let seen = seen.lock().unwrap().clone();
        assert!(seen.windows(2).all(|w| w[0].number < w[1].number));
        let last = seen.last().unwrap();
        let info = last.info.unwrap();
        // Every frame time either reached the sink or was counted as a drop.
        assert!(u64::try_from(info.picture_number - info.drop_count).unwrap() >= seen.len() as u64);
    });
    assert!(session.live().is_empty(), "{}", session.live());
    ks_host::ke::set_time_scale(1.0);
}

/// Review finding 8: intersection was only ever asked for the size first, with one client
/// range. Real clients also call with a buffer of the right size at once, with several ranges
/// (the first that matches wins), and with ranges that carry attributes (optional ones are
/// passed to the pin's handler, required ones the pin's ranges lack match nothing).
#[test]
fn intersection_answers_the_call_shapes_of_real_clients() {
    let _session = Session::begin();
    with_filter(|filter| {
        let rgb = range_of(filter, FORMATS[2]);
        let yuy2 = range_of(filter, FORMATS[1]);
        let size = size_of::<ks_sys::KS_DATAFORMAT_VIDEOINFOHEADER>();
        // A buffer of the right size at once.
        let mut format = vec![0u8; size];
        let reply = filter.data_intersection(
            0,
            IntersectionRequest::new().range(&rgb).as_bytes(),
            &mut format,
        );
        assert_eq!((reply.status, reply.information), (ks_sys::STATUS_SUCCESS, size));
        assert_eq!(format::parse_format(&format), Ok(FORMATS[2]));
        // A buffer too small, and none at all.
        let reply = filter.data_intersection(
            0,
            IntersectionRequest::new().range(&rgb).as_bytes(),
            &mut [0u8; 100],
        );
        assert_eq!((reply.status, reply.information), (ks_sys::STATUS_BUFFER_TOO_SMALL, size));
        let reply =
            filter.data_intersection(0, IntersectionRequest::new().range(&rgb).as_bytes(), &mut []);
        assert_eq!((reply.status, reply.information), (ks_sys::STATUS_BUFFER_OVERFLOW, size));
        // Several ranges: one the pin does not offer first, then YUY2 640x480, then RGB24.
        let other = ImageFormat::new(Subtype::Rgb24, 800, 600).data_range();
        let request = IntersectionRequest::new().range(&bytes_of(&other)).range(&yuy2).range(&rgb);
        let reply = filter.data_intersection(0, request.as_bytes(), &mut format);
        assert_eq!(reply.status, ks_sys::STATUS_SUCCESS);
        assert_eq!(format::parse_format(&format), Ok(FORMATS[1]), "the first range that matches");
        // Attributes: optional ones reach the handler, which ignores them.
        let attribute = ks_sys::KSDATAFORMAT_TYPE_VIDEO; // any GUID the pin does not know
        let optional = IntersectionRequest::new()
            .range_with_attributes(&rgb, &[(attribute, false, &[1, 2, 3, 4])]);
        let reply = filter.data_intersection(0, optional.as_bytes(), &mut format);
        assert_eq!(reply.status, ks_sys::STATUS_SUCCESS);
        assert_eq!(format::parse_format(&format), Ok(FORMATS[2]));
        // A required one the pin's ranges do not have: no match, unless another range follows.
        let required =
            IntersectionRequest::new().range_with_attributes(&rgb, &[(attribute, true, &[])]);
        let reply = filter.data_intersection(0, required.as_bytes(), &mut format);
        assert_eq!(reply.status, ks_sys::STATUS_NO_MATCH);
        let then_plain = required.range(&yuy2);
        let reply = filter.data_intersection(0, then_plain.as_bytes(), &mut format);
        assert_eq!(reply.status, ks_sys::STATUS_SUCCESS);
        assert_eq!(format::parse_format(&format), Ok(FORMATS[1]));
        // Malformed requests: a count the bytes do not hold, a range cut short.
        let mut bad = IntersectionRequest::new().range(&rgb).as_bytes().to_vec();
        bad[4] = 2;
        assert_eq!(
            filter.data_intersection(0, &bad, &mut format).status,
            ks_sys::STATUS_INVALID_PARAMETER
        );
        let whole = IntersectionRequest::new().range(&rgb);
        let cut = &whole.as_bytes()[..100];
        assert_eq!(
            filter.data_intersection(0, cut, &mut format).status,
            ks_sys::STATUS_INVALID_PARAMETER
        );
    });
}
