//! The host's AVStream DMA services as a scatter/gather capture driver meets them, through a
//! probe driver shaped like avshws: its device registers a DMA adapter at start, its pin
//! generates mappings and processes at PASSIVE_LEVEL, cloning the leading edge for each frame it
//! programs; the test plays the hardware, writing through the mappings and deleting the clones
//! as frames complete.

// Sizes of KS structures (a few dozen bytes) written into their ULONG fields.
#![expect(clippy::cast_possible_truncation, reason = "structure sizes fit a ULONG")]

use std::sync::{
    Mutex,
    atomic::{AtomicPtr, AtomicU32, Ordering},
};

use ks_allocator::{
    DEFAULT_DISPATCH, SyncStatic,
    framing::{FramingEx, ItemFlags, MemoryType},
};
use ks_host::{Session, avstream::Driver, dma};
use ks_sys::{
    DEVICE_DESCRIPTION, KSDATAFORMAT, KSDATARANGE, KSDEVICE, KSDEVICE_DESCRIPTOR,
    KSDEVICE_DISPATCH, KSFILTER_DESCRIPTOR, KSMAPPING, KSPIN, KSPIN_DESCRIPTOR,
    KSPIN_DESCRIPTOR_EX, KSPIN_DISPATCH, KSSTREAM_POINTER, NTSTATUS, PCM_RESOURCE_LIST,
    PDMA_ADAPTER, PIRP, PKSDATARANGE,
};

const FRAME: u32 = 3 * 4096 + 100;
/// The table stride the probe registers: a KSMAPPING and 8 bytes of its own.
const STRIDE: u32 = 24;

/// The longest mapping the probe registers, and whether it registers an adapter at all.
static MAX_MAPPING: AtomicU32 = AtomicU32::new(1 << 20);
static REGISTER: AtomicU32 = AtomicU32::new(1);
static ADAPTER: AtomicPtr<ks_sys::DMA_ADAPTER> = AtomicPtr::new(std::ptr::null_mut());
/// What the probe's process callback saw: one entry per frame it programmed, its mappings.
static PROGRAMMED: Mutex<Vec<Vec<(u64, u32, u32)>>> = Mutex::new(Vec::new());

unsafe extern "C" fn start(
    device: *mut KSDEVICE,
    _irp: PIRP,
    _translated: PCM_RESOURCE_LIST,
    _untranslated: PCM_RESOURCE_LIST,
) -> NTSTATUS {
    // SAFETY: plain data, filled field by field.
    let mut description: DEVICE_DESCRIPTION = unsafe { std::mem::zeroed() };
    description.Version = ks_sys::DEVICE_DESCRIPTION_VERSION2;
    description.Master = 1;
    description.ScatterGather = 1;
    description.Dma32BitAddresses = 1;
    description.Dma64BitAddresses = 1;
    description.InterfaceType = ks_sys::PCIBus;
    description.MaximumLength = 1 << 20;
    let mut registers = 0;
    // SAFETY: a live device.
    let pdo = unsafe { (*device).PhysicalDeviceObject };
    // SAFETY: the device's PDO, a description and a ULONG of this frame.
    let adapter = unsafe { ks_sys::IoGetDmaAdapter(pdo, &raw mut description, &raw mut registers) };
    if adapter.is_null() {
        return ks_sys::STATUS_INSUFFICIENT_RESOURCES;
    }
    ADAPTER.store(adapter, Ordering::SeqCst);
    if REGISTER.load(Ordering::SeqCst) != 0 {
        // SAFETY: a live device and adapter.
        unsafe {
            ks_sys::KsDeviceRegisterAdapterObject(
                device,
                adapter.cast(),
                MAX_MAPPING.load(Ordering::SeqCst),
                STRIDE,
            );
        }
    }
    // SAFETY: a live device.
    unsafe { ks_sys::KsAcquireDevice(device) };
    // SAFETY: a live device.
    let fdo = unsafe { (*device).FunctionalDeviceObject };
    // SAFETY: the device's FDO and a static descriptor.
    let status = unsafe {
        ks_sys::KsCreateFilterFactory(
            fdo,
            FILTER.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
            None,
            None,
            std::ptr::null_mut(),
        )
    };
    // SAFETY: acquired above.
    unsafe { ks_sys::KsReleaseDevice(device) };
    status
}

