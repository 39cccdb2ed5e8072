//! The sample's two transform filters as a graph builder meets them: their factories and the
//! INF that registers them, the pipes the library plans for the sample's chains, and the
//! formats their two pins agree on (intersection and creation in the host).

extern crate ks_host;

use ks_allocator::{
    framing::{FramingEx, FramingExView, ItemFlags, MemoryType},
    negotiate::{ChainFilter, ChainPin, plan_chain},
};
use std::{sync::mpsc, time::Duration};

use ks_host::{
    Session,
    avstream::{
        Completed, Driver, Filter,
        graph::{Graph, PipeSummary, Stage},
    },
};
use ks_sample_core::{
    CAPTURE_FRAMING, check,
    descriptors::{FILTERS, OVERLAY_FILTER_DESCRIPTOR, SCALE_FILTER_DESCRIPTOR},
    format::{self, FORMATS, ImageFormat, Subtype},
    overlay, pin, scale,
    transform::{INPUT, OUTPUT},
};

/// The typical sink: any memory, system memory preferred, no count or size, preferences only.
fn sink() -> FramingEx<1> {
    FramingEx::simple(
        MemoryType::DONT_CARE,
        ItemFlags::SYSTEM_MEMORY | ItemFlags::PREFERENCES_ONLY,
        0,
        0,
        0,
        u32::MAX,
    )
}

fn guid_text(guid: &ks_sys::GUID) -> String {
    format!(
        "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
        guid.Data1,
        guid.Data2,
        guid.Data3,
        guid.Data4[0],
        guid.Data4[1],
        guid.Data4[2],
        guid.Data4[3],
        guid.Data4[4],
        guid.Data4[5],
        guid.Data4[6],
        guid.Data4[7]
    )
}

/// Every filter factory the device creates is registered by the INF under its reference
/// string in exactly the categories its descriptor declares.
#[test]
fn the_inf_registers_every_factory_in_the_categories_it_declares() {
    let inf = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../driver/ks_sample.inx"),
    )
    .unwrap();
    // The `[Strings]` values of the category names.
    let value_of = |name: &str| -> String {
        let line = inf
            .lines()
            .find(|line| line.split('=').next().is_some_and(|key| key.trim() == name))
            .unwrap_or_else(|| panic!("[Strings] has no {name}"));
        line.split('=').nth(1).unwrap().trim().trim_matches('"').to_owned()
    };
    let references = ["GLOBAL", "Overlay", "Scale"];
    assert_eq!(FILTERS.len(), references.len());
    for (filter, reference) in FILTERS.iter().zip(references) {
        // SAFETY: the sample's filter descriptor, a static.
        let descriptor = unsafe { &*filter.as_ptr() };
        // SAFETY: its categories, `CategoriesCount` statics.
        let declared: Vec<String> = unsafe {
            std::slice::from_raw_parts(descriptor.Categories, descriptor.CategoriesCount as usize)
        }
        .iter()
        .map(guid_text)
        .collect();
        let mut registered: Vec<String> = inf
            .lines()
            .filter(|line| line.starts_with("AddInterface"))
            .filter(|line| line.contains(&format!("\"{reference}\"")))
            .map(|line| {
                let name = line.split('=').nth(1).unwrap().split(',').next().unwrap().trim();
                value_of(name.trim_matches('%'))
            })
            .collect();
        registered.sort();
        let mut declared = declared;
        declared.sort();
        assert_eq!(registered, declared, "the factory with reference string {reference}");
    }
}

fn view<const N: usize>(framing: &FramingEx<N>) -> FramingExView<'_> {
    framing.view()
}

/// The capture pin's framing for `format`, as its create dispatch resizes it.
fn capture(format: &ImageFormat) -> FramingEx<2> {
    FramingEx::new(pin::framing_items(u32::try_from(format.image_size()).unwrap()))
}

