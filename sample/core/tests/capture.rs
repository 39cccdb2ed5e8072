//! The sample driver loaded in the host and streamed end to end: DriverEntry, device add and
//! start (its DMA adapter and common buffer), a filter, a pin for each format it offers,
//! connection to a sink that takes device memory and to one that needs system memory, RUN,
//! frames written by DMA and checked, STOP, close, removal; with the session's leak and
//! violation checks at the end.

extern crate ks_host;

use std::{
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use ks_allocator::{
    framing::{FramingEx, FramingExView, FramingItem, FramingRange, MemoryType},
    tags,
};
use ks_host::{
    Session,
    avstream::{Completed, Driver, Filter, Pin},
};
use ks_sample_core::{check, format};

/// A kernel-mode downstream pin that takes frames of any memory type and size, and does not
/// allocate: the capture pin's device memory.
fn sink() -> FramingEx<1> {
    FramingEx::new([
        FramingItem::new(MemoryType::DONT_CARE).with_optimal_range(FramingRange::new(1, u32::MAX))
    ])
}

/// A downstream pin that needs non-paged system memory, of any size, and does not allocate.
fn system_sink() -> FramingEx<1> {
    FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)
        .with_optimal_range(FramingRange::new(1, u32::MAX))])
}

/// What the consumer saw: each frame's number as read from its picture, or the problem.
type Seen = Arc<Mutex<Vec<Result<u32, String>>>>;

/// The downstream side of a connection.
enum Downstream {
    /// A kernel-mode pin with this framing.
    Kernel(FramingEx<1>),
    /// A user-mode client reading with its own buffers.
    User,
}

/// Streams `frames` frames in `format` from a new pin connected to `downstream` and returns what
/// the consumer read.
fn stream(
    filter: &Filter<'_>,
    format: format::ImageFormat,
    frames: usize,
    downstream: &Downstream,
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
    let consumer = Box::new(move |frame: &Completed| {
        // Frames the pin gives back empty when it stops (programmed, not yet written) are not
        // pictures; one mid-stream would be followed by pictures and fail below.
        let mut seen = record.lock().unwrap();
        if frame.header.DataUsed == 0 {
            seen.push(Err("empty".to_owned()));
            return;
        }
        seen.push(check::read_frame(&format, frame.data()).map_err(|e| e.to_string()));
        if seen.len() == frames {
            let _ = done.send(());
        }
    });
    match downstream {
        Downstream::Kernel(sink) => {
            let plan = pin.connect(&sink.view(), consumer).expect("the pin connects");
            assert_eq!(plan.framing.frame_size as usize, format.image_size());
            if plan.upstream_item == 0 {
                assert!(pin.uses_own_allocator(), "device memory: the capture pin must allocate");
            }
        }
        Downstream::User => {
            let plan = pin.connect_client(consumer).expect("a client connects");
            assert_eq!((plan.item, plan.frame_size as usize), (1, format.image_size()));
            assert_eq!(pin.frame_source(), Some(ks_host::avstream::FrameSource::ClientBuffers));
        }
    }
    pin.set_state(ks_sys::KSSTATE_RUN).expect("the pin runs");
    finished.recv_timeout(Duration::from_secs(30)).expect("frames arrive");
    pin.set_state(ks_sys::KSSTATE_STOP).expect("the pin stops");
    assert_eq!(pin.queued(), 0, "STOP frees the queued frames");
    let mut seen = seen.lock().unwrap().clone();
    while seen.last().is_some_and(|frame| frame.as_ref().is_err_and(|e| e == "empty")) {
        seen.pop();
    }
    seen
}