unsafe extern "C" fn stop(_device: *mut KSDEVICE, _irp: PIRP) {
    let adapter: PDMA_ADAPTER = ADAPTER.swap(std::ptr::null_mut(), Ordering::SeqCst);
    if !adapter.is_null() {
        // SAFETY: the live adapter Start got.
        let operations = unsafe { (*adapter).DmaOperations };
        // SAFETY: its operation table, live as long as it is.
        let put = unsafe { (*operations).PutDmaAdapter }.unwrap();
        // SAFETY: as above; given back once.
        unsafe { put(adapter) };
    }
}

/// Programs every frame at the leading edge, as avshws does: a clone per frame (its context
/// holds the frame's number), the edge advanced over the frame's mappings.
unsafe extern "C" fn process(pin: *mut KSPIN) -> NTSTATUS {
    // SAFETY: a live pin, from its processing.
    let mut edge = unsafe {
        ks_sys::KsPinGetLeadingEdgeStreamPointer(pin, ks_sys::KSSTREAM_POINTER_STATE_LOCKED)
    };
    while !edge.is_null() {
        // SAFETY: a locked leading edge.
        let offset = unsafe { (*edge).OffsetOut };
        let mut runs = Vec::new();
        for index in 0..offset.Remaining {
            let entry = offset.Data.wrapping_add((index * STRIDE) as usize);
            // SAFETY: the table has `Remaining` entries `STRIDE` bytes apart from `Data`.
            let mapping = unsafe { entry.cast::<KSMAPPING>().read_unaligned() };
            runs.push((
                u64::try_from(mapping.PhysicalAddress).unwrap(),
                mapping.ByteCount,
                mapping.Alignment,
            ));
        }
        let mut clone: *mut KSSTREAM_POINTER = std::ptr::null_mut();
        // SAFETY: a locked leading edge; the clone pointer is this frame's.
        let status = unsafe { ks_sys::KsStreamPointerClone(edge, None, 8, &raw mut clone) };
        if status != ks_sys::STATUS_SUCCESS {
            // SAFETY: the edge is locked; it stays at this frame.
            unsafe { ks_sys::KsStreamPointerUnlock(edge, 0) };
            return status;
        }
        let mut programmed = PROGRAMMED.lock().unwrap();
        // SAFETY: a live clone.
        let context = unsafe { (*clone).Context };
        // SAFETY: the clone's context is 8 bytes.
        unsafe { context.cast::<u64>().write(programmed.len() as u64) };
        programmed.push(runs);
        drop(programmed);
        // SAFETY: a locked leading edge, advanced over all its mappings.
        let status = unsafe { ks_sys::KsStreamPointerAdvanceOffsets(edge, 0, offset.Remaining, 0) };
        if status != ks_sys::STATUS_SUCCESS {
            edge = std::ptr::null_mut(); // no next frame: the edge is unlocked
        }
    }
    ks_sys::STATUS_SUCCESS
}

/// The hardware: writes each programmed frame through its mappings (a byte of the frame's
/// number), sets `DataUsed` through its clone and deletes the clones, oldest first.
fn hardware_completes(pin: *mut KSPIN, frames: usize) -> usize {
    let mut done = 0;
    ks_host::irql::at_dispatch(|| {
        while done < frames {
            // SAFETY: a live pin.
            let clone = unsafe { ks_sys::KsPinGetFirstCloneStreamPointer(pin) };
            if clone.is_null() {
                break;
            }
            // SAFETY: a live clone.
            let context = unsafe { (*clone).Context };
            // SAFETY: its context holds the frame's number.
            let number = unsafe { context.cast::<u64>().read() } as usize;
            let runs = PROGRAMMED.lock().unwrap()[number].clone();
            for (physical, bytes, _) in runs {
                let target = dma::MmGetVirtualForPhysical(ks_sys::LARGE_INTEGER {
                    QuadPart: i64::try_from(physical).unwrap(),
                });
                assert!(!target.is_null(), "a programmed mapping is reachable");
                // SAFETY: a run never crosses a page here (pool memory is scattered), so the
                // view holds it.
                unsafe { target.cast::<u8>().write_bytes(number as u8 + 1, bytes as usize) };
            }
            // SAFETY: a live clone.
            let header = unsafe { (*clone).StreamHeader };
            // SAFETY: its frame's header.
            unsafe { (*header).DataUsed = FRAME };
            // SAFETY: a live clone, deleted once.
            unsafe { ks_sys::KsStreamPointerDelete(clone) };
            done += 1;
        }
    });
    dma::commit();
    done
}