/// The library plans the sample's chains as the transforms' framings intend: the overlay
/// joins the capture pipe and adds the frame it holds; the scaler starts a pipe of a quarter of
/// the size from its own allocator.
#[test]
fn the_sample_chains_plan_one_pipe_through_the_overlay_and_a_new_one_after_the_scaler() {
    let big = ImageFormat::new(Subtype::Rgb24, 640, 480);
    let cap = capture(&big);
    let sink = sink();
    let pin = |name, framing| ChainPin { name, framing };
    let source = ChainFilter::Source { output: pin("cap.out", view(&cap)) };
    let overlay = ChainFilter::Transform {
        input: pin("ovl.in", view(&overlay::FRAMING)),
        output: pin("ovl.out", view(&overlay::FRAMING)),
    };
    let scaler = ChainFilter::Transform {
        input: pin("scale.in", view(&scale::INPUT_FRAMING)),
        output: pin("scale.out", view(&scale::OUTPUT_FRAMING)),
    };
    let end = ChainFilter::Sink { input: pin("sink.in", view(&sink)) };

    let plan = plan_chain(&[source, overlay, scaler, end]).unwrap();
    let pipes: Vec<_> = plan.pipes().collect();
    assert_eq!(pipes.len(), 2);
    let names: Vec<&str> = pipes[0].pins().map(|(name, _)| name).collect();
    assert_eq!(names, ["cap.out", "ovl.in", "ovl.out", "scale.in"]);
    // System memory (the capture pin's item 1): the overlay writes with the processor.
    assert_eq!(pipes[0].pins().next(), Some(("cap.out", 1)));
    assert_eq!(pipes[0].plan.framing.frame_size, 921_600);
    assert_eq!(pipes[0].plan.framing.frames, pin::FRAMES + overlay::FRAMES);
    assert_eq!(pipes[1].owner, "scale.out");
    assert_eq!(pipes[1].plan.framing.frame_size, 230_400);
    assert_eq!(pipes[1].plan.framing.frames, scale::FRAMES);

    // The overlay alone: one pipe; the scaler alone: two.
    let plan = plan_chain(&[source, overlay, end]).unwrap();
    assert_eq!(plan.pipes().count(), 1);
    let plan = plan_chain(&[source, scaler, end]).unwrap();
    let sizes: Vec<u32> = plan.pipes().map(|p| p.plan.framing.frame_size).collect();
    assert_eq!(sizes, [921_600, 230_400]);
    // YUY2 at 640x480: 614400 bytes, then 153600.
    let yuy2 = capture(&ImageFormat::new(Subtype::Yuy2, 640, 480));
    let source = ChainFilter::Source { output: pin("cap.out", view(&yuy2)) };
    let plan = plan_chain(&[source, overlay, scaler, end]).unwrap();
    let sizes: Vec<u32> = plan.pipes().map(|p| p.plan.framing.frame_size).collect();
    assert_eq!(sizes, [614_400, 153_600]);
    // The declared framing is the default format's.
    assert_eq!(CAPTURE_FRAMING.view().item(1).unwrap().frames, pin::FRAMES);
}

/// The ranges of a pin factory of `filter` whose format is one of `formats`.
fn range_of(filter: &Filter<'_>, id: u32, format: ImageFormat) -> Option<Vec<u8>> {
    filter
        .data_ranges(id)
        .into_iter()
        .find(|bytes| format::parse_range(bytes).is_ok_and(|r| r.same_picture(&format)))
        .map(<[u8]>::to_vec)
}

/// The format a pin factory's intersection gives for `format`, if it offers it.
fn intersect(filter: &Filter<'_>, id: u32, format: ImageFormat) -> Result<ImageFormat, i32> {
    let range = range_of(filter, id, format).ok_or(ks_sys::STATUS_NO_MATCH)?;
    let bytes = filter.intersect(id, &range)?;
    Ok(format::parse_format(&bytes).unwrap())
}

