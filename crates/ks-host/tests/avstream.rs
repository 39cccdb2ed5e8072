//! The host's AVStream as a minidriver meets it, through a small probe driver whose callbacks
//! do what a test asks: mutexes that are not recursive and routines that need them held, and the
//! class's property sets merged with a pin's own (the pin's entries win).

// Sizes of KS structures (a few dozen bytes) written into their ULONG fields.
#![expect(clippy::cast_possible_truncation, reason = "structure sizes fit a ULONG")]

use std::sync::atomic::{AtomicU32, Ordering};

use ks_allocator::{
    DEFAULT_DISPATCH, SyncStatic,
    framing::{FramingEx, ItemFlags, MemoryType},
};
use ks_host::{Session, avstream::Driver, property::Client};
use ks_sys::{
    KSAUTOMATION_TABLE, KSDATAFORMAT, KSDATARANGE, KSDEVICE, KSDEVICE_DESCRIPTOR,
    KSDEVICE_DISPATCH, KSFILTER_DESCRIPTOR, KSPIN, KSPIN_DESCRIPTOR, KSPIN_DESCRIPTOR_EX,
    KSPIN_DISPATCH, KSPROPERTY_ITEM, KSPROPERTY_SET, KSSTATE, NTSTATUS, PCM_RESOURCE_LIST, PIRP,
    PKSDATARANGE, PKSIDENTIFIER, PVOID,
};

/// What the probe's callbacks do, set by each test.
static MODE: AtomicU32 = AtomicU32::new(0);
/// `SetDeviceState` takes the pin's control mutex, which AVStream already holds for it.
const REENTER_IN_STATE: u32 = 1;
/// `Start` creates its filter factory without taking the device mutex.
const FACTORY_WITHOUT_MUTEX: u32 = 2;

fn mode(flag: u32) -> bool {
    MODE.load(Ordering::SeqCst) & flag != 0
}

unsafe extern "C" fn start(
    device: *mut KSDEVICE,
    _irp: PIRP,
    _translated: PCM_RESOURCE_LIST,
    _untranslated: PCM_RESOURCE_LIST,
) -> NTSTATUS {
    let locked = !mode(FACTORY_WITHOUT_MUTEX);
    if locked {
        // SAFETY: a live device.
        unsafe { ks_sys::KsAcquireDevice(device) };
    }
    // SAFETY: a live device.
    let fdo = unsafe { (*device).FunctionalDeviceObject };
    // SAFETY: a live device's FDO and a static descriptor.
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
    if locked {
        // SAFETY: acquired above.
        unsafe { ks_sys::KsReleaseDevice(device) };
    }
    status
}

unsafe extern "C" fn set_state(pin: *mut KSPIN, _to: KSSTATE, _from: KSSTATE) -> NTSTATUS {
    if mode(REENTER_IN_STATE) {
        // SAFETY: a live pin; the host records the re-entry.
        unsafe { ks_sys::KsAcquireControl(pin.cast()) };
        // SAFETY: taken above.
        unsafe { ks_sys::KsReleaseControl(pin.cast()) };
    }
    ks_sys::STATUS_SUCCESS
}

/// The pin's own `ALLOCATORFRAMING_EX` handler: a status no class handler returns.
unsafe extern "C" fn own_framing_ex(_irp: PIRP, _request: PKSIDENTIFIER, _data: PVOID) -> NTSTATUS {
    ks_sys::STATUS_NOT_IMPLEMENTED
}

static FRAMING: FramingEx<1> =
    FramingEx::simple(MemoryType::KERNEL_NONPAGED, ItemFlags::SYSTEM_MEMORY, 2, 0, 4096, 4096);

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
        Process: None,
        Reset: None,
        SetDataFormat: None,
        SetDeviceState: Some(set_state),
        Connect: None,
        Disconnect: None,
        Clock: std::ptr::null(),
        Allocator: DEFAULT_DISPATCH,
    })
};

// SAFETY: a function pointer and NULL pointers.
static OWN_ITEMS: SyncStatic<[KSPROPERTY_ITEM; 1]> = unsafe {
    SyncStatic::new([KSPROPERTY_ITEM {
        PropertyId: ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
        GetPropertyHandler: Some(own_framing_ex),
        MinProperty: 24,
        MinData: 0,
        SetPropertyHandler: None,
        Values: std::ptr::null(),
        RelationsCount: 0,
        Relations: std::ptr::null(),
        SupportHandler: None,
        SerializedSize: 0,
    }])
};