static FRAMING: FramingEx<1> =
    FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::SYSTEM_MEMORY, 4, 0, FRAME, FRAME);

static RANGE: KSDATARANGE = KSDATARANGE {
    FormatSize: size_of::<KSDATARANGE>() as u32,
    Flags: 0,
    SampleSize: 0,
    Reserved: 0,
    MajorFormat: ks_sys::KSDATAFORMAT_TYPE_VIDEO,
    SubFormat: ks_sys::GUID_NULL,
    Specifier: ks_sys::GUID_NULL,
};

// SAFETY: a pointer to the immutable range above.
static RANGES: SyncStatic<[PKSDATARANGE; 1]> =
    unsafe { SyncStatic::new([(&raw const RANGE).cast_mut()]) };

// SAFETY: function pointers and the library's immutable allocator table.
static PIN_DISPATCH: SyncStatic<KSPIN_DISPATCH> = unsafe {
    SyncStatic::new(KSPIN_DISPATCH {
        Create: None,
        Close: None,
        Process: Some(process),
        Reset: None,
        SetDataFormat: None,
        SetDeviceState: None,
        Connect: None,
        Disconnect: None,
        Clock: std::ptr::null(),
        Allocator: DEFAULT_DISPATCH,
    })
};

// SAFETY: pointers to immutable statics.
static PINS: SyncStatic<[KSPIN_DESCRIPTOR_EX; 1]> = unsafe {
    SyncStatic::new([KSPIN_DESCRIPTOR_EX {
        Dispatch: PIN_DISPATCH.as_ptr(),
        AutomationTable: std::ptr::null(),
        PinDescriptor: KSPIN_DESCRIPTOR {
            InterfacesCount: 0,
            Interfaces: std::ptr::null(),
            MediumsCount: 0,
            Mediums: std::ptr::null(),
            DataRangesCount: 1,
            DataRanges: RANGES.as_ptr().cast(),
            DataFlow: ks_sys::KSPIN_DATAFLOW_OUT,
            Communication: ks_sys::KSPIN_COMMUNICATION_BOTH,
            Category: std::ptr::null(),
            Name: std::ptr::null(),
            ConstrainedDataRangesCount: 0,
            ConstrainedDataRanges: std::ptr::null_mut(),
        },
        Flags: ks_sys::KSPIN_FLAG_GENERATE_MAPPINGS,
        InstancesPossible: 1,
        InstancesNecessary: 0,
        AllocatorFraming: FRAMING.as_raw(),
        IntersectHandler: None,
    }])
};

// SAFETY: pointers to immutable statics.
static FILTER: SyncStatic<KSFILTER_DESCRIPTOR> = unsafe {
    SyncStatic::new(KSFILTER_DESCRIPTOR {
        Dispatch: std::ptr::null(),
        AutomationTable: std::ptr::null(),
        Version: ks_sys::KSFILTER_DESCRIPTOR_VERSION,
        Flags: 0,
        ReferenceGuid: &ks_sys::KSNAME_Filter,
        PinDescriptorsCount: 1,
        PinDescriptorSize: size_of::<KSPIN_DESCRIPTOR_EX>() as u32,
        PinDescriptors: PINS.as_ptr().cast(),
        CategoriesCount: 0,
        Categories: std::ptr::null(),
        NodeDescriptorsCount: 0,
        NodeDescriptorSize: 0,
        NodeDescriptors: std::ptr::null(),
        ConnectionsCount: 0,
        Connections: std::ptr::null(),
        ComponentId: std::ptr::null(),
    })
};