fn with_filters(body: impl FnOnce(&Filter<'_>, &Filter<'_>)) {
    let _session = Session::begin();
    // SAFETY: the sample's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(ks_sample_core::DriverEntry) }.unwrap();
    let device = driver.add_device().unwrap();
    let overlay = device.open_filter(1).unwrap();
    let scale = device.open_filter(2).unwrap();
    for (filter, descriptor) in
        [(&overlay, OVERLAY_FILTER_DESCRIPTOR.as_ptr()), (&scale, SCALE_FILTER_DESCRIPTOR.as_ptr())]
    {
        // SAFETY: the filter is live; its descriptor is the one its factory was given.
        assert!(std::ptr::eq(unsafe { (*filter.as_ptr()).Descriptor }, descriptor));
    }
    body(&overlay, &scale);
}

/// The overlay's pins offer every format until one exists; then the other offers only the same
/// picture, and a pin in another picture is refused.
#[test]
fn the_overlay_s_pins_agree_on_one_picture() {
    with_filters(|overlay, _| {
        for format in FORMATS {
            assert_eq!(
                intersect(overlay, INPUT, format).map(|f| f.same_picture(&format)),
                Ok(true)
            );
            assert_eq!(
                intersect(overlay, OUTPUT, format).map(|f| f.same_picture(&format)),
                Ok(true)
            );
        }
        let chosen = FORMATS[3];
        let bytes = overlay.intersect(INPUT, &range_of(overlay, INPUT, chosen).unwrap()).unwrap();
        let input = overlay.create_pin(INPUT, &bytes).unwrap();
        for format in FORMATS {
            let offered = intersect(overlay, OUTPUT, format);
            if format.same_picture(&chosen) {
                assert_eq!(offered.map(|f| f.same_picture(&chosen)), Ok(true));
            } else {
                assert_eq!(offered, Err(ks_sys::STATUS_NO_MATCH), "{format} besides {chosen}");
                let other = format.to_raw();
                // SAFETY: a plain-data structure, all bytes initialised.
                let other = unsafe {
                    std::slice::from_raw_parts((&raw const other).cast::<u8>(), size_of_val(&other))
                };
                assert_eq!(overlay.create_pin(OUTPUT, other).err(), Some(ks_sys::STATUS_NO_MATCH));
            }
        }
        let output = overlay.create_pin(OUTPUT, &bytes).unwrap();
        drop((output, input));
    });
}

/// The scaler's output offers half the input's picture in the same subtype, and its input twice
/// the output's.
#[test]
fn the_scaler_s_pins_agree_on_half_the_picture() {
    with_filters(|_, scale| {
        let big = |f: &ImageFormat| f.width == 640;
        for format in FORMATS {
            assert_eq!(intersect(scale, INPUT, format).is_ok(), big(&format), "{format} in");
            assert_eq!(intersect(scale, OUTPUT, format).is_ok(), !big(&format), "{format} out");
        }
        let small = ImageFormat::new(Subtype::Yuy2, 320, 240);
        let bytes = scale.intersect(OUTPUT, &range_of(scale, OUTPUT, small).unwrap()).unwrap();
        let output = scale.create_pin(OUTPUT, &bytes).unwrap();
        assert!(intersect(scale, INPUT, ImageFormat::new(Subtype::Rgb24, 640, 480)).is_err());
        let input = intersect(scale, INPUT, ImageFormat::new(Subtype::Yuy2, 640, 480)).unwrap();
        assert!(input.same_picture(&ImageFormat::new(Subtype::Yuy2, 640, 480)));
        drop(output);
    });
}

/// What the sink saw of each frame: the number it reads, the overlay's stamp, its size.
#[derive(Debug)]
struct Seen {
    number: Result<u32, check::FrameProblem>,
    stamp: Option<Result<u32, check::FrameProblem>>,
    used: u32,
}

/// Streams the capture pin in `format` through `through` (filter indexes of the device: 1 the
/// overlay, 2 the scaler) to a checking sink; returns the graph's pipes and what the sink saw.
fn stream(format: ImageFormat, through: &[usize], frames: usize) -> (Vec<PipeSummary>, Vec<Seen>) {
    stream_rounds(format, through, frames, 1, Duration::ZERO)
}