// SAFETY: pointers to immutable statics.
static OWN_SETS: SyncStatic<[KSPROPERTY_SET; 1]> = unsafe {
    SyncStatic::new([KSPROPERTY_SET {
        Set: &ks_sys::KSPROPSETID_Connection,
        PropertiesCount: 1,
        PropertyItem: OWN_ITEMS.as_ptr().cast(),
        FastIoCount: 0,
        FastIoTable: std::ptr::null(),
    }])
};

// SAFETY: a pointer to the immutable sets above.
static OWN_TABLE: SyncStatic<KSAUTOMATION_TABLE> = unsafe {
    SyncStatic::new(KSAUTOMATION_TABLE {
        PropertySetsCount: 1,
        PropertyItemSize: size_of::<KSPROPERTY_ITEM>() as u32,
        PropertySets: OWN_SETS.as_ptr().cast(),
        MethodSetsCount: 0,
        MethodItemSize: 0,
        MethodSets: std::ptr::null(),
        EventSetsCount: 0,
        EventItemSize: 0,
        EventSets: std::ptr::null(),
    })
};

const fn pin(table: *const KSAUTOMATION_TABLE) -> KSPIN_DESCRIPTOR_EX {
    KSPIN_DESCRIPTOR_EX {
        Dispatch: PIN_DISPATCH.as_ptr(),
        AutomationTable: table,
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
        Flags: 0,
        InstancesPossible: 1,
        InstancesNecessary: 0,
        AllocatorFraming: FRAMING.as_raw(),
        IntersectHandler: None,
    }
}

/// Pin 0 has no automation table; pin 1 answers `ALLOCATORFRAMING_EX` itself.
// SAFETY: pointers to immutable statics.
static PINS: SyncStatic<[KSPIN_DESCRIPTOR_EX; 2]> =
    unsafe { SyncStatic::new([pin(std::ptr::null()), pin(OWN_TABLE.as_ptr())]) };

// SAFETY: pointers to immutable statics.
static FILTER: SyncStatic<KSFILTER_DESCRIPTOR> = unsafe {
    SyncStatic::new(KSFILTER_DESCRIPTOR {
        Dispatch: std::ptr::null(),
        AutomationTable: std::ptr::null(),
        Version: ks_sys::KSFILTER_DESCRIPTOR_VERSION,
        Flags: 0,
        ReferenceGuid: &ks_sys::KSNAME_Filter,
        PinDescriptorsCount: 2,
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
        Stop: None,
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
        SampleSize: 0,
        Reserved: 0,
        MajorFormat: ks_sys::KSDATAFORMAT_TYPE_VIDEO,
        SubFormat: ks_sys::KSDATAFORMAT_SUBTYPE_YUY2,
        Specifier: ks_sys::KSDATAFORMAT_SPECIFIER_VIDEOINFO,
    };
    // SAFETY: plain data, no padding.
    unsafe { std::slice::from_raw_parts((&raw const format).cast::<u8>(), size_of_val(&format)) }
        .to_vec()
}

fn property(set: &ks_sys::GUID, id: u32) -> Vec<u8> {
    ks_host::property::request_bytes(set, id, ks_sys::KSPROPERTY_TYPE_GET)
}

/// Review finding 7: the host's mutexes were recursive, so a minidriver that took one AVStream
/// already holds for it passed every test and deadlocked on Windows. Now it is a violation
/// naming the mutex.
#[test]
fn taking_a_mutex_avstream_holds_is_a_violation() {
    let session = Session::begin();
    MODE.store(REENTER_IN_STATE, Ordering::SeqCst);
    {
        // SAFETY: the probe's entry point; its descriptors are statics.
        let driver = unsafe { Driver::load(driver_entry) }.unwrap();
        let device = driver.add_device().unwrap();
        let filter = device.open_filter(0).unwrap();
        let pin = filter.create_pin(0, &format()).unwrap();
        let sink = FramingEx::simple(
            MemoryType::DONT_CARE,
            ItemFlags::PREFERENCES_ONLY,
            0,
            0,
            1,
            u32::MAX,
        );
        pin.connect(&sink.view(), Box::new(|_| {})).unwrap();
        pin.set_state(ks_sys::KSSTATE_ACQUIRE).unwrap();
        pin.set_state(ks_sys::KSSTATE_STOP).unwrap();
    }
    MODE.store(0, Ordering::SeqCst);
    let violations = session.take_violations();
    assert_eq!(violations.len(), 2, "one per state step: {violations:?}");
    for violation in violations {
        assert_eq!(violation.routine, "KsAcquireControl");
        assert!(violation.detail.contains("already holds the filter control mutex"), "{violation}");
    }
}

/// Review finding 7: AVStream does not hold the device mutex across Start (the host did), and
/// `KsCreateFilterFactory` needs it: a driver that creates its factory without taking it is a
/// violation; one that takes it (as the sample and avshws do) is not.
#[test]
fn a_filter_factory_needs_the_device_mutex() {
    let session = Session::begin();
    for (flags, expected) in [(0, 0), (FACTORY_WITHOUT_MUTEX, 1)] {
        MODE.store(flags, Ordering::SeqCst);
        // SAFETY: the probe's entry point; its descriptors are statics.
        let driver = unsafe { Driver::load(driver_entry) }.unwrap();
        let device = driver.add_device().unwrap();
        assert_eq!(device.factories(), 1);
        drop(device);
        let violations = session.take_violations();
        assert_eq!(violations.len(), expected, "{violations:?}");
        if let Some(violation) = violations.first() {
            assert_eq!(violation.routine, "KsCreateFilterFactory");
            assert!(violation.detail.contains("needs the device mutex"), "{violation}");
        }
    }
    MODE.store(0, Ordering::SeqCst);
}

/// Review finding 7: `_KsEdit` (and `KsAddItemToObjectBag`) need the mutex of the bag: a pin's
/// bag is its filter's control mutex's.
#[test]
fn editing_a_pin_s_descriptor_needs_the_filter_control_mutex() {
    let session = Session::begin();
    // SAFETY: the probe's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(driver_entry) }.unwrap();
    let device = driver.add_device().unwrap();
    let filter = device.open_filter(0).unwrap();
    let pin = filter.create_pin(0, &format()).unwrap();
    let raw = pin.as_ptr();
    // SAFETY: a live pin.
    let bag = unsafe { (*raw).Bag };
    // SAFETY: as above: the slot of its descriptor.
    let slot = unsafe { &raw mut (*raw).Descriptor }.cast::<PVOID>();
    let size = size_of::<KSPIN_DESCRIPTOR_EX>() as u32;
    // SAFETY: the pin's bag and the slot of its descriptor, `size` bytes.
    let status = unsafe { ks_sys::_KsEdit(bag, slot, size, size, 0x7365_6b50) };
    assert_eq!(status, ks_sys::STATUS_SUCCESS);
    let violations = session.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].detail.contains("needs the filter control mutex"), "{}", violations[0]);
    // SAFETY: a live pin.
    unsafe { ks_sys::KsAcquireControl(raw.cast()) };
    // SAFETY: as above; now the descriptor is already the pin's own copy.
    let status = unsafe { ks_sys::_KsEdit(bag, slot, size, size, 0x7365_6b50) };
    // SAFETY: taken above.
    unsafe { ks_sys::KsReleaseControl(raw.cast()) };
    assert_eq!(status, ks_sys::STATUS_SUCCESS);
    assert!(session.take_violations().is_empty());
}

