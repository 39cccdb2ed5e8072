//! The static descriptors AVStream builds the device, filter and pin from.

use ks_allocator::{Budget, PoolConfig, SyncStatic, dispatch_table, framing::FramingEx};
use ks_sys::{
    GUID, KS_DATARANGE_VIDEO, KSALLOCATOR_DISPATCH, KSDATARANGE, KSDEVICE, KSDEVICE_DESCRIPTOR,
    KSDEVICE_DISPATCH, KSFILTER_DESCRIPTOR, KSFILTER_DISPATCH, KSPIN_DESCRIPTOR,
    KSPIN_DESCRIPTOR_EX, KSPIN_DISPATCH, NTSTATUS, PFNKSINTERSECTHANDLEREX, PFNKSPINSETDATAFORMAT,
    PKSDATARANGE,
};

use crate::{
    CaptureAllocator, device,
    format::{FORMATS, MAX_FRAME_BYTES},
    overlay, pin, scale, transform,
};

/// The allocator budget of the capture pin: twice [`pin::FRAMES`] frames of the largest frame a
/// format may need (the tallest picture at the widest surface pitch, a whole number of pages),
/// and no more. An allocator create request can come from any process that opened the pin, so the
/// budget is as tight as the formats allow.
pub struct CaptureBudget;

impl Budget for CaptureBudget {
    const CONFIG: PoolConfig = PoolConfig::DEFAULT
        .with_max_frames(2 * pin::FRAMES)
        .with_max_bytes(2 * pin::FRAMES as usize * MAX_FRAME_BYTES.next_multiple_of(4096))
        .with_uncapped_frames(pin::FRAMES);
}

/// The pin's framing as declared, for the default format: device memory first, system memory
/// second ([`pin::framing_items`]); each pin resizes its own copy to its format at creation
/// (`KsEdit`).
#[expect(clippy::cast_possible_truncation, reason = "153600 bytes")]
pub static CAPTURE_FRAMING: FramingEx<2> =
    FramingEx::new(pin::framing_items(FORMATS[0].image_size() as u32));

/// The data ranges, in the order of [`FORMATS`].
static DATA_RANGES: [KS_DATARANGE_VIDEO; 4] = [
    FORMATS[0].data_range(),
    FORMATS[1].data_range(),
    FORMATS[2].data_range(),
    FORMATS[3].data_range(),
];

/// Pointers to the data ranges, as `KSPIN_DESCRIPTOR.DataRanges` takes them.
// SAFETY: pointers to the immutable `DATA_RANGES`, never written through.
static DATA_RANGE_POINTERS: SyncStatic<[PKSDATARANGE; 4]> = unsafe {
    SyncStatic::new([
        (&raw const DATA_RANGES[0]).cast::<KSDATARANGE>().cast_mut(),
        (&raw const DATA_RANGES[1]).cast::<KSDATARANGE>().cast_mut(),
        (&raw const DATA_RANGES[2]).cast::<KSDATARANGE>().cast_mut(),
        (&raw const DATA_RANGES[3]).cast::<KSDATARANGE>().cast_mut(),
    ])
};

/// The pin's callbacks; its allocator is [`CaptureAllocator`], frame pools within
/// [`CaptureBudget`] over the device's memory or system memory.
// SAFETY: function pointers and a pointer to the library's immutable allocator table.
static PIN_DISPATCH: SyncStatic<KSPIN_DISPATCH> = unsafe {
    SyncStatic::new(KSPIN_DISPATCH {
        Create: Some(pin::create),
        Close: None,
        Process: Some(pin::process),
        Reset: None,
        SetDataFormat: Some(pin::set_data_format),
        SetDeviceState: Some(pin::set_device_state),
        Connect: None,
        Disconnect: None,
        Clock: core::ptr::null(),
        Allocator: dispatch_table::<CaptureAllocator>(),
    })
};