// SAFETY: function pointers only.
static DEVICE_DISPATCH: SyncStatic<KSDEVICE_DISPATCH> = unsafe {
    SyncStatic::new(KSDEVICE_DISPATCH {
        Add: None,
        Start: Some(start),
        PostStart: None,
        QueryStop: None,
        CancelStop: None,
        Stop: Some(stop),
        QueryRemove: None,
        CancelRemove: None,
        Remove: None,
        QueryCapabilities: None,
        SurpriseRemoval: None,
        QueryPower: None,
        SetPower: None,
        QueryInterface: None,
    })
};

// SAFETY: a pointer to the immutable dispatch above.
static DEVICE: SyncStatic<KSDEVICE_DESCRIPTOR> = unsafe {
    SyncStatic::new(KSDEVICE_DESCRIPTOR {
        Dispatch: DEVICE_DISPATCH.as_ptr(),
        FilterDescriptorsCount: 0,
        FilterDescriptors: std::ptr::null(),
        Version: ks_sys::KSDEVICE_DESCRIPTOR_VERSION,
        Flags: 0,
    })
};

unsafe extern "system" fn driver_entry(
    driver: ks_sys::PDRIVER_OBJECT,
    path: ks_sys::PUNICODE_STRING,
) -> NTSTATUS {
    // SAFETY: the I/O manager's arguments; a static descriptor.
    unsafe { ks_sys::KsInitializeDriver(driver, path, DEVICE.as_ptr()) }
}

fn format() -> Vec<u8> {
    let format = KSDATAFORMAT {
        FormatSize: size_of::<KSDATAFORMAT>() as u32,
        Flags: 0,
        SampleSize: FRAME,
        Reserved: 0,
        MajorFormat: ks_sys::KSDATAFORMAT_TYPE_VIDEO,
        SubFormat: ks_sys::GUID_NULL,
        Specifier: ks_sys::GUID_NULL,
    };
    // SAFETY: plain data, no padding.
    unsafe { std::slice::from_raw_parts((&raw const format).cast::<u8>(), size_of_val(&format)) }
        .to_vec()
}

/// A kernel-mode sink that takes any memory.
fn sink() -> FramingEx<1> {
    FramingEx::simple(MemoryType::DONT_CARE, ItemFlags::PREFERENCES_ONLY, 0, 0, 1, u32::MAX)
}

/// Completed frames: (DataUsed, every byte the frame's number + 1).
type Seen = std::sync::Arc<Mutex<Vec<(u32, bool)>>>;

fn consumer(seen: &Seen) -> ks_host::avstream::Consumer {
    let seen = std::sync::Arc::clone(seen);
    Box::new(move |frame| {
        let data = frame.data();
        let first = data.first().copied().unwrap_or(0);
        let uniform = first != 0 && data.iter().all(|b| *b == first);
        seen.lock().unwrap().push((frame.header.DataUsed, uniform));
    })
}

fn settings(max_mapping: u32, register: bool) {
    MAX_MAPPING.store(max_mapping, Ordering::SeqCst);
    REGISTER.store(u32::from(register), Ordering::SeqCst);
    PROGRAMMED.lock().unwrap().clear();
}