#[test]
fn every_format_streams_checked_frames_and_unloads_clean() {
    let session = Session::begin();
    ks_host::ke::set_time_scale(20.0);
    // SAFETY: the sample's entry point; its descriptors are statics.
    let driver =
        unsafe { Driver::load(ks_sample_core::DriverEntry) }.expect("DriverEntry succeeds");
    let device = driver.add_device().expect("the device starts");
    // The capture filter, the overlay and the scaler, each with the reference string the INF
    // registers.
    assert_eq!(device.factories(), 3);
    assert_eq!(device.factory_reference(0).as_deref(), Some("GLOBAL"));
    assert_eq!(device.factory_reference(1).as_deref(), Some("Overlay"));
    assert_eq!(device.factory_reference(2).as_deref(), Some("Scale"));
    {
        let filter = device.open_filter(0).expect("the filter opens");
        // Device memory first (one contiguous block, one mapping, per frame), then system
        // memory (scattered pages, a mapping per page) from an allocator, then a user-mode
        // client's buffers (scattered too).
        for (downstream, device_memory) in [
            (Downstream::Kernel(sink()), true),
            (Downstream::Kernel(system_sink()), false),
            (Downstream::User, false),
        ] {
            for format in format::FORMATS {
                let before = ks_host::dma::stats();
                let seen = stream(&filter, format, 12, &downstream);
                assert!(seen.len() >= 12);
                let numbers: Vec<u32> = seen
                    .iter()
                    .map(|r| r.clone().unwrap_or_else(|e| panic!("{format}: bad frame: {e}")))
                    .collect();
                assert!(
                    numbers.windows(2).all(|w| w[0] < w[1]),
                    "{format}: frame numbers rise: {numbers:?}"
                );
                let after = ks_host::dma::stats();
                assert_eq!(after.violations, 0);
                let written = after.bytes_written - before.bytes_written;
                assert!(written >= 12 * format.image_size() as u64, "{format}: {written}");
            }
            let most = ks_host::dma::stats().max_mappings_per_set;
            if device_memory {
                assert_eq!(most, 1, "a device-memory frame is one mapping");
            } else {
                assert!(most > 1, "system memory is scattered: {most}");
            }
        }
    }
    drop(device);
    drop(driver);
    let stops = session
        .take_output()
        .into_iter()
        .filter(|record| record.text.contains("stopped after"))
        .count();
    assert_eq!(stops, 3 * format::FORMATS.len());
    ks_host::ke::set_time_scale(1.0);
}

/// A format's bytes as the pin's intersection gives them.
fn format_bytes(filter: &Filter<'_>, format: format::ImageFormat) -> Vec<u8> {
    let range = filter
        .data_ranges(0)
        .into_iter()
        .find(|bytes| format::parse_range(bytes).is_ok_and(|r| r == format))
        .unwrap();
    filter.intersect(0, range).unwrap()
}