/// The capture pin: video out, source or sink of IRPs, one instance; AVStream builds DMA
/// mappings of its frames (`GENERATE_MAPPINGS`, through the adapter the device registered);
/// processed at PASSIVE_LEVEL when the frame interrupt or the start of RUN asks
/// (`DO_NOT_INITIATE_PROCESSING`: not whenever a frame arrives).
// SAFETY: pointers to the immutable statics of this module and of ks-sys.
static PIN_DESCRIPTORS: SyncStatic<[KSPIN_DESCRIPTOR_EX; 1]> = unsafe {
    SyncStatic::new([KSPIN_DESCRIPTOR_EX {
        Dispatch: PIN_DISPATCH.as_ptr(),
        // No automation table: AVStream answers the allocator framing and stream allocator
        // properties for its pins itself; entries here would override it.
        AutomationTable: core::ptr::null(),
        PinDescriptor: KSPIN_DESCRIPTOR {
            InterfacesCount: 0,
            Interfaces: core::ptr::null(),
            MediumsCount: 0,
            Mediums: core::ptr::null(),
            #[expect(clippy::cast_possible_truncation, reason = "4 ranges")]
            DataRangesCount: FORMATS.len() as u32,
            DataRanges: DATA_RANGE_POINTERS.as_ptr().cast(),
            DataFlow: ks_sys::KSPIN_DATAFLOW_OUT,
            Communication: ks_sys::KSPIN_COMMUNICATION_BOTH,
            Category: &ks_sys::PINNAME_CAPTURE,
            Name: &ks_sys::PINNAME_VIDEO_CAPTURE,
            ConstrainedDataRangesCount: 0,
            ConstrainedDataRanges: core::ptr::null_mut(),
        },
        Flags: ks_sys::KSPIN_FLAG_GENERATE_MAPPINGS | ks_sys::KSPIN_FLAG_DO_NOT_INITIATE_PROCESSING,
        InstancesPossible: 1,
        InstancesNecessary: 1,
        AllocatorFraming: CAPTURE_FRAMING.as_raw(),
        IntersectHandler: Some(pin::intersect),
    }])
};

/// Pointers to the 640x480 ranges (the scaler's input) and the 320x240 ones (its output).
// SAFETY: pointers to the immutable `DATA_RANGES`, never written through.
static LARGE_RANGE_POINTERS: SyncStatic<[PKSDATARANGE; 2]> = unsafe {
    SyncStatic::new([
        (&raw const DATA_RANGES[1]).cast::<KSDATARANGE>().cast_mut(),
        (&raw const DATA_RANGES[3]).cast::<KSDATARANGE>().cast_mut(),
    ])
};
// SAFETY: as above.
static SMALL_RANGE_POINTERS: SyncStatic<[PKSDATARANGE; 2]> = unsafe {
    SyncStatic::new([
        (&raw const DATA_RANGES[0]).cast::<KSDATARANGE>().cast_mut(),
        (&raw const DATA_RANGES[2]).cast::<KSDATARANGE>().cast_mut(),
    ])
};

/// A transform pin's callbacks: its context at creation and its format checks; no `Process`
/// (the filter processes); the output pin's allocator, if it has one.
const fn transform_pin_dispatch(
    set_data_format: PFNKSPINSETDATAFORMAT,
    allocator: *const KSALLOCATOR_DISPATCH,
) -> KSPIN_DISPATCH {
    KSPIN_DISPATCH {
        Create: Some(transform::create),
        Close: None,
        Process: None,
        Reset: None,
        SetDataFormat: set_data_format,
        SetDeviceState: None,
        Connect: None,
        Disconnect: None,
        Clock: core::ptr::null(),
        Allocator: allocator,
    }
}