/// As [`stream`], `rounds` times on one graph (RUN, `frames` frames, STOP), with a sink that
/// takes `delay` over each frame (so that frames wait in every pipe when STOP comes); every
/// allocator must be gone after each STOP.
fn stream_rounds(
    format: ImageFormat,
    through: &[usize],
    frames: usize,
    rounds: usize,
    delay: Duration,
) -> (Vec<PipeSummary>, Vec<Seen>) {
    let session = Session::begin();
    ks_host::ke::set_time_scale(20.0);
    // SAFETY: the sample's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(ks_sample_core::DriverEntry) }.unwrap();
    let device = driver.add_device().unwrap();
    let capture = device.open_filter(0).unwrap();
    let filters: Vec<Filter<'_>> =
        through.iter().map(|&i| device.open_filter(i).unwrap()).collect();
    let range = range_of(&capture, 0, format).unwrap();
    let source_format = capture.intersect(0, &range).unwrap();
    let mut stages =
        vec![Stage { name: "cap".to_owned(), filter: &capture, input: None, output: 0 }];
    for (filter, &index) in filters.iter().zip(through) {
        let name = if index == 1 { "ovl" } else { "scale" };
        stages.push(Stage { name: name.to_owned(), filter, input: Some(INPUT), output: OUTPUT });
    }
    // What the sink shows: the picture drawn at the capture's size, marked at the overlay's.
    let mut shown = format;
    let mut marked_at = None;
    for &index in through {
        if index == 1 {
            marked_at = Some(shown);
        } else {
            shown = ImageFormat::new(shown.subtype, shown.width / 2, shown.height / 2);
        }
    }
    let (sender, received) = mpsc::channel();
    let consumer = Box::new(move |frame: &Completed| {
        if frame.header.DataUsed == 0 {
            return; // given back empty as the capture pin stops
        }
        let data = frame.data();
        let seen = Seen {
            number: check::read_frame_as(&format, &shown, data),
            stamp: marked_at.map(|at| check::read_mark(&at, &shown, data)),
            used: frame.header.DataUsed,
        };
        let _ = sender.send(seen);
        std::thread::sleep(delay);
    });
    let sink = sink();
    let graph = Graph::build(&stages, &source_format, &sink.view(), consumer).unwrap();
    let pipes = graph.pipes().to_vec();
    let mut seen = Vec::new();
    for round in 0..rounds {
        graph.set_state(ks_sys::KSSTATE_RUN).unwrap();
        assert_eq!(
            ks_allocator::live_allocators() as usize,
            pipes.len(),
            "round {round}: an allocator per pipe"
        );
        for _ in 0..frames {
            let frame = received.recv_timeout(Duration::from_secs(20));
            seen.push(frame.expect("frames reach the sink"));
        }
        graph.set_state(ks_sys::KSSTATE_STOP).unwrap();
        assert_eq!(ks_allocator::live_allocators(), 0, "round {round}: STOP deletes them all");
        for (name, pin) in graph.pins() {
            assert_eq!(pin.queued(), 0, "round {round}: {name} holds no frame after STOP");
        }
        while received.try_recv().is_ok() {}
    }
    drop(graph);
    drop(filters);
    drop(capture);
    drop(device);
    drop(driver);
    assert!(session.take_violations().is_empty());
    ks_host::ke::set_time_scale(1.0);
    (pipes, seen)
}

fn pins_of(pipe: &PipeSummary) -> Vec<&str> {
    pipe.pins.iter().map(String::as_str).collect()
}

#[test]
fn through_the_overlay_one_pipe_carries_marked_frames() {
    let format = ImageFormat::new(Subtype::Rgb24, 640, 480);
    let (pipes, seen) = stream(format, &[1], 12);
    assert_eq!(pipes.len(), 1);
    assert_eq!(pins_of(&pipes[0]), ["cap.out", "ovl.in", "ovl.out", "sink.in"]);
    assert_eq!(pipes[0].plan.framing.frame_size, 921_600);
    let mut last = None;
    for frame in &seen {
        assert_eq!(frame.used, 921_600);
        let number = frame.number.expect("the picture reads back");
        assert!(last.is_none_or(|last| number > last), "in order: {number} after {last:?}");
        last = Some(number);
        frame.stamp.expect("marked").expect("the overlay's mark reads back");
    }
}