/// Review finding 2: the host answered a pin's property sets only from its own table. Now the
/// class's allocator properties are there for every pin, and a pin's own entry overrides the
/// class's for that property alone.
#[test]
fn the_class_answers_allocator_properties_unless_the_pin_overrides_them() {
    let _session = Session::begin();
    // SAFETY: the probe's entry point; its descriptors are statics.
    let driver = unsafe { Driver::load(driver_entry) }.unwrap();
    let device = driver.add_device().unwrap();
    let filter = device.open_filter(0).unwrap();
    let framing_ex = property(
        &ks_sys::KSPROPSETID_Connection,
        ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
    );
    let legacy =
        property(&ks_sys::KSPROPSETID_Connection, ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING);
    let stream = property(&ks_sys::KSPROPSETID_Stream, ks_sys::KSPROPERTY_STREAM_ALLOCATOR);
    for id in [0, 1] {
        let pin = filter.create_pin(id, &format()).unwrap();
        let mut value = [0u8; 112];
        let reply = pin.property(&framing_ex, &mut value, Client::Native);
        if id == 0 {
            assert_eq!((reply.status, reply.information), (ks_sys::STATUS_SUCCESS, 112));
            let mut expected = [0u8; 112];
            FRAMING.encode(&mut expected).unwrap();
            assert_eq!(value, expected);
        } else {
            assert_eq!(reply.status, ks_sys::STATUS_NOT_IMPLEMENTED, "the pin's own entry wins");
        }
        // The properties the pin does not define still come from the class.
        let reply = pin.property(&legacy, &mut [0u8; 24], Client::Native);
        assert_eq!((reply.status, reply.information), (ks_sys::STATUS_SUCCESS, 24), "pin {id}");
        let reply = pin.property(&stream, &mut [1u8; 8], Client::Native);
        assert_eq!((reply.status, reply.information), (ks_sys::STATUS_SUCCESS, 8), "pin {id}");
        drop(pin);
    }
}