// SAFETY: function pointers only.
static OVERLAY_PIN_DISPATCH: SyncStatic<KSPIN_DISPATCH> = unsafe {
    SyncStatic::new(transform_pin_dispatch(
        Some(transform::set_data_format::<false>),
        core::ptr::null(),
    ))
};
// SAFETY: function pointers only.
static SCALE_INPUT_DISPATCH: SyncStatic<KSPIN_DISPATCH> = unsafe {
    SyncStatic::new(transform_pin_dispatch(
        Some(transform::set_data_format::<true>),
        core::ptr::null(),
    ))
};
// SAFETY: function pointers and a pointer to the library's immutable allocator table.
static SCALE_OUTPUT_DISPATCH: SyncStatic<KSPIN_DISPATCH> = unsafe {
    SyncStatic::new(transform_pin_dispatch(
        Some(transform::set_data_format::<true>),
        dispatch_table::<scale::ScaleAllocator>(),
    ))
};

/// A transform's video pin: in or out, source or sink of IRPs, one instance, needed for the
/// filter to process; default processing flags (the filter processes when both pins have a
/// frame).
const fn transform_pin(
    dispatch: *const KSPIN_DISPATCH,
    flow: ks_sys::KSPIN_DATAFLOW,
    ranges: (*const PKSDATARANGE, u32),
    framing: *const ks_sys::KSALLOCATOR_FRAMING_EX,
    intersect: PFNKSINTERSECTHANDLEREX,
) -> KSPIN_DESCRIPTOR_EX {
    KSPIN_DESCRIPTOR_EX {
        Dispatch: dispatch,
        // As the capture pin: AVStream answers the allocator properties itself.
        AutomationTable: core::ptr::null(),
        PinDescriptor: KSPIN_DESCRIPTOR {
            InterfacesCount: 0,
            Interfaces: core::ptr::null(),
            MediumsCount: 0,
            Mediums: core::ptr::null(),
            DataRangesCount: ranges.1,
            DataRanges: ranges.0,
            DataFlow: flow,
            Communication: ks_sys::KSPIN_COMMUNICATION_BOTH,
            Category: core::ptr::null(),
            Name: core::ptr::null(),
            ConstrainedDataRangesCount: 0,
            ConstrainedDataRanges: core::ptr::null_mut(),
        },
        Flags: 0,
        InstancesPossible: 1,
        InstancesNecessary: 1,
        AllocatorFraming: framing,
        IntersectHandler: intersect,
    }
}

/// The overlay's pins, [`transform::INPUT`] then [`transform::OUTPUT`], with the same framing.
// SAFETY: pointers to the immutable statics of this module and of the overlay.
static OVERLAY_PINS: SyncStatic<[KSPIN_DESCRIPTOR_EX; 2]> = unsafe {
    #[expect(clippy::cast_possible_truncation, reason = "4 ranges")]
    let ranges = (DATA_RANGE_POINTERS.as_ptr().cast::<PKSDATARANGE>(), FORMATS.len() as u32);
    let framing = overlay::FRAMING.as_raw();
    SyncStatic::new([
        transform_pin(
            OVERLAY_PIN_DISPATCH.as_ptr(),
            ks_sys::KSPIN_DATAFLOW_IN,
            ranges,
            framing,
            Some(transform::intersect::<false>),
        ),
        transform_pin(
            OVERLAY_PIN_DISPATCH.as_ptr(),
            ks_sys::KSPIN_DATAFLOW_OUT,
            ranges,
            framing,
            Some(transform::intersect::<false>),
        ),
    ])
};

/// The scaler's pins: 640x480 in, 320x240 out, the output with its own allocator.
// SAFETY: pointers to the immutable statics of this module and of the scaler.
static SCALE_PINS: SyncStatic<[KSPIN_DESCRIPTOR_EX; 2]> = unsafe {
    SyncStatic::new([
        transform_pin(
            SCALE_INPUT_DISPATCH.as_ptr(),
            ks_sys::KSPIN_DATAFLOW_IN,
            (LARGE_RANGE_POINTERS.as_ptr().cast::<PKSDATARANGE>(), 2),
            scale::INPUT_FRAMING.as_raw(),
            Some(transform::intersect::<true>),
        ),
        transform_pin(
            SCALE_OUTPUT_DISPATCH.as_ptr(),
            ks_sys::KSPIN_DATAFLOW_OUT,
            (SMALL_RANGE_POINTERS.as_ptr().cast::<PKSDATARANGE>(), 2),
            scale::OUTPUT_FRAMING.as_raw(),
            Some(transform::intersect::<true>),
        ),
    ])
};