/// Loads the probe, adds its device, opens its filter and a pin connected to [`sink`] with
/// `consumer`, runs `body` on the pin, then closes and removes everything.
fn with_pin(consumer: ks_host::avstream::Consumer, body: impl FnOnce(&ks_host::avstream::Pin<'_>)) {
    // SAFETY: the probe's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(driver_entry) }.unwrap();
    let device = driver.add_device().unwrap();
    let filter = device.open_filter(0).unwrap();
    let pin = filter.create_pin(0, &format()).unwrap();
    pin.connect(&sink().view(), consumer).unwrap();
    body(&pin);
}

#[test]
fn frames_are_mapped_programmed_through_clones_and_completed_in_order() {
    let session = Session::begin();
    settings(1 << 20, true);
    let seen = Seen::default();
    with_pin(consumer(&seen), |pin| {
        pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
        // SAFETY: a live pin, at PASSIVE_LEVEL: processed on this thread.
        unsafe { ks_sys::KsPinAttemptProcessing(pin.as_ptr(), 0) };
        let programmed = PROGRAMMED.lock().unwrap().clone();
        assert_eq!(programmed.len(), 4, "every queued frame is programmed");
        for runs in &programmed {
            // Pool pages are scattered: no run crosses a page boundary, and the frame (which
            // need not start on a page) spans four or five pages.
            assert!((4..=5).contains(&runs.len()), "{runs:x?}");
            assert_eq!(runs.iter().map(|r| r.1).sum::<u32>(), FRAME);
            for (physical, bytes, alignment) in runs {
                assert!(physical % 4096 + u64::from(*bytes) <= 4096, "{runs:x?}");
                assert_eq!(u64::from(*alignment), 1 << physical.trailing_zeros().min(12));
            }
        }
        assert_eq!(pin.queued(), 4, "programmed frames wait for the hardware");
        assert_eq!(hardware_completes(pin.as_ptr(), 2), 2);
        // Two completed; the pipe queued two fresh frames, not yet programmed.
        while seen.lock().unwrap().len() < 2 {
            std::thread::yield_now();
        }
        assert_eq!(hardware_completes(pin.as_ptr(), 2), 2);
        // The pipe queues a fresh frame for each one the consumer gives back.
        while pin.queued() < 4 {
            std::thread::yield_now();
        }
        // SAFETY: as above: the fresh frames are programmed now.
        unsafe { ks_sys::KsPinAttemptProcessing(pin.as_ptr(), 0) };
        assert_eq!(hardware_completes(pin.as_ptr(), 8), 4);
        while seen.lock().unwrap().len() < 8 {
            std::thread::yield_now();
        }
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
    });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 8);
    assert!(seen.iter().all(|(used, uniform)| *used == FRAME && *uniform), "{seen:?}");
    let stats = dma::stats();
    assert_eq!(stats.violations, 0);
    assert!(stats.bytes_written >= 8 * u64::from(FRAME));
    assert!(session.take_violations().is_empty());
}

#[test]
fn mappings_respect_the_registered_maximum() {
    let _session = Session::begin();
    settings(1000, true);
    with_pin(Box::new(|_| {}), |pin| {
        pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
        // SAFETY: a live pin, at PASSIVE_LEVEL.
        unsafe { ks_sys::KsPinAttemptProcessing(pin.as_ptr(), 0) };
        let programmed = PROGRAMMED.lock().unwrap().clone();
        for runs in &programmed {
            assert!(runs.iter().all(|r| r.1 <= 1000), "{runs:?}");
            assert_eq!(runs.iter().map(|r| r.1).sum::<u32>(), FRAME);
        }
        hardware_completes(pin.as_ptr(), 4);
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
    });
}

#[test]
fn clones_still_held_at_stop_are_a_violation() {
    let session = Session::begin();
    settings(1 << 20, true);
    with_pin(Box::new(|_| {}), |pin| {
        pin.set_state(ks_sys::KSSTATE_RUN).unwrap();
        // SAFETY: a live pin, at PASSIVE_LEVEL.
        unsafe { ks_sys::KsPinAttemptProcessing(pin.as_ptr(), 0) };
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
    });
    let violations = session.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].detail.contains("still holds 4 stream pointer clone(s)"),
        "{violations:?}"
    );
    assert_eq!(dma::stats().violations, 0);
}

#[test]
fn a_mapping_pin_on_a_device_without_an_adapter_is_a_violation() {
    let session = Session::begin();
    settings(1 << 20, false);
    with_pin(Box::new(|_| {}), |pin| {
        pin.set_state(ks_sys::KSSTATE_ACQUIRE).unwrap();
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
    });
    let violations = session.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].detail.contains("registered no DMA adapter"), "{violations:?}");
}