/// Loads the sample, starts its device, opens its filter and a pin in `format`, and runs
/// `body` with the pin; then closes and unloads everything in AVStream's order.
fn with_pin(format: format::ImageFormat, body: impl FnOnce(&Pin<'_>)) {
    // SAFETY: the sample's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(ks_sample_core::DriverEntry) }.unwrap();
    let device = driver.add_device().unwrap();
    let filter = device.open_filter(0).unwrap();
    let chosen = format_bytes(&filter, format);
    let pin = filter.create_pin(0, &chosen).unwrap();
    body(&pin);
}

#[test]
fn stop_in_mid_stream_returns_every_frame_and_deletes_the_allocator() {
    let session = Session::begin();
    ks_host::ke::set_time_scale(20.0);
    with_pin(format::FORMATS[2], |pin| {
        let (sender, received) = mpsc::channel();
        pin.connect(
            &sink().view(),
            Box::new(move |frame: &Completed| {
                let _ = sender.send(frame.header.DataUsed);
                // A slow sink: frames pile up with it and in the queue when STOP comes.
                std::thread::sleep(Duration::from_millis(2));
            }),
        )
        .unwrap();
        for round in 0..3 {
            pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
            assert!(pin.allocator_context().is_some());
            assert_eq!(ks_allocator::live_allocators(), 1, "round {round}");
            for _ in 0..5 {
                received.recv_timeout(Duration::from_secs(10)).expect("frames arrive");
            }
            pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
            assert_eq!(pin.queued(), 0);
            assert!(pin.allocator_context().is_none(), "STOP deletes the allocator");
            assert_eq!(ks_allocator::live_allocators(), 0, "round {round}");
            let live = session.live();
            let frames = ks_host::pool::tag_name(tags::FRAME_TAG);
            assert!(!live.by_tag.contains_key(&frames), "round {round}: {live}");
            while received.try_recv().is_ok() {}
        }
    });
    assert!(session.live().is_empty(), "{}", session.live());
    assert!(session.take_violations().is_empty());
    ks_host::ke::set_time_scale(1.0);
}

#[test]
fn pins_refuse_what_their_descriptors_do_not_allow() {
    let _session = Session::begin();
    // SAFETY: the sample's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(ks_sample_core::DriverEntry) }.unwrap();
    let device = driver.add_device().unwrap();
    let filter = device.open_filter(0).unwrap();

    // A range the pin does not offer: no format.
    let mut other = format::ImageFormat::new(format::Subtype::Rgb24, 800, 600).data_range();
    other.DataRange.FormatSize = u32::try_from(size_of_val(&other)).unwrap();
    // SAFETY: a plain-data structure viewed as its bytes.
    let other =
        unsafe { std::slice::from_raw_parts((&raw const other).cast::<u8>(), size_of_val(&other)) };
    assert_eq!(filter.intersect(0, other), Err(ks_sys::STATUS_NO_MATCH));
    assert_eq!(filter.intersect(0, &other[..40]), Err(ks_sys::STATUS_INVALID_PARAMETER));
    assert_eq!(filter.intersect(1, other).err(), Some(ks_sys::STATUS_INVALID_PARAMETER));

    // A format no range accepts, a truncated one, then one pin only.
    let mut chosen = format_bytes(&filter, format::FORMATS[0]);
    let mut wrong = chosen.clone();
    wrong[32] ^= 0xFF; // the subtype GUID
    assert_eq!(filter.create_pin(0, &wrong).err(), Some(ks_sys::STATUS_NO_MATCH));
    assert_eq!(filter.create_pin(0, &chosen[..60]).err(), Some(ks_sys::STATUS_INVALID_PARAMETER));
    let pin = filter.create_pin(0, &chosen).unwrap();
    assert_eq!(
        filter.create_pin(0, &chosen).err(),
        Some(ks_sys::STATUS_INSUFFICIENT_RESOURCES),
        "InstancesPossible is 1"
    );

    // Out of STOP only once connected.
    assert_eq!(pin.set_state(ks_sys::KSSTATE_ACQUIRE), Err(ks_sys::STATUS_INVALID_DEVICE_STATE));
    assert_eq!(pin.state(), ks_sys::KSSTATE_STOP);

    // The framing the pin reports is its own copy, sized for its format by KsEdit.
    let mut request = Vec::new();
    request.extend_from_slice(&guid_bytes(&ks_sys::KSPROPSETID_Connection));
    request.extend_from_slice(&ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX.to_le_bytes());
    request.extend_from_slice(&ks_sys::KSPROPERTY_TYPE_GET.to_le_bytes());
    let mut value = vec![0u8; 256];
    let reply = pin.property(&request, &mut value, ks_host::property::Client::Native);
    assert_eq!(reply.status, ks_sys::STATUS_SUCCESS);
    let framing = FramingExView::parse(&value[..reply.information]).unwrap();
    let item = framing.items().next().unwrap();
    assert_eq!(item.physical_range.max_frame_size as usize, format::FORMATS[0].image_size());
    drop(pin);

    // The instance is free again once the pin is closed.
    chosen = format_bytes(&filter, format::FORMATS[1]);
    let pin = filter.create_pin(0, &chosen).unwrap();
    drop(pin);
}

fn guid_bytes(guid: &ks_sys::GUID) -> [u8; 16] {
    // SAFETY: GUID is 16 bytes of plain data.
    unsafe { std::mem::transmute_copy(guid) }
}

/// The whole life of the driver, streaming a few frames; each step may fail. Returns the
/// frames delivered.
fn lifecycle() -> usize {
    // SAFETY: the sample's entry point; its descriptors are statics.
    let Ok(driver) = (unsafe { Driver::load(ks_sample_core::DriverEntry) }) else { return 0 };
    let Ok(device) = driver.add_device() else { return 0 };
    let Ok(filter) = device.open_filter(0) else { return 0 };
    let chosen = format_bytes(&filter, format::FORMATS[0]);
    let Ok(pin) = filter.create_pin(0, &chosen) else { return 0 };
    let (sender, received) = mpsc::channel();
    let consumer = Box::new(move |frame: &Completed| {
        if frame.header.DataUsed > 0 {
            let _ = sender.send(check::read_frame(&format::FORMATS[0], frame.data()).is_ok());
        }
    });
    if pin.connect(&sink().view(), consumer).is_err()
        || pin.set_state(ks_sys::KSSTATE_ACQUIRE).is_err()
    {
        return 0;
    }
    // Everything the stream needs is allocated by now (ACQUIRE creates the allocator and the
    // engine's memory); RUN adds only clones.
    SETUP_CALLS.fetch_max(ks_host::pool::allocation_calls(), std::sync::atomic::Ordering::SeqCst);
    if pin.set_state(ks_sys::KSSTATE_RUN).is_err() {
        pin.set_state(ks_sys::KSSTATE_STOP).expect("STOP cannot fail");
        return 0;
    }
    let delivered = (0..3)
        .map_while(|_| received.recv_timeout(Duration::from_secs(10)).ok())
        .inspect(|good| assert!(good, "a bad frame"))
        .count();
    pin.set_state(ks_sys::KSSTATE_STOP).expect("STOP cannot fail");
    delivered
}

/// Pool allocations the driver's life makes before it streams: the sweep's sites that must
/// stop it (later ones, a stream pointer clone while streaming, are retried at the next frame
/// interrupt).
static SETUP_CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The sweep: the sample's whole life (driver load, device start, filter and pin creation,
/// allocator creation, streaming, stop, unload) once for every pool allocation it makes, failing
/// that one. Each run must end with a failure status at the step that needed the memory (no
/// stream, since every allocation precedes streaming), zero leaked bytes and no violation (the
/// session checks both, special pool included).
#[test]
fn every_allocation_failing_in_turn_leaks_nothing() {
    ks_host::ke::set_time_scale(20.0);
    let calls = {
        let _session = Session::begin();
        assert_eq!(lifecycle(), 3);
        ks_host::pool::allocation_calls()
    };
    let setup = SETUP_CALLS.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        setup >= 9,
        "device context, hardware, DMA adapter, common buffer, region, pin context, two KsEdit \
         copies, allocator: {setup}"
    );
    for n in 1..=calls {
        let session = Session::begin();
        ks_host::pool::fail_nth(n);
        let delivered = lifecycle();
        let failed = ks_host::pool::failed_allocations();
        if n <= setup {
            assert_eq!(failed, 1, "allocation {n} of {calls}");
            assert_eq!(delivered, 0, "allocation {n} of {calls} failed, yet the stream started");
        } else {
            // How many clones a stream makes before its third frame varies with timing.
            assert!(failed <= 1, "allocation {n} of {calls}");
            assert_eq!(delivered, 3, "allocation {n} of {calls} (a clone) stopped the stream");
        }
        drop(session); // checks for leaks and violations
    }
    println!(
        "sweep: {calls} allocation sites in the sample's life, each failed once: no leak, no violation"
    );
    ks_host::ke::set_time_scale(1.0);
}