// SAFETY: function pointers only.
static OVERLAY_DISPATCH: SyncStatic<KSFILTER_DISPATCH> = unsafe {
    SyncStatic::new(KSFILTER_DISPATCH {
        Create: None,
        Close: None,
        Process: Some(overlay::process),
        Reset: None,
    })
};
// SAFETY: function pointers only.
static SCALE_DISPATCH: SyncStatic<KSFILTER_DISPATCH> = unsafe {
    SyncStatic::new(KSFILTER_DISPATCH {
        Create: None,
        Close: None,
        Process: Some(scale::process),
        Reset: None,
    })
};

/// The transforms' categories.
static TRANSFORM_CATEGORIES: [GUID; 2] =
    [ks_sys::KSCATEGORY_VIDEO, ks_sys::KSCATEGORY_DATATRANSFORM];

/// A transform filter: two pins, filter-centric processing at PASSIVE_LEVEL.
const fn transform_filter(
    dispatch: *const KSFILTER_DISPATCH,
    pins: *const KSPIN_DESCRIPTOR_EX,
) -> KSFILTER_DESCRIPTOR {
    KSFILTER_DESCRIPTOR {
        Dispatch: dispatch,
        AutomationTable: core::ptr::null(),
        Version: ks_sys::KSFILTER_DESCRIPTOR_VERSION,
        Flags: 0,
        ReferenceGuid: &ks_sys::KSNAME_Filter,
        PinDescriptorsCount: 2,
        #[expect(clippy::cast_possible_truncation, reason = "136 bytes")]
        PinDescriptorSize: size_of::<KSPIN_DESCRIPTOR_EX>() as u32,
        PinDescriptors: pins,
        #[expect(clippy::cast_possible_truncation, reason = "2 categories")]
        CategoriesCount: TRANSFORM_CATEGORIES.len() as u32,
        Categories: TRANSFORM_CATEGORIES.as_ptr(),
        NodeDescriptorsCount: 0,
        NodeDescriptorSize: 0,
        NodeDescriptors: core::ptr::null(),
        ConnectionsCount: 0,
        Connections: core::ptr::null(),
        ComponentId: core::ptr::null(),
    }
}

/// The overlay filter ([`overlay`]).
// SAFETY: pointers to the immutable statics of this module and of ks-sys.
pub static OVERLAY_FILTER_DESCRIPTOR: SyncStatic<KSFILTER_DESCRIPTOR> = unsafe {
    SyncStatic::new(transform_filter(OVERLAY_DISPATCH.as_ptr(), OVERLAY_PINS.as_ptr().cast()))
};

/// The scaling filter ([`scale`]).
// SAFETY: pointers to the immutable statics of this module and of ks-sys.
pub static SCALE_FILTER_DESCRIPTOR: SyncStatic<KSFILTER_DESCRIPTOR> = unsafe {
    SyncStatic::new(transform_filter(SCALE_DISPATCH.as_ptr(), SCALE_PINS.as_ptr().cast()))
};

/// The filter's categories.
static CATEGORIES: [GUID; 3] =
    [ks_sys::KSCATEGORY_VIDEO, ks_sys::KSCATEGORY_CAPTURE, ks_sys::KSCATEGORY_VIDEO_CAMERA];