#[test]
fn through_the_scaler_two_pipes_carry_frames_of_a_quarter_of_the_size() {
    for format in
        [ImageFormat::new(Subtype::Yuy2, 640, 480), ImageFormat::new(Subtype::Rgb24, 640, 480)]
    {
        let (pipes, seen) = stream(format, &[2], 8);
        assert_eq!(pipes.len(), 2, "{format}");
        assert_eq!(pins_of(&pipes[0]), ["cap.out", "scale.in"]);
        assert_eq!(pins_of(&pipes[1]), ["scale.out", "sink.in"]);
        assert_eq!(pipes[1].owner, "scale.out");
        let quarter = u32::try_from(format.image_size() / 4).unwrap();
        assert_eq!(pipes[1].plan.framing.frame_size, quarter);
        for frame in &seen {
            assert_eq!(frame.used, quarter);
            frame.number.expect("the halved picture reads back");
        }
    }
}

#[test]
fn through_the_overlay_and_the_scaler() {
    let format = ImageFormat::new(Subtype::Rgb24, 640, 480);
    let (pipes, seen) = stream(format, &[1, 2], 10);
    assert_eq!(pipes.len(), 2);
    assert_eq!(pins_of(&pipes[0]), ["cap.out", "ovl.in", "ovl.out", "scale.in"]);
    assert_eq!(
        (pipes[0].plan.framing.frame_size, pipes[1].plan.framing.frame_size),
        (921_600, 230_400)
    );
    let mut last_stamp = 0;
    for frame in &seen {
        frame.number.expect("the picture reads back");
        let stamp = frame.stamp.expect("marked").expect("the mark survives the scaling");
        assert!(stamp >= last_stamp, "the overlay saw frames in order: {stamp} after {last_stamp}");
        last_stamp = stamp;
    }
}

/// Every format through every chain the formats allow: the overlay on all four, the scaler on
/// the two 640x480 ones, and both in either order; the picture (and the mark) read back at the
/// sink, in order.
#[test]
fn every_format_through_every_chain() {
    for format in FORMATS {
        let mut chains: Vec<&[usize]> = vec![&[1]];
        if format.width == 640 {
            chains.extend([&[2][..], &[1, 2], &[2, 1]]);
        }
        for chain in chains {
            let (pipes, seen) = stream(format, chain, 5);
            let copies = chain.iter().filter(|&&i| i == 2).count();
            assert_eq!(pipes.len(), 1 + copies, "{format} through {chain:?}");
            let mut last = None;
            for frame in &seen {
                let number = frame.number.unwrap_or_else(|p| panic!("{format} {chain:?}: {p}"));
                assert!(last.is_none_or(|last| number > last), "{format} {chain:?}: in order");
                last = Some(number);
                if let Some(stamp) = frame.stamp {
                    stamp.unwrap_or_else(|p| panic!("{format} {chain:?}: mark: {p}"));
                }
            }
        }
    }
}

/// STOP with frames waiting in every pipe (a slow sink), three times on one graph: every frame
/// goes back, each allocator is deleted at each STOP and made again at the next RUN, nothing
/// leaks (the session checks at its end).
#[test]
fn stop_mid_stream_with_frames_in_every_pipe_again_and_again() {
    let format = ImageFormat::new(Subtype::Rgb24, 640, 480);
    let (pipes, seen) = stream_rounds(format, &[1, 2], 4, 3, Duration::from_millis(15));
    assert_eq!(pipes.len(), 2);
    assert_eq!(seen.len(), 12);
    for frame in &seen {
        frame.number.expect("the picture reads back");
    }
}