/// Low resources, as Driver Verifier simulates them: a seeded random fraction of allocations
/// fails; every run either streams correctly or stops cleanly, and leaks nothing. Seeds 1 to 24,
/// or those of `KS_SEEDS` (comma-separated) to replay one the output names.
#[test]
fn low_resources_runs_stream_or_stop_cleanly() {
    ks_host::ke::set_time_scale(20.0);
    let mut streamed = 0;
    let seeds: Vec<u64> = std::env::var("KS_SEEDS").map_or_else(
        |_| (1..=24).collect(),
        |list| {
            list.split(',').map(|seed| seed.trim().parse().expect("KS_SEEDS: numbers")).collect()
        },
    );
    for seed in seeds {
        let session = Session::begin();
        ks_host::pool::low_resources(150, seed);
        let delivered = lifecycle();
        assert!(delivered == 0 || delivered == 3, "seed {seed}: {delivered} frames");
        if ks_host::pool::failed_allocations() == 0 {
            assert_eq!(delivered, 3, "seed {seed}");
        }
        streamed += usize::from(delivered == 3);
        drop(session);
    }
    assert!(streamed < 24, "some seeds fail an allocation");
    ks_host::ke::set_time_scale(1.0);
}

#[test]
fn stream_pointers_outside_processing_are_violations() {
    let session = Session::begin();
    with_pin(format::FORMATS[0], |pin| {
        pin.connect(&sink().view(), Box::new(|_: &Completed| {})).unwrap();
        pin.set_state(ks_sys::KSSTATE_PAUSE).unwrap();
        assert_eq!(pin.queued(), 4, "ACQUIRE queued the plan's frames");
        // SAFETY: a live pin; the host checks that the caller is the pin's processing.
        let edge = unsafe {
            ks_sys::KsPinGetLeadingEdgeStreamPointer(
                pin.as_ptr(),
                ks_sys::KSSTREAM_POINTER_STATE_LOCKED,
            )
        };
        assert!(edge.is_null());
        let violations = session.take_violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].routine, "KsPinGetLeadingEdgeStreamPointer");
        assert_eq!(pin.queued(), 4, "nothing was taken from the queue");
    });
}

#[test]
fn a_panicking_consumer_does_not_hold_frames_back() {
    let session = Session::begin();
    ks_host::ke::set_time_scale(20.0);
    with_pin(format::FORMATS[0], |pin| {
        let (sender, received) = mpsc::channel();
        pin.connect(
            &sink().view(),
            Box::new(move |_: &Completed| {
                let _ = sender.send(());
                panic!("the consumer gives up");
            }),
        )
        .unwrap();
        pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
        received.recv_timeout(Duration::from_secs(10)).expect("a frame arrives");
        std::thread::sleep(Duration::from_millis(50));
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
        assert!(received.try_recv().is_err(), "one frame only: the consumer is not called again");
    });
    assert!(session.live().is_empty(), "{}", session.live());
    ks_host::ke::set_time_scale(1.0);
}

