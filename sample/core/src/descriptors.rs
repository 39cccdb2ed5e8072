//! The static descriptors AVStream builds the device, filter and pin from.

use ks_allocator::{Budget, PoolConfig, SyncStatic, dispatch_table, framing::FramingEx};
use ks_sys::{
    GUID, KS_DATARANGE_VIDEO, KSDATARANGE, KSDEVICE, KSDEVICE_DESCRIPTOR, KSDEVICE_DISPATCH,
    KSFILTER_DESCRIPTOR, KSPIN_DESCRIPTOR, KSPIN_DESCRIPTOR_EX, KSPIN_DISPATCH, NTSTATUS,
    PKSDATARANGE,
};

use crate::{
    CaptureAllocator, device,
    format::{FORMATS, MAX_FRAME_BYTES},
    pin,
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

/// The reference string of the filter factory's interfaces; the INF registers the same one.
static REFERENCE_STRING: [u16; 7] = ks_sys::ascii_wide(b"GLOBAL\0");

/// Creates the capture filter factory on a device, with the device mutex held. PASSIVE_LEVEL.
///
/// # Safety
///
/// `device` is a live device in its start dispatch.
pub(crate) unsafe fn create_filter_factory(device: *mut KSDEVICE) -> NTSTATUS {
    // SAFETY: a live device (this function's contract).
    unsafe { ks_sys::KsAcquireDevice(device) };
    // SAFETY: as above.
    let device_object = unsafe { crate::ks::device_object(device) };
    // SAFETY: as above; the descriptor and the reference string are immutable statics; the
    // factory is freed when the device stops (KSCREATE_ITEM_FREEONSTOP).
    let status = unsafe {
        ks_sys::KsCreateFilterFactory(
            device_object,
            FILTER_DESCRIPTOR.as_ptr(),
            REFERENCE_STRING.as_ptr().cast_mut(),
            core::ptr::null_mut(),
            ks_sys::KSCREATE_ITEM_FREEONSTOP,
            None,
            None,
            core::ptr::null_mut(),
        )
    };
    // SAFETY: acquired above.
    unsafe { ks_sys::KsReleaseDevice(device) };
    status
}