/// The capture filter: one pin, default topology, no filter callbacks (the pin does the work).
// SAFETY: pointers to the immutable statics of this module and of ks-sys.
pub static FILTER_DESCRIPTOR: SyncStatic<KSFILTER_DESCRIPTOR> = unsafe {
    SyncStatic::new(KSFILTER_DESCRIPTOR {
        Dispatch: core::ptr::null(),
        AutomationTable: core::ptr::null(),
        Version: ks_sys::KSFILTER_DESCRIPTOR_VERSION,
        Flags: 0,
        ReferenceGuid: &ks_sys::KSNAME_Filter,
        PinDescriptorsCount: 1,
        #[expect(clippy::cast_possible_truncation, reason = "136 bytes")]
        PinDescriptorSize: size_of::<KSPIN_DESCRIPTOR_EX>() as u32,
        PinDescriptors: PIN_DESCRIPTORS.as_ptr().cast(),
        #[expect(clippy::cast_possible_truncation, reason = "3 categories")]
        CategoriesCount: CATEGORIES.len() as u32,
        Categories: CATEGORIES.as_ptr(),
        NodeDescriptorsCount: 0,
        NodeDescriptorSize: 0,
        NodeDescriptors: core::ptr::null(),
        ConnectionsCount: 0,
        Connections: core::ptr::null(),
        ComponentId: core::ptr::null(),
    })
};

// SAFETY: function pointers only.
static DEVICE_DISPATCH: SyncStatic<KSDEVICE_DISPATCH> = unsafe {
    SyncStatic::new(KSDEVICE_DISPATCH {
        Add: Some(device::add),
        Start: Some(device::start),
        PostStart: None,
        QueryStop: Some(device::query_stop),
        CancelStop: None,
        Stop: Some(device::stop),
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

/// The device: its filter factory is made at PnP start, not described here (as in avshws).
// SAFETY: a pointer to the immutable device dispatch above.
pub static DEVICE_DESCRIPTOR: SyncStatic<KSDEVICE_DESCRIPTOR> = unsafe {
    SyncStatic::new(KSDEVICE_DESCRIPTOR {
        Dispatch: DEVICE_DISPATCH.as_ptr(),
        FilterDescriptorsCount: 0,
        FilterDescriptors: core::ptr::null(),
        Version: ks_sys::KSDEVICE_DESCRIPTOR_VERSION,
        Flags: 0,
    })
};

/// The reference strings of the filter factories' interfaces (capture, overlay, scale); the INF
/// registers the same ones.
static REFERENCE_STRINGS: [&[u16]; 3] = [
    &ks_sys::ascii_wide::<7>(b"GLOBAL\0"),
    &ks_sys::ascii_wide::<8>(b"Overlay\0"),
    &ks_sys::ascii_wide::<6>(b"Scale\0"),
];

/// The filters of the device, one factory each, in the order they are created: the capture
/// filter, the overlay, the scaler.
pub static FILTERS: [&SyncStatic<KSFILTER_DESCRIPTOR>; 3] =
    [&FILTER_DESCRIPTOR, &OVERLAY_FILTER_DESCRIPTOR, &SCALE_FILTER_DESCRIPTOR];

/// Creates the filter factories from `created` on ([`FILTERS`]), with the device mutex held;
/// returns how many exist then and the status of the last attempt. PASSIVE_LEVEL.
///
/// # Safety
///
/// `device` is a live device in its start dispatch.
pub(crate) unsafe fn create_filter_factories(
    device: *mut KSDEVICE,
    created: usize,
) -> (usize, NTSTATUS) {
    // SAFETY: a live device (this function's contract).
    unsafe { ks_sys::KsAcquireDevice(device) };
    // SAFETY: as above.
    let device_object = unsafe { crate::ks::device_object(device) };
    let mut count = created;
    let mut status = ks_sys::STATUS_SUCCESS;
    for (filter, reference) in FILTERS.iter().zip(REFERENCE_STRINGS).skip(created) {
        // SAFETY: as above; the descriptor and the reference string are immutable statics; the
        // factory is freed when the device stops (KSCREATE_ITEM_FREEONSTOP).
        status = unsafe {
            ks_sys::KsCreateFilterFactory(
                device_object,
                filter.as_ptr(),
                reference.as_ptr().cast_mut(),
                core::ptr::null_mut(),
                ks_sys::KSCREATE_ITEM_FREEONSTOP,
                None,
                None,
                core::ptr::null_mut(),
            )
        };
        if status < 0 {
            break;
        }
        count += 1;
    }
    // SAFETY: acquired above.
    unsafe { ks_sys::KsReleaseDevice(device) };
    (count, status)
}