/// The capture pin's device memory is its own to allocate: a sink that must allocate gets the
/// pin's system-memory item from its own allocator, and one that must allocate device memory
/// too is refused with the reason.
#[test]
fn sinks_that_must_allocate_get_system_memory_or_are_refused() {
    let _session = Session::begin();
    with_pin(format::FORMATS[0], |pin| {
        let allocates = |memory| {
            FramingEx::new([FramingItem::new(memory)
                .with_flags(ks_allocator::framing::ItemFlags::MUST_ALLOCATE)
                .with_optimal_range(FramingRange::new(1, u32::MAX))])
        };
        let plan = pin
            .connect(&allocates(MemoryType::KERNEL_NONPAGED).view(), Box::new(|_: &Completed| {}))
            .unwrap();
        assert_eq!((plan.upstream_item, plan.memory_type), (1, MemoryType::KERNEL_NONPAGED));
        assert!(!pin.uses_own_allocator(), "the sink allocates");
        let error = pin
            .connect(&allocates(MemoryType::DEVICE_UNKNOWN).view(), Box::new(|_: &Completed| {}))
            .unwrap_err();
        assert!(matches!(error, ks_host::avstream::ConnectError::Negotiation(_)), "{error}");
        assert!(error.to_string().contains("must"), "{error}");
        // A sink that takes any memory still connects afterwards, on the device's memory.
        let plan = pin.connect(&sink().view(), Box::new(|_: &Completed| {})).unwrap();
        assert_eq!((plan.upstream_item, plan.memory_type), (0, MemoryType::DEVICE_UNKNOWN));
        assert!(pin.uses_own_allocator());
    });
}

/// PnP stop (a rebalance) and start again with a pin open: while the pin streams the device
/// vetoes the stop (AVStream maps its frames through the device's DMA adapter, which a stop gives
/// back) and the stream goes on; once the pin is stopped the device stops, refuses to open
/// filters, starts again with a new adapter and common buffer and its one filter factory, and the
/// pin that stayed open streams again; every frame right, nothing leaked, no rule broken.
#[test]
fn a_pnp_stop_waits_for_the_stream_and_a_pin_open_across_it_streams_again() {
    let session = Session::begin();
    ks_host::ke::set_time_scale(20.0);
    for downstream in [Downstream::Kernel(sink()), Downstream::User] {
        // SAFETY: the sample's entry point; its descriptors are statics.
        let driver = unsafe { Driver::load(ks_sample_core::DriverEntry) }.unwrap();
        let device = driver.add_device().unwrap();
        {
            let filter = device.open_filter(0).unwrap();
            let format = format::FORMATS[0];
            let pin = filter.create_pin(0, &format_bytes(&filter, format)).unwrap();
            let (sender, received) = mpsc::channel();
            let consumer = Box::new(move |frame: &Completed| {
                if frame.header.DataUsed > 0 {
                    let _ = sender.send(check::read_frame(&format, frame.data()));
                }
            });
            match &downstream {
                Downstream::Kernel(sink) => drop(pin.connect(&sink.view(), consumer).unwrap()),
                Downstream::User => drop(pin.connect_client(consumer).unwrap()),
            }
            let next = |what: &str| {
                for _ in 0..5 {
                    let frame = received.recv_timeout(Duration::from_secs(10)).expect(what);
                    assert!(frame.is_ok(), "{what}: {frame:?}");
                }
            };
            pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
            next("frames before the stop is asked for");
            assert_eq!(
                device.pnp_stop(),
                Err(ks_sys::STATUS_DEVICE_BUSY),
                "vetoed while streaming"
            );
            next("frames after the veto");
            pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
            device.pnp_stop().unwrap();
            assert_eq!(device.open_filter(0).err(), Some(ks_sys::STATUS_DEVICE_NOT_READY));
            assert_eq!(ks_host::dma::stats().adapters, 0, "the stop gave the adapter back");
            device.pnp_start().unwrap();
            assert_eq!(device.factories(), 3, "a restart keeps the factories it has");
            while received.try_recv().is_ok() {}
            pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
            next("frames after the restart");
            pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
        }
        drop(device);
        drop(driver);
        assert!(session.live().is_empty(), "{}", session.live());
        let stats = ks_host::dma::stats();
        assert_eq!((stats.adapters, stats.common_buffers), (0, 0), "every adapter given back");
    }
    assert!(session.take_violations().is_empty());
    ks_host::ke::set_time_scale(1.0);
}
