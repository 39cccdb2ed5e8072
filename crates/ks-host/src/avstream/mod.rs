//! AVStream, as much of it as a minidriver like the sample needs, driven the way ks.sys drives
//! it: the driver's `DriverEntry` hands its device descriptor to `KsInitializeDriver`; a
//! [`Device`] is added and started through the descriptor's PnP callbacks and makes its filter
//! factories, and may be stopped and started again with filters and pins open
//! ([`Device::pnp_stop`], [`Device::pnp_start`]); a [`Filter`] opens on a factory; a [`Pin`] is
//! created with a format the pin's `SetDataFormat` accepts against one of its data ranges,
//! connected to a kernel-mode pin's framing (the allocator negotiated with
//! [`ks_allocator::negotiate()`]) or to a user-mode client that reads with its own buffers
//! ([`Pin::connect_client`]), and moved through the states one step at a time. Out of STOP, its
//! pipe queues frames from their source (the pin's allocator, the downstream side's, or the
//! client's buffers), mapped for DMA when the pin generates mappings; the driver fills them
//! through the leading-edge stream pointer and its clones, and completed frames reach a consumer
//! on a thread of their own, which gives them back to be replaced.
//!
//! IRQL as on Windows: PnP, create, close, format, state and intersection callbacks at
//! PASSIVE_LEVEL with the object's control mutex held where AVStream holds it (the filter
//! control mutex around filter and pin create and close, format, state and intersection
//! callbacks; not the device mutex around Start, nor any mutex around a minidriver's property
//! handlers); allocator frames at DISPATCH_LEVEL; processing at DISPATCH_LEVEL for pins with
//! `KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING`, PASSIVE_LEVEL otherwise, with the pin's processing
//! mutex held. The mutexes are not recursive, as AVStream's are not (see `object`).
//!
//! Frames reaching a pin-centric pin's queue do not initiate processing: a pin processes when
//! it calls `KsPinAttemptProcessing` (as pins with `KSPIN_FLAG_DO_NOT_INITIATE_PROCESSING`, like
//! the sample's capture pin, do from their hardware's DPC). A filter-centric filter
//! (`KSFILTER_DISPATCH.Process`) processes when a frame reaches any of its pins and every pin
//! has one (`centric`).
//!
//! Filters of loaded drivers chain into a [`graph::Graph`]: output pins connected to input pins
//! in the formats their handlers agree on, one allocator per pipe as the library plans them,
//! frames delivered from pin to pin (input pins' queues, in-place transforms' output pins) and
//! back to their allocators.
//!
//! Besides a pin's own automation table, the host answers the allocator properties AVStream
//! answers for every pin (`class`), and a minidriver's own entries override them as they do on
//! Windows. Format changes on a pin that exists go through its `SetDataFormat`
//! ([`Pin::set_data_format`]). Data intersection takes requests as clients send them
//! ([`Filter::data_intersection`], [`IntersectionRequest`]).
//!
//! What the host does not model: PnP and create IRPs beyond an empty one (the IRP passed to
//! `Start`, `Stop` and `Remove` is NULL), surprise removal and removal with pins open (a device
//! is removed when it is dropped, after its filters), clocks, events, methods, topology, graphs
//! other than chains (splitters, mixers), gates (`KsPinAttachAndGate`), the trailing edge,
//! frame cancellation, and power. The routines behind those are absent.

mod centric;
mod class;
pub mod graph;
mod object;
mod stream;

use std::{
    cell::UnsafeCell,
    ptr::NonNull,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicI32, Ordering},
        mpsc,
    },
    thread::{JoinHandle, ThreadId},
};

use ks_allocator::{
    AllocatorPlan, DefaultAllocator, NegotiationError, dispatch_table,
    framing::FramingExView,
    negotiate::{ClientError, ClientPlan, Side},
};
use ks_sys::{
    KSALLOCATOR_DISPATCH, KSDATARANGE, KSDEVICE, KSDEVICE_DESCRIPTOR, KSFILTER,
    KSFILTER_DESCRIPTOR, KSFILTERFACTORY, KSPIN, KSPIN_DESCRIPTOR_EX, KSSTATE, NTSTATUS,
    PDEVICE_OBJECT, PDRIVER_OBJECT, PFNKSFILTERFACTORYPOWER, PKSFILTERFACTORY,
    PSECURITY_DESCRIPTOR, PUNICODE_STRING, PWSTR, STATUS_INVALID_DEVICE_STATE,
    STATUS_INVALID_PARAMETER, STATUS_NO_MATCH, STATUS_SUCCESS, ULONG,
};

use crate::irql::{DISPATCH_LEVEL, PASSIVE_LEVEL};

pub use stream::{Completed, Consumer, fail_leading_edge_locks, failed_leading_edge_locks};

use object::{Bag, ControlMutex, Held, Kind, Object};

/// A driver's entry point.
pub type DriverEntry = unsafe extern "system" fn(PDRIVER_OBJECT, PUNICODE_STRING) -> NTSTATUS;

/// Storage for an opaque kernel object the host passes by pointer only.
#[repr(C, align(16))]
struct Opaque<const N: usize>([u8; N]);

/// The size of a `DRIVER_OBJECT` and of a `DEVICE_OBJECT` on x64 (nt-abi.json).
const DRIVER_OBJECT_SIZE: usize = 336;
const DEVICE_OBJECT_SIZE: usize = 328;

/// Descriptors handed to `KsInitializeDriver`, by driver object, until [`Driver::load`] takes
/// them.
static INITIALIZED: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());
/// Started devices, by functional device object, for `KsCreateFilterFactory`.
static DEVICES: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

/// `KsInitializeDriver`: records the driver's device descriptor. PASSIVE_LEVEL.
///
/// # Safety
///
/// `Descriptor` is NULL or a device descriptor that lives as long as the driver.
// SAFETY: no other symbol of a host process is named `KsInitializeDriver`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsInitializeDriver(
    DriverObject: PDRIVER_OBJECT,
    _RegistryPathName: PUNICODE_STRING,
    Descriptor: *const KSDEVICE_DESCRIPTOR,
) -> NTSTATUS {
    crate::verifier::require_irql_at_most("KsInitializeDriver", PASSIVE_LEVEL);
    if DriverObject.is_null() || Descriptor.is_null() {
        return STATUS_INVALID_PARAMETER;
    }
    crate::lock(&INITIALIZED).push((DriverObject.addr(), Descriptor.addr()));
    STATUS_SUCCESS
}

/// A loaded driver: its device descriptor.
pub struct Driver {
    descriptor: &'static KSDEVICE_DESCRIPTOR,
    _object: Box<Opaque<DRIVER_OBJECT_SIZE>>,
}

impl Driver {
    /// Calls `DriverEntry` with a driver object and a registry path, as the I/O manager does,
    /// and takes the device descriptor it gave `KsInitializeDriver`. PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// `DriverEntry`'s failure status, or `STATUS_INVALID_DEVICE_STATE` if it succeeded without
    /// calling `KsInitializeDriver`.
    ///
    /// # Safety
    ///
    /// `entry` is an AVStream driver's entry point whose descriptor, and everything it points
    /// at, lives for the rest of the process (a driver's statics).
    pub unsafe fn load(entry: DriverEntry) -> Result<Self, NTSTATUS> {
        let mut object = Box::new(Opaque([0; DRIVER_OBJECT_SIZE]));
        let driver: PDRIVER_OBJECT = (&raw mut *object).cast();
        let mut path: Vec<u16> =
            "\\Registry\\Machine\\System\\CurrentControlSet\\Services\\ks_sample"
                .encode_utf16()
                .collect();
        let length = u16::try_from(path.len() * 2).unwrap_or(u16::MAX);
        let mut name = ks_sys::UNICODE_STRING {
            Length: length,
            MaximumLength: length,
            Buffer: path.as_mut_ptr(),
        };
        // SAFETY: the driver's entry point with a driver object and a registry path that live
        // through the call (this function's contract).
        let status = unsafe { entry(driver, &raw mut name) };
        let mut initialized = crate::lock(&INITIALIZED);
        let recorded = initialized.iter().position(|(d, _)| *d == driver.addr());
        let descriptor = recorded.map(|index| initialized.swap_remove(index).1);
        drop(initialized);
        if status < 0 {
            return Err(status);
        }
        let descriptor = descriptor.ok_or(STATUS_INVALID_DEVICE_STATE)?;
        // SAFETY: the descriptor the driver passed, a static (this function's contract).
        let descriptor =
            unsafe { &*std::ptr::with_exposed_provenance::<KSDEVICE_DESCRIPTOR>(descriptor) };
        Ok(Self { descriptor, _object: object })
    }

    /// Adds a device and starts it, as PnP does for a device the driver's INF matched:
    /// `Add`, then `Start`, then a filter factory for each filter descriptor of the device
    /// descriptor. PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// The failure status of `Add`, `Start` or a filter factory.
    pub fn add_device(&self) -> Result<Device, NTSTATUS> {
        crate::verifier::require_irql_at_most("AddDevice", PASSIVE_LEVEL);
        Device::add(self.descriptor)
    }
}

/// An object the host made: its header, public structure and state, at a fixed address from
/// creation to drop.
struct Owned<P, S>(NonNull<Object<P, S>>);

impl<P, S> Owned<P, S> {
    fn new(
        kind: Kind,
        public: P,
        state: S,
        parent: *mut std::ffi::c_void,
        device: *mut KSDEVICE,
    ) -> Self
    where
        S: HasBag,
    {
        let object = NonNull::from(Box::leak(Box::new(Object::new(kind, public, state))));
        let raw = object.as_ptr();
        // SAFETY: the object was just leaked and nothing else refers to it yet.
        let header = unsafe { &mut (*raw).header };
        header.parent = parent;
        // A device is its own device; a detached pin has none.
        // SAFETY: as above; only the field's address is taken.
        let own = unsafe { &raw mut (*raw).public };
        header.device = match (kind, device.is_null()) {
            (Kind::Device, _) => own.cast(),
            _ => device,
        };
        // SAFETY: as above; the state lives until `drop`.
        let state = unsafe { &(*raw).state };
        header.bag = state.bag();
        header.control = state.control();
        // SAFETY: the bag lives in the object's state, at its final address.
        unsafe { (*header.bag).bind(header.control) };
        object::register(own.cast());
        Self(object)
    }

    /// The public structure, what the driver gets.
    fn public(&self) -> *mut P {
        // SAFETY: the object is live until drop; only the field's address is taken.
        unsafe { &raw mut (*self.0.as_ptr()).public }
    }

    /// The public structure, for the host to fill in before any driver has it.
    fn public_mut(&mut self) -> &mut P {
        // SAFETY: the object is live until drop, and `&mut self` means no driver has been given
        // the public structure yet (the host calls this only while making the object).
        unsafe { &mut (*self.0.as_ptr()).public }
    }

    fn state(&self) -> &S {
        // SAFETY: the object is live until drop, and the host only reads its state through
        // shared references (interior mutability for what changes).
        unsafe { &(*self.0.as_ptr()).state }
    }

    /// The state, for the host to complete before any driver or thread has the object.
    fn state_mut(&mut self) -> &mut S {
        // SAFETY: as `public_mut`: `&mut self` while the host is still making the object.
        unsafe { &mut (*self.0.as_ptr()).state }
    }
}

impl<P, S> Drop for Owned<P, S> {
    fn drop(&mut self) {
        object::unregister(self.public().cast());
        // SAFETY: leaked from a Box in `new`, taken back once.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// What every object state has: a bag and a control mutex.
trait HasBag {
    fn bag(&self) -> *const Bag;
    fn control(&self) -> *const ControlMutex;
}

pub(crate) struct DeviceState {
    bag: Bag,
    mutex: ControlMutex,
    fdo: Box<Opaque<DEVICE_OBJECT_SIZE>>,
    /// The device's PDO, as its bus driver would have made it.
    pdo: crate::dma::PhysicalDevice,
    /// The DMA adapter the driver registered (`KsDeviceRegisterAdapterObject`).
    adapter: Mutex<Option<stream::Registered>>,
    factories: Mutex<Vec<Owned<KSFILTERFACTORY, FactoryState>>>,
}

impl HasBag for DeviceState {
    fn bag(&self) -> *const Bag {
        &raw const self.bag
    }
    fn control(&self) -> *const ControlMutex {
        &raw const self.mutex
    }
}

struct FactoryState {
    bag: Bag,
    /// The device's mutex.
    control: *const ControlMutex,
    reference: Vec<u16>,
}

impl HasBag for FactoryState {
    fn bag(&self) -> *const Bag {
        &raw const self.bag
    }
    fn control(&self) -> *const ControlMutex {
        self.control
    }
}

/// A started device.
pub struct Device {
    object: Owned<KSDEVICE, DeviceState>,
    /// `Add` succeeded (so `Remove` is due).
    added: bool,
    /// `Start` succeeded (so `Stop` is due).
    started: AtomicBool,
}

impl Device {
    fn add(descriptor: &'static KSDEVICE_DESCRIPTOR) -> Result<Self, NTSTATUS> {
        let state = DeviceState {
            bag: Bag::default(),
            mutex: ControlMutex::new("device mutex"),
            fdo: Box::new(Opaque([0; DEVICE_OBJECT_SIZE])),
            pdo: crate::dma::PhysicalDevice::new(),
            adapter: Mutex::new(None),
            factories: Mutex::new(Vec::new()),
        };
        // SAFETY: KSDEVICE is plain data: NULL pointers and zero numbers are valid.
        let public: KSDEVICE = unsafe { std::mem::zeroed() };
        let mut object =
            Owned::new(Kind::Device, public, state, std::ptr::null_mut(), std::ptr::null_mut());
        let fdo: PDEVICE_OBJECT = (&raw const *object.state().fdo).cast_mut().cast();
        let bag = object.state().bag().cast_mut().cast();
        let object_pdo = object.state().pdo.as_ptr();
        let public = object.public_mut();
        public.Descriptor = descriptor;
        public.Bag = bag;
        public.FunctionalDeviceObject = fdo;
        // No filter driver sits between the two: the next device is the PDO.
        public.PhysicalDeviceObject = object_pdo;
        public.NextDeviceObject = object_pdo;
        let device = object.public();
        crate::lock(&DEVICES).push((fdo.addr(), device.addr()));
        let mut this = Self { object, added: false, started: AtomicBool::new(false) };
        // SAFETY: the descriptor's dispatch table is the driver's static.
        let dispatch = unsafe { descriptor.Dispatch.as_ref() };
        if let Some(add) = dispatch.and_then(|d| d.Add) {
            // SAFETY: the driver's Add callback with its new device, at PASSIVE_LEVEL.
            let status = unsafe { add(device) };
            if status < 0 {
                return Err(status);
            }
        }
        this.added = true;
        // AVStream does not hold the device mutex across Start: a driver that creates filter
        // factories there takes it itself, as KsCreateFilterFactory requires.
        if let Some(start) = dispatch.and_then(|d| d.Start) {
            // SAFETY: the driver's Start callback; no IRP or resources are modelled.
            let status = unsafe {
                start(device, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut())
            };
            if status < 0 {
                return Err(status);
            }
        }
        this.started.store(true, Ordering::Release);
        // SAFETY: the device is live; the driver reads `Started` only in its callbacks.
        unsafe { (*device).Started = 1 };
        let descriptors = if descriptor.FilterDescriptors.is_null() {
            &[][..]
        } else {
            // SAFETY: the descriptor's array of `FilterDescriptorsCount` pointers.
            unsafe {
                std::slice::from_raw_parts(
                    descriptor.FilterDescriptors,
                    descriptor.FilterDescriptorsCount as usize,
                )
            }
        };
        let held = Held::new(&this.object.state().mutex);
        for filter in descriptors {
            // SAFETY: the device's FDO and a filter descriptor of the driver's statics.
            let status = unsafe {
                KsCreateFilterFactory(
                    fdo,
                    *filter,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    0,
                    None,
                    None,
                    std::ptr::null_mut(),
                )
            };
            if status < 0 {
                return Err(status);
            }
        }
        drop(held);
        Ok(this)
    }

    /// PnP stop (a rebalance), while the device's filters and pins may stay open and stream:
    /// the driver's `QueryStop` (a failure vetoes the stop), then its `Stop`; `KSDEVICE.Started`
    /// is cleared, and filters cannot be opened until [`pnp_start`](Self::pnp_start).
    /// PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// `QueryStop`'s failure status (the device stays started), or `STATUS_INVALID_DEVICE_STATE`
    /// if it is not started.
    pub fn pnp_stop(&self) -> Result<(), NTSTATUS> {
        crate::verifier::require_irql_at_most("IRP_MN_STOP_DEVICE", PASSIVE_LEVEL);
        if !self.started.load(Ordering::Acquire) {
            return Err(STATUS_INVALID_DEVICE_STATE);
        }
        let device = self.as_ptr();
        let dispatch = self.dispatch();
        if let Some(query) = dispatch.and_then(|d| d.QueryStop) {
            // SAFETY: the driver's QueryStop callback on its started device.
            let status = unsafe { query(device, std::ptr::null_mut()) };
            if status < 0 {
                return Err(status);
            }
        }
        self.started.store(false, Ordering::Release);
        // SAFETY: the device is live; the driver reads `Started` only in its callbacks.
        unsafe { (*device).Started = 0 };
        if let Some(stop) = dispatch.and_then(|d| d.Stop) {
            // SAFETY: the driver's Stop callback on its started device.
            unsafe { stop(device, std::ptr::null_mut()) };
        }
        Ok(())
    }

    /// PnP start again after [`pnp_stop`](Self::pnp_stop): the driver's `Start` (with
    /// `KSDEVICE.Started` still clear, as AVStream calls it), then `Started` is set. Filters and
    /// pins that stayed open go on. PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// `Start`'s failure status (the device stays stopped), or `STATUS_INVALID_DEVICE_STATE` if
    /// it is started.
    pub fn pnp_start(&self) -> Result<(), NTSTATUS> {
        crate::verifier::require_irql_at_most("IRP_MN_START_DEVICE", PASSIVE_LEVEL);
        if self.started.load(Ordering::Acquire) {
            return Err(STATUS_INVALID_DEVICE_STATE);
        }
        let device = self.as_ptr();
        if let Some(start) = self.dispatch().and_then(|d| d.Start) {
            // SAFETY: the driver's Start callback; no IRP or resources are modelled.
            let status = unsafe {
                start(device, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut())
            };
            if status < 0 {
                return Err(status);
            }
        }
        self.started.store(true, Ordering::Release);
        // SAFETY: as in `pnp_stop`.
        unsafe { (*device).Started = 1 };
        Ok(())
    }

    /// The driver's device dispatch table, if any.
    fn dispatch(&self) -> Option<&'static ks_sys::KSDEVICE_DISPATCH> {
        let device = self.as_ptr();
        // SAFETY: the device's descriptor, a driver static.
        let descriptor = unsafe { (*device).Descriptor };
        // SAFETY: as above; its dispatch table is a driver static too.
        unsafe { descriptor.as_ref() }.and_then(|d| unsafe { d.Dispatch.as_ref() })
    }

    /// The device's public structure.
    #[must_use]
    pub fn as_ptr(&self) -> *mut KSDEVICE {
        self.object.public()
    }

    /// The number of filter factories.
    #[must_use]
    pub fn factories(&self) -> usize {
        crate::lock(&self.object.state().factories).len()
    }

    /// The reference string factory `index` was created with (its interfaces' name), if any.
    #[must_use]
    pub fn factory_reference(&self, index: usize) -> Option<String> {
        let factories = crate::lock(&self.object.state().factories);
        factories.get(index).map(|factory| String::from_utf16_lossy(&factory.state().reference))
    }

    /// Opens a filter on factory `index`, as a client's create request does: a filter object
    /// whose context is the device's, then the filter's `Create` callback. PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_PARAMETER` for no such factory, or the `Create` callback's status.
    pub fn open_filter(&self, index: usize) -> Result<Filter<'_>, NTSTATUS> {
        crate::verifier::require_irql_at_most("IRP_MJ_CREATE", PASSIVE_LEVEL);
        if !self.started.load(Ordering::Acquire) {
            return Err(ks_sys::STATUS_DEVICE_NOT_READY);
        }
        let factories = crate::lock(&self.object.state().factories);
        let factory = factories.get(index).ok_or(STATUS_INVALID_PARAMETER)?;
        let factory_public = factory.public();
        // SAFETY: a live factory made by `KsCreateFilterFactory`.
        let descriptor = unsafe { (*factory_public).FilterDescriptor };
        drop(factories);
        // SAFETY: the driver's static filter descriptor.
        let descriptor: &'static KSFILTER_DESCRIPTOR =
            unsafe { descriptor.as_ref() }.ok_or(STATUS_INVALID_PARAMETER)?;
        let device = self.as_ptr();
        let state = FilterState {
            bag: Bag::default(),
            mutex: ControlMutex::new("filter control mutex"),
            instances: Mutex::new(vec![Vec::new(); descriptor.PinDescriptorsCount as usize]),
            processing: None,
        };
        // SAFETY: KSFILTER is plain data: NULL pointers are valid.
        let public: KSFILTER = unsafe { std::mem::zeroed() };
        let mut object = Owned::new(Kind::Filter, public, state, factory_public.cast(), device);
        // SAFETY: the device is live while `self` is.
        let context = unsafe { (*device).Context };
        let bag = object.state().bag().cast_mut().cast();
        let public = object.public_mut();
        public.Descriptor = descriptor;
        public.Bag = bag;
        public.Context = context;
        let filter = object.public();
        // SAFETY: the driver's static dispatch table, or NULL.
        if unsafe { descriptor.Dispatch.as_ref() }.is_some_and(|d| d.Process.is_some()) {
            if descriptor.Flags & ks_sys::KSFILTER_FLAG_DISPATCH_LEVEL_PROCESSING != 0 {
                crate::verifier::report(
                    "KSFILTER_DESCRIPTOR",
                    "KSFILTER_FLAG_DISPATCH_LEVEL_PROCESSING: the host processes filters at \
                     PASSIVE_LEVEL only"
                        .to_owned(),
                );
            }
            object.state_mut().processing = Some(centric::FilterProcessing::new(filter));
        }
        let mut this =
            Filter { object, descriptor, created: false, _device: std::marker::PhantomData };
        // SAFETY: the driver's static dispatch table, or NULL.
        let dispatch = unsafe { descriptor.Dispatch.as_ref() };
        if let Some(create) = dispatch.and_then(|d| d.Create) {
            let _held = Held::new(&this.object.state().mutex);
            let mut irp = crate::irp::HostIrp::new(crate::irp::Kind::Bare, ks_sys::UserMode, 0, 0);
            // SAFETY: the driver's filter Create callback with its new filter.
            let status = unsafe { create(filter, irp.as_irp()) };
            if status < 0 {
                return Err(status);
            }
        }
        this.created = true;
        Ok(this)
    }
}

impl Drop for Device {
    /// Stops and removes the device: `Stop`, the factories freed, `Remove`, the device's bag.
    /// PASSIVE_LEVEL.
    fn drop(&mut self) {
        let device = self.as_ptr();
        // SAFETY: the device's descriptor, a driver static.
        let descriptor = unsafe { (*device).Descriptor };
        // SAFETY: as above.
        let dispatch = unsafe { descriptor.as_ref() }.and_then(|d| {
            // SAFETY: as above.
            unsafe { d.Dispatch.as_ref() }
        });
        if self.started.load(Ordering::Acquire)
            && let Some(stop) = dispatch.and_then(|d| d.Stop)
        {
            // SAFETY: the driver's Stop callback on its started device.
            unsafe { stop(device, std::ptr::null_mut()) };
        }
        let factories = std::mem::take(&mut *crate::lock(&self.object.state().factories));
        for factory in factories {
            factory.state().bag.free_all();
        }
        if self.added
            && let Some(remove) = dispatch.and_then(|d| d.Remove)
        {
            // SAFETY: the driver's Remove callback on its stopped device.
            unsafe { remove(device, std::ptr::null_mut()) };
        }
        self.object.state().bag.free_all();
        let fdo = (&raw const *self.object.state().fdo).addr();
        crate::lock(&DEVICES).retain(|(d, _)| *d != fdo);
    }
}

/// `KsDeviceRegisterAdapterObject`: the device's DMA adapter, with which AVStream builds the
/// mappings of pins with `KSPIN_FLAG_GENERATE_MAPPINGS`: runs of at most `MaxMappingsByteCount`
/// bytes, `MappingTableStride` bytes apart in the table (at least a `KSMAPPING`, a multiple of
/// 8). A later registration replaces an earlier one. PASSIVE_LEVEL.
///
/// # Safety
///
/// `Device` is a device the host made.
// SAFETY: no other symbol of a host process is named `KsDeviceRegisterAdapterObject`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsDeviceRegisterAdapterObject(
    Device: ks_sys::PKSDEVICE,
    AdapterObject: ks_sys::PADAPTER_OBJECT,
    MaxMappingsByteCount: ULONG,
    MappingTableStride: ULONG,
) {
    const ROUTINE: &str = "KsDeviceRegisterAdapterObject";
    crate::verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    // SAFETY: the caller's contract.
    let Some(device) = (unsafe { object::device_object(Device) }) else {
        crate::verifier::report(ROUTINE, format!("{Device:p} is not a device"));
        return;
    };
    let problem = if crate::dma::map_registers(AdapterObject.cast()).is_none() {
        Some(format!("{AdapterObject:p} is not a live DMA adapter (IoGetDmaAdapter)"))
    } else if MaxMappingsByteCount == 0 {
        Some("MaxMappingsByteCount is 0".to_owned())
    } else if (MappingTableStride as usize) < size_of::<ks_sys::KSMAPPING>()
        || !MappingTableStride.is_multiple_of(8)
    {
        Some(format!(
            "MappingTableStride {MappingTableStride} is not a multiple of 8 of at least a KSMAPPING \
             ({} bytes)",
            size_of::<ks_sys::KSMAPPING>()
        ))
    } else {
        None
    };
    if let Some(problem) = problem {
        crate::verifier::report(ROUTINE, problem);
        return;
    }
    *crate::lock(&device.adapter) = Some(stream::Registered {
        adapter: AdapterObject.addr(),
        max_bytes: MaxMappingsByteCount,
        stride: MappingTableStride,
    });
}

/// `KsCreateFilterFactory`: a filter factory on a device, for a filter descriptor. The
/// security descriptor, create-item flags and power callbacks are accepted and not used.
/// PASSIVE_LEVEL.
///
/// # Safety
///
/// `DeviceObject` is the FDO of a device the host started; `Descriptor` a filter descriptor
/// that lives as long as the driver; `FilterFactory` NULL or writable.
// SAFETY: no other symbol of a host process is named `KsCreateFilterFactory`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsCreateFilterFactory(
    DeviceObject: PDEVICE_OBJECT,
    Descriptor: *const KSFILTER_DESCRIPTOR,
    RefString: PWSTR,
    _SecurityDescriptor: PSECURITY_DESCRIPTOR,
    _CreateItemFlags: ULONG,
    _SleepCallback: PFNKSFILTERFACTORYPOWER,
    _WakeCallback: PFNKSFILTERFACTORYPOWER,
    FilterFactory: *mut PKSFILTERFACTORY,
) -> NTSTATUS {
    const ROUTINE: &str = "KsCreateFilterFactory";
    crate::verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    let device =
        crate::lock(&DEVICES).iter().find(|(fdo, _)| *fdo == DeviceObject.addr()).map(|(_, d)| *d);
    let (Some(device), false) = (device, Descriptor.is_null()) else {
        crate::verifier::report(ROUTINE, format!("{DeviceObject:p} is not a started device's FDO"));
        return STATUS_INVALID_PARAMETER;
    };
    let device = std::ptr::with_exposed_provenance_mut::<KSDEVICE>(device);
    // SAFETY: a live device the host made (found in DEVICES).
    let Some(header) = (unsafe { object::header(device.cast()) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    let state_ptr = std::ptr::from_ref(header).cast::<Object<KSDEVICE, DeviceState>>();
    // SAFETY: a device header starts an `Object<KSDEVICE, DeviceState>`.
    let device_state = unsafe { &(*state_ptr).state };
    device_state.mutex.require_held(ROUTINE, "creating a filter factory");
    let mut reference = Vec::new();
    if !RefString.is_null() {
        for i in 0.. {
            // SAFETY: a NUL-terminated UTF-16 string (this function's contract).
            let unit = unsafe { RefString.wrapping_add(i).read() };
            if unit == 0 {
                break;
            }
            reference.push(unit);
        }
    }
    let state =
        FactoryState { bag: Bag::default(), control: &raw const device_state.mutex, reference };
    // SAFETY: KSFILTERFACTORY is plain data: NULL pointers are valid.
    let public: KSFILTERFACTORY = unsafe { std::mem::zeroed() };
    let mut factory = Owned::new(Kind::Factory, public, state, device.cast(), device);
    let bag = factory.state().bag().cast_mut().cast();
    let public = factory.public_mut();
    public.FilterDescriptor = Descriptor;
    public.Bag = bag;
    let pointer = factory.public();
    crate::lock(&device_state.factories).push(factory);
    if !FilterFactory.is_null() {
        // SAFETY: writable (this function's contract).
        unsafe { FilterFactory.write(pointer) };
    }
    STATUS_SUCCESS
}

pub(crate) struct FilterState {
    bag: Bag,
    mutex: ControlMutex,
    /// The pins open, by pin factory: their public structures' addresses, oldest first.
    instances: Mutex<Vec<Vec<usize>>>,
    /// Its processing, if it is filter-centric (`KSFILTER_DISPATCH.Process`).
    processing: Option<Arc<centric::FilterProcessing>>,
}

impl HasBag for FilterState {
    fn bag(&self) -> *const Bag {
        &raw const self.bag
    }
    fn control(&self) -> *const ControlMutex {
        &raw const self.mutex
    }
}

/// An open filter.
pub struct Filter<'d> {
    object: Owned<KSFILTER, FilterState>,
    descriptor: &'static KSFILTER_DESCRIPTOR,
    /// The `Create` callback succeeded (so `Close` is due).
    created: bool,
    _device: std::marker::PhantomData<&'d Device>,
}

/// The pin descriptor `id` of a filter descriptor.
fn pin_descriptor(
    descriptor: &'static KSFILTER_DESCRIPTOR,
    id: u32,
) -> Option<&'static KSPIN_DESCRIPTOR_EX> {
    let stride = descriptor.PinDescriptorSize as usize;
    if id >= descriptor.PinDescriptorsCount
        || descriptor.PinDescriptors.is_null()
        || stride < size_of::<KSPIN_DESCRIPTOR_EX>()
    {
        return None;
    }
    let address = descriptor.PinDescriptors.wrapping_byte_add(stride * id as usize);
    // SAFETY: `PinDescriptorsCount` descriptors `PinDescriptorSize` bytes apart, driver statics.
    unsafe { address.as_ref() }
}

/// The client ranges of a data-intersection request (a `KSMULTIPLE_ITEM` of ranges, each
/// 8-byte aligned, each followed by its attribute list when its `Flags` say so): each range's
/// offset in `request` and whether it has required attributes; `None` if the request is
/// malformed.
fn client_ranges(request: &[u8]) -> Option<Vec<(usize, bool)>> {
    let word = |at: usize| {
        request.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (size, count) = (word(0)?, word(4)?);
    if size < 8 || size > request.len() || count == 0 {
        return None;
    }
    let mut ranges = Vec::new();
    let mut at: usize = 8;
    for _ in 0..count {
        at = at.checked_add(7)? & !7;
        let range_size = word(at)?;
        let flags = word(at + 4)?;
        if range_size < size_of::<KSDATARANGE>() || at.checked_add(range_size)? > size {
            return None;
        }
        let attributes = flags & ks_sys::KSDATARANGE_ATTRIBUTES as usize != 0;
        let required = flags & ks_sys::KSDATARANGE_REQUIRED_ATTRIBUTES as usize != 0;
        ranges.push((at, required));
        at += range_size;
        if attributes {
            at = at.checked_add(7)? & !7;
            let list_size = word(at)?;
            if list_size < 8 || at.checked_add(list_size)? > size {
                return None;
            }
            at += list_size;
        }
    }
    Some(ranges)
}

/// The part of a `KSPROPERTY_PIN_DATAINTERSECTION` request after its `KSP_PIN`, built as a
/// client builds it: a `KSMULTIPLE_ITEM` of data ranges, each 8-byte aligned, each optionally
/// followed by an attribute list (a `KSMULTIPLE_ITEM` of `KSATTRIBUTE`s).
#[derive(Clone, Debug)]
pub struct IntersectionRequest {
    bytes: Vec<u8>,
}

impl Default for IntersectionRequest {
    fn default() -> Self {
        Self::new()
    }
}

impl IntersectionRequest {
    /// A request with no range yet.
    #[must_use]
    pub fn new() -> Self {
        Self { bytes: vec![8, 0, 0, 0, 0, 0, 0, 0] }
    }

    fn align(&mut self) {
        while !self.bytes.len().is_multiple_of(8) {
            self.bytes.push(0);
        }
    }

    fn finish_item(&mut self) {
        let size = u32::try_from(self.bytes.len()).unwrap_or(u32::MAX);
        let count =
            u32::from_le_bytes([self.bytes[4], self.bytes[5], self.bytes[6], self.bytes[7]]);
        self.bytes[..4].copy_from_slice(&size.to_le_bytes());
        self.bytes[4..8].copy_from_slice(&(count + 1).to_le_bytes());
    }

    /// Adds a client range (its bytes as they are, `FormatSize` first).
    #[must_use]
    pub fn range(mut self, range: &[u8]) -> Self {
        self.align();
        self.bytes.extend_from_slice(range);
        self.finish_item();
        self
    }

    /// Adds a client range followed by an attribute list: each attribute's GUID, whether it
    /// is required (`KSATTRIBUTE_REQUIRED`), and its payload after the `KSATTRIBUTE` header.
    /// The range's copy gets `KSDATARANGE_ATTRIBUTES`, and `KSDATARANGE_REQUIRED_ATTRIBUTES`
    /// when an attribute is required.
    #[must_use]
    pub fn range_with_attributes(
        mut self,
        range: &[u8],
        attributes: &[(ks_sys::GUID, bool, &[u8])],
    ) -> Self {
        self.align();
        let start = self.bytes.len();
        self.bytes.extend_from_slice(range);
        let mut flags = ks_sys::KSDATARANGE_ATTRIBUTES;
        if attributes.iter().any(|(_, required, _)| *required) {
            flags |= ks_sys::KSDATARANGE_REQUIRED_ATTRIBUTES;
        }
        if let Some(field) = self.bytes.get_mut(start + 4..start + 8) {
            let old = u32::from_le_bytes([field[0], field[1], field[2], field[3]]);
            field.copy_from_slice(&(old | flags).to_le_bytes());
        }
        self.align();
        let list = self.bytes.len();
        self.bytes.extend_from_slice(&[0; 8]);
        for (guid, required, payload) in attributes {
            self.align();
            let size =
                u32::try_from(size_of::<ks_sys::KSATTRIBUTE>() + payload.len()).unwrap_or(u32::MAX);
            self.bytes.extend_from_slice(&size.to_le_bytes());
            let flag = if *required { ks_sys::KSATTRIBUTE_REQUIRED } else { 0 };
            self.bytes.extend_from_slice(&flag.to_le_bytes());
            self.bytes.extend_from_slice(&guid.Data1.to_le_bytes());
            self.bytes.extend_from_slice(&guid.Data2.to_le_bytes());
            self.bytes.extend_from_slice(&guid.Data3.to_le_bytes());
            self.bytes.extend_from_slice(&guid.Data4);
            self.bytes.extend_from_slice(payload);
        }
        let list_size = u32::try_from(self.bytes.len() - list).unwrap_or(u32::MAX);
        let count = u32::try_from(attributes.len()).unwrap_or(u32::MAX);
        self.bytes[list..list + 4].copy_from_slice(&list_size.to_le_bytes());
        self.bytes[list + 4..list + 8].copy_from_slice(&count.to_le_bytes());
        self.finish_item();
        self
    }

    /// The request's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// `bytes` in 8-byte words, as KS keeps a format it copied from a request.
fn aligned_copy(bytes: &[u8]) -> Box<[u64]> {
    let mut storage = vec![0u64; bytes.len().div_ceil(8)].into_boxed_slice();
    // SAFETY: `storage` has at least `bytes.len()` bytes; the two do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), storage.as_mut_ptr().cast(), bytes.len());
    }
    storage
}

/// A pin descriptor's data ranges.
fn data_ranges(pin: &'static KSPIN_DESCRIPTOR_EX) -> &'static [*mut KSDATARANGE] {
    let ranges = pin.PinDescriptor.DataRanges;
    if ranges.is_null() {
        return &[];
    }
    // SAFETY: `DataRangesCount` pointers, driver statics.
    unsafe { std::slice::from_raw_parts(ranges.cast(), pin.PinDescriptor.DataRangesCount as usize) }
}

/// A data range's bytes (`FormatSize` of them).
fn range_bytes(range: *const KSDATARANGE) -> &'static [u8] {
    // SAFETY: a driver's static range, at least a KSDATARANGE.
    let size = unsafe { (*range).FormatSize } as usize;
    // SAFETY: as above: `FormatSize` bytes.
    unsafe { std::slice::from_raw_parts(range.cast::<u8>(), size.max(size_of::<KSDATARANGE>())) }
}

/// Whether a format's or range's GUIDs (bytes 16..64) match a range's, wildcards (GUID_NULL)
/// allowed on either side.
fn guids_match(a: &[u8], b: &[u8]) -> bool {
    let (Some(a), Some(b)) = (a.get(16..64), b.get(16..64)) else { return false };
    a.chunks(16).zip(b.chunks(16)).all(|(x, y)| x == y || x == [0; 16] || y == [0; 16])
}

impl Filter<'_> {
    /// The filter's public structure.
    #[must_use]
    pub fn as_ptr(&self) -> *mut KSFILTER {
        self.object.public()
    }

    /// The data ranges of pin factory `id`, as bytes.
    #[must_use]
    pub fn data_ranges(&self, id: u32) -> Vec<&'static [u8]> {
        pin_descriptor(self.descriptor, id)
            .map(|pin| data_ranges(pin).iter().map(|range| range_bytes(*range)).collect())
            .unwrap_or_default()
    }

    /// Data intersection for one client range, as a client that first asks for the size does
    /// it: a [`data_intersection`](Self::data_intersection) request with `client_range` alone
    /// and no buffer, then one with a buffer of the size returned. PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// As [`data_intersection`](Self::data_intersection), or `STATUS_INVALID_PARAMETER` for a
    /// client range shorter than a `KSDATARANGE` or than its `FormatSize`.
    pub fn intersect(&self, id: u32, client_range: &[u8]) -> Result<Vec<u8>, NTSTATUS> {
        let declared = client_range.first_chunk::<4>().map(|b| u32::from_le_bytes(*b) as usize);
        if client_range.len() < size_of::<KSDATARANGE>() || declared != Some(client_range.len()) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let request = IntersectionRequest::new().range(client_range);
        let probe = self.data_intersection(id, request.as_bytes(), &mut []);
        if probe.status != ks_sys::STATUS_BUFFER_OVERFLOW {
            return Err(if probe.status >= 0 { STATUS_INVALID_PARAMETER } else { probe.status });
        }
        let mut format = vec![0u8; probe.information];
        let reply = self.data_intersection(id, request.as_bytes(), &mut format);
        if reply.status < 0 {
            return Err(reply.status);
        }
        format.truncate(reply.information);
        Ok(format)
    }

    /// `KSPROPERTY_PIN_DATAINTERSECTION` on pin factory `id`, as a client sends it: `request`
    /// is what follows the `KSP_PIN` (a `KSMULTIPLE_ITEM` of data ranges, each 8-byte aligned
    /// and followed by its attribute list when it has `KSDATARANGE_ATTRIBUTES`; see
    /// [`IntersectionRequest`]) and `output` the client's buffer, of any length (empty asks for
    /// the size). As AVStream does: for each client range in order, each of the pin's ranges
    /// whose GUIDs match it (wildcards allowed) and whose required attributes match (the sample's
    /// ranges have none, so a client range with `KSDATARANGE_REQUIRED_ATTRIBUTES` matches none) is
    /// passed with the client range to the pin's intersect handler, with the filter's control
    /// mutex held; the first answer other than `STATUS_NO_MATCH` is the reply (a format, or the
    /// size with `STATUS_BUFFER_OVERFLOW` / `STATUS_BUFFER_TOO_SMALL`). PASSIVE_LEVEL.
    ///
    /// Replies: `STATUS_NO_MATCH` when nothing matches; `STATUS_INVALID_PARAMETER` for no such
    /// pin factory or a malformed request (a size or count the bytes do not hold, a range
    /// shorter than a `KSDATARANGE`, an attribute list that overruns); `STATUS_NOT_SUPPORTED`
    /// for a pin without a handler (the host does not model the default intersection); the
    /// handler's own failures.
    #[must_use]
    pub fn data_intersection(
        &self,
        id: u32,
        request: &[u8],
        output: &mut [u8],
    ) -> crate::property::Reply {
        use crate::property::Reply;
        crate::verifier::require_irql_at_most("KsPinDataIntersectionEx", PASSIVE_LEVEL);
        let invalid = Reply { status: STATUS_INVALID_PARAMETER, information: 0 };
        let Some(pin) = pin_descriptor(self.descriptor, id) else { return invalid };
        let Some(ranges) = client_ranges(request) else { return invalid };
        let Some(handler) = pin.IntersectHandler else {
            return Reply { status: ks_sys::STATUS_NOT_SUPPORTED, information: 0 };
        };
        let Ok(buffer_size) = ULONG::try_from(output.len()) else { return invalid };
        let mut ksp_pin = ks_sys::KSP_PIN {
            Property: ks_sys::KSIDENTIFIER {
                Set: ks_sys::KSPROPSETID_Pin,
                Id: ks_sys::KSPROPERTY_PIN_DATAINTERSECTION,
                Flags: ks_sys::KSPROPERTY_TYPE_GET,
            },
            PinId: id,
            Reserved: 0,
        };
        let _held = Held::new(&self.object.state().mutex);
        let mut irp = crate::irp::HostIrp::new(
            crate::irp::Kind::Bare,
            ks_sys::UserMode,
            u32::try_from(request.len()).unwrap_or(u32::MAX),
            buffer_size,
        );
        // The client's ranges, copied as KS copies the request (8-byte aligned).
        let mut copy = aligned_copy(request);
        let data = if output.is_empty() { std::ptr::null_mut() } else { output.as_mut_ptr() };
        for (offset, required) in ranges {
            // Ranges start at multiples of 8 (`client_ranges`): whole words into the copy.
            let caller = copy.as_mut_ptr().wrapping_add(offset / 8).cast::<KSDATARANGE>();
            for range in data_ranges(pin) {
                // SAFETY: `offset` starts a range of at least a KSDATARANGE inside the copy.
                let caller_bytes = unsafe {
                    std::slice::from_raw_parts(caller.cast::<u8>(), size_of::<KSDATARANGE>())
                };
                if required || !guids_match(range_bytes(*range), caller_bytes) {
                    continue;
                }
                let mut size: ULONG = 0;
                // SAFETY: the pin's handler: the filter as context, the client's range (its
                // `FormatSize` bytes, its attributes after them), one of the pin's ranges, and
                // `data` NULL (a size query) or `buffer_size` writable bytes.
                let status = unsafe {
                    handler(
                        self.as_ptr().cast(),
                        irp.as_irp(),
                        &raw mut ksp_pin,
                        caller,
                        *range,
                        buffer_size,
                        data.cast(),
                        &raw mut size,
                    )
                };
                if status == STATUS_NO_MATCH {
                    continue;
                }
                let information =
                    if status >= 0 { (size.min(buffer_size)) as usize } else { size as usize };
                if status == STATUS_SUCCESS && output.len() < information {
                    crate::verifier::report(
                        "AVStrMiniIntersectHandlerEx",
                        format!("wrote {information} bytes into a {buffer_size}-byte buffer"),
                    );
                }
                return Reply { status, information };
            }
        }
        Reply { status: STATUS_NO_MATCH, information: 0 }
    }

    /// Creates a pin of factory `id` with `format`, as a client's pin create request does: the
    /// format is checked against the factory's ranges with the pin's `SetDataFormat` (old
    /// format NULL), then the pin's `Create` runs; both with the filter's control mutex held.
    /// PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_PARAMETER` for no such factory or a format shorter than a
    /// `KSDATAFORMAT` or its `FormatSize`; `STATUS_INSUFFICIENT_RESOURCES` when the factory's
    /// `InstancesPossible` pins are open; `STATUS_NO_MATCH` when no range accepts the format;
    /// the callbacks' failure status.
    pub fn create_pin(&self, id: u32, format: &[u8]) -> Result<Pin<'_>, NTSTATUS> {
        crate::verifier::require_irql_at_most("IRP_MJ_CREATE", PASSIVE_LEVEL);
        let descriptor = pin_descriptor(self.descriptor, id).ok_or(STATUS_INVALID_PARAMETER)?;
        let declared = format.first_chunk::<4>().map(|b| u32::from_le_bytes(*b) as usize);
        if format.len() < size_of::<ks_sys::KSDATAFORMAT>() || declared != Some(format.len()) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let held = Held::new(&self.object.state().mutex);
        {
            let instances = crate::lock(&self.object.state().instances);
            let open = instances.get(id as usize).ok_or(STATUS_INVALID_PARAMETER)?;
            if open.len() >= descriptor.InstancesPossible as usize {
                return Err(ks_sys::STATUS_INSUFFICIENT_RESOURCES);
            }
        }
        let mut pin = Pin::new(self, id, descriptor, format);
        // A child of the filter from here (KsFilterGetFirstChildPin) until it is dropped.
        if let Some(open) = crate::lock(&self.object.state().instances).get_mut(id as usize) {
            open.push(pin.as_ptr().addr());
        }
        let status = pin.create(descriptor, format);
        // The mutex goes before a pin that failed is closed (which takes it again).
        drop(held);
        if status < 0 {
            return Err(status);
        }
        pin.created = true;
        Ok(pin)
    }
}

impl Drop for Filter<'_> {
    /// Closes the filter: its `Close` callback, then its bag. PASSIVE_LEVEL.
    fn drop(&mut self) {
        // SAFETY: the driver's static dispatch table, or NULL.
        let dispatch = unsafe { self.descriptor.Dispatch.as_ref() };
        if self.created
            && let Some(close) = dispatch.and_then(|d| d.Close)
        {
            let _held = Held::new(&self.object.state().mutex);
            let mut irp = crate::irp::HostIrp::new(crate::irp::Kind::Bare, ks_sys::UserMode, 0, 0);
            // SAFETY: the driver's Close callback on its live filter.
            let _ = unsafe { close(self.as_ptr(), irp.as_irp()) };
        }
        if let Some(processing) = &self.object.state().processing {
            processing.end();
        }
        self.object.state().bag.free_all();
    }
}

/// How a pin's allocator was chosen, and its pipe.
/// Who the pin is connected to.
enum Link {
    /// A kernel-mode pin: the negotiated plan and the allocator table the pipe uses (the pin's
    /// own, or the library's default allocator standing for the downstream side's), and the pin
    /// the allocator is created for (its owner: this pin when `None`).
    Pin { plan: Box<AllocatorPlan>, table: &'static KSALLOCATOR_DISPATCH, owner: Option<usize> },
    /// A user-mode client reading with its own buffers.
    Client { plan: Box<ClientPlan> },
    /// A pin of a graph whose frames are delivered by the pin before it ([`graph`]).
    Delivered,
}

struct Connection {
    link: Link,
    pipe: stream::Pipe,
}

/// Where a connected pin's frames come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameSource {
    /// The pin's own allocator (its `KSPIN_DISPATCH.Allocator`).
    OwnAllocator,
    /// An allocator the downstream side owns (the library's default allocator here).
    SinkAllocator,
    /// A user-mode client's buffers: no allocator.
    ClientBuffers,
    /// The frames of the pin before it in a graph: an input pin's, or an in-place transform's
    /// output pin's.
    Upstream,
}

pub(crate) struct PinState {
    bag: Bag,
    /// The filter's mutex.
    control: *const ControlMutex,
    flags: ULONG,
    output: bool,
    /// The connection format's storage (8-byte aligned); `KSPIN.ConnectionFormat` points at it.
    format: Mutex<Box<[u64]>>,
    pub(crate) shared: Arc<stream::Shared>,
    /// The leading edge: only the pin's processing touches it.
    pub(crate) edge: UnsafeCell<stream::Edge>,
    /// The thread processing the pin, if any.
    processor: Mutex<Option<ThreadId>>,
    /// Processing was asked for since the processing thread last looked.
    again: AtomicBool,
    /// The pin's state, as the processing sees it.
    pub(crate) state: AtomicI32,
    connection: Mutex<Option<Connection>>,
    /// The allocator a client assigned with `KSPROPERTY_STREAM_ALLOCATOR` (the class's handler).
    assigned: ks_allocator::property::AssignedAllocator,
    /// The worker that processes a PASSIVE_LEVEL pin when asked from DISPATCH_LEVEL.
    worker: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
    /// The other pin of an in-place transform whose two connections a graph runs as one pipe
    /// (its `KSPIN`'s address): its process pin is this one's `InPlaceCounterpart`.
    in_place: Mutex<Option<usize>>,
    /// The processing of the pin's filter, if it is filter-centric.
    filter_processing: Option<Arc<centric::FilterProcessing>>,
}

impl HasBag for PinState {
    fn bag(&self) -> *const Bag {
        &raw const self.bag
    }
    fn control(&self) -> *const ControlMutex {
        self.control
    }
}

impl PinState {
    pub(crate) fn is_output(&self) -> bool {
        self.output
    }

    /// Whether the calling thread is processing the pin.
    pub(crate) fn processing_held(&self) -> bool {
        *crate::lock(&self.processor) == Some(std::thread::current().id())
    }

    fn may_process(&self) -> bool {
        let state = self.state.load(Ordering::Acquire);
        let in_state = if self.flags & ks_sys::KSPIN_FLAG_PROCESS_IN_RUN_STATE_ONLY != 0 {
            state == ks_sys::KSSTATE_RUN
        } else {
            state >= ks_sys::KSSTATE_PAUSE
        };
        let frames = self.flags & ks_sys::KSPIN_FLAG_FRAMES_NOT_REQUIRED_FOR_PROCESSING != 0
            || self.shared.ahead() > 0;
        in_state && frames
    }

    /// `KsPinAcquireProcessingMutex`: waits until no thread processes the pin, then keeps
    /// processing out until released. Not recursive. PASSIVE_LEVEL.
    pub(crate) fn acquire_processing(&self) {
        let me = std::thread::current().id();
        loop {
            {
                let mut processor = crate::lock(&self.processor);
                match *processor {
                    None => {
                        *processor = Some(me);
                        return;
                    }
                    Some(thread) if thread == me => {
                        crate::verifier::report(
                            "KsPinAcquireProcessingMutex",
                            "the calling thread already holds the pin's processing mutex (or is \
                             processing the pin): it is not recursive, so on Windows this thread \
                             deadlocks with itself"
                                .to_owned(),
                        );
                        return;
                    }
                    Some(_) => {}
                }
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }

    /// `KsPinReleaseProcessingMutex`: lets processing run again, and runs what was asked for
    /// meanwhile. PASSIVE_LEVEL.
    pub(crate) fn release_processing(&self, pin: *mut KSPIN) {
        {
            let mut processor = crate::lock(&self.processor);
            if *processor != Some(std::thread::current().id()) {
                drop(processor);
                crate::verifier::report(
                    "KsPinReleaseProcessingMutex",
                    "the calling thread does not hold the pin's processing mutex".to_owned(),
                );
                return;
            }
            *processor = None;
        }
        if self.again.load(Ordering::SeqCst) && self.may_process() {
            self.attempt_processing(pin, true);
        }
    }

    /// Waits until no thread is processing the pin. PASSIVE_LEVEL.
    fn wait_for_processing(&self) {
        while crate::lock(&self.processor).is_some() {
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
    }

    fn dispatch_level(&self) -> bool {
        self.flags & ks_sys::KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING != 0
    }

    /// `KsPinAttemptProcessing` for this pin.
    pub(crate) fn attempt_processing(&self, pin: *mut KSPIN, asynchronous: bool) {
        if self.dispatch_level() {
            if crate::irql::current() >= DISPATCH_LEVEL {
                self.process_now(pin);
            } else {
                crate::irql::at_dispatch(|| self.process_now(pin));
            }
        } else if crate::irql::current() == PASSIVE_LEVEL && !asynchronous {
            self.process_now(pin);
        } else if let Some((sender, _)) = &*crate::lock(&self.worker) {
            let _ = sender.send(());
        }
    }

    /// Runs the process callback until nobody asked for more, unless another thread is
    /// processing the pin (then it runs once more).
    fn process_now(&self, pin: *mut KSPIN) {
        // SAFETY: the pin is live while its state is.
        let dispatch = unsafe { current_dispatch(pin) };
        let Some(process) = dispatch.and_then(|d| d.Process) else { return };
        self.again.store(true, Ordering::SeqCst);
        loop {
            {
                let mut processor = crate::lock(&self.processor);
                if processor.is_some() {
                    return; // that thread runs the callback once more
                }
                *processor = Some(std::thread::current().id());
            }
            while self.may_process() && self.again.swap(false, Ordering::SeqCst) {
                let before = self.shared.progress();
                // SAFETY: the driver's process callback on its live pin, never concurrently
                // with itself (the processor slot), at the IRQL its flags ask for.
                let status = unsafe { process(pin) };
                if status == STATUS_SUCCESS && self.shared.progress() != before {
                    self.again.store(true, Ordering::SeqCst); // it asked to go on, and did
                }
            }
            *crate::lock(&self.processor) = None;
            if !(self.again.load(Ordering::SeqCst) && self.may_process()) {
                return;
            }
        }
    }
}

/// `KsFilterGetFirstChildPin`: the oldest pin of pin factory `PinId` open on the filter, or
/// NULL. The caller must hold the filter's control mutex (a violation otherwise).
/// PASSIVE_LEVEL.
///
/// # Safety
///
/// `Filter` is a live filter the host made.
// SAFETY: no other symbol of a host process is named `KsFilterGetFirstChildPin`; ks-sys declares
// it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsFilterGetFirstChildPin(
    Filter: ks_sys::PKSFILTER,
    PinId: ULONG,
) -> ks_sys::PKSPIN {
    const ROUTINE: &str = "KsFilterGetFirstChildPin";
    crate::verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    // SAFETY: the caller's contract.
    let Some(state) = (unsafe { object::filter_object(Filter) }) else {
        crate::verifier::report(ROUTINE, format!("{Filter:p} is not a filter"));
        return std::ptr::null_mut();
    };
    state.mutex.require_held(ROUTINE, "walking the filter's pins");
    crate::lock(&state.instances)
        .get(PinId as usize)
        .and_then(|open| open.first().copied())
        .map_or(std::ptr::null_mut(), std::ptr::with_exposed_provenance_mut)
}

struct DetachedState {
    bag: Bag,
    mutex: ControlMutex,
}

impl HasBag for DetachedState {
    fn bag(&self) -> *const Bag {
        &raw const self.bag
    }
    fn control(&self) -> *const ControlMutex {
        &raw const self.mutex
    }
}

/// A `KSPIN` with no filter, device or pipe behind it, for code that works on a pin alone: a
/// library's property handlers or allocator callbacks under test. It is an AVStream object as
/// far as `KsAcquireControl`/`KsReleaseControl` (its own control mutex) and its object bag go;
/// `KsGetDevice` and `KsGetParent` give NULL, and nothing streams through it.
pub struct DetachedPin {
    object: Owned<KSPIN, DetachedState>,
}

impl DetachedPin {
    /// A pin with `descriptor` and `context` in `KSPIN.Descriptor` and `KSPIN.Context`, in STOP.
    ///
    /// # Safety
    ///
    /// `descriptor` is NULL or a descriptor that outlives the pin, as what code handed the pin
    /// reads through it requires.
    #[must_use]
    pub unsafe fn new(descriptor: *const KSPIN_DESCRIPTOR_EX, context: ks_sys::PVOID) -> Self {
        let state =
            DetachedState { bag: Bag::default(), mutex: ControlMutex::new("filter control mutex") };
        // SAFETY: KSPIN is plain data: NULL pointers and zero numbers are valid.
        let public: KSPIN = unsafe { std::mem::zeroed() };
        let mut object = Owned::new(
            Kind::DetachedPin,
            public,
            state,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        let bag = object.state().bag().cast_mut().cast();
        let public = object.public_mut();
        public.Descriptor = descriptor;
        public.Context = context;
        public.Bag = bag;
        public.DeviceState = ks_sys::KSSTATE_STOP;
        Self { object }
    }

    /// The pin's public structure.
    #[must_use]
    pub fn as_ptr(&self) -> *mut KSPIN {
        self.object.public()
    }

    /// Sets `KSPIN.DeviceState` (and `ClientState`), as a state change would, with the pin's
    /// control mutex held.
    pub fn set_state(&self, state: KSSTATE) {
        let _held = Held::new(&self.object.state().mutex);
        let pin = self.as_ptr();
        // SAFETY: the pin is live while `self` is; the mutex keeps handlers that check the
        // state under it out.
        unsafe { (*pin).DeviceState = state };
        // SAFETY: as above.
        unsafe { (*pin).ClientState = state };
    }
}

impl Drop for DetachedPin {
    fn drop(&mut self) {
        self.object.state().bag.free_all();
    }
}

/// The descriptor a pin has now: its own `KsEdit` copy, or the driver's static.
///
/// # Safety
///
/// `pin` is a live pin the host made.
unsafe fn current_descriptor<'a>(pin: *const KSPIN) -> &'a KSPIN_DESCRIPTOR_EX {
    // SAFETY: the caller's contract.
    let descriptor = unsafe { (*pin).Descriptor };
    // SAFETY: never NULL: the host sets it at creation and `KsEdit` only replaces it with a
    // copy, which lives in the pin's bag as long as the pin.
    unsafe { &*descriptor }
}

/// A pin's dispatch table, if it has one.
///
/// # Safety
///
/// `pin` is a live pin the host made.
unsafe fn current_dispatch<'a>(pin: *const KSPIN) -> Option<&'a ks_sys::KSPIN_DISPATCH> {
    // SAFETY: the caller's contract.
    let descriptor = unsafe { current_descriptor(pin) };
    // SAFETY: NULL or the driver's static table.
    unsafe { descriptor.Dispatch.as_ref() }
}

/// An open pin.
pub struct Pin<'f> {
    object: Owned<KSPIN, PinState>,
    filter: &'f Filter<'f>,
    id: u32,
    /// The `Create` callback succeeded (so `Close` is due).
    created: bool,
}

/// Why a pin could not be connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectError {
    /// The pin is not in the STOP state.
    NotStopped,
    /// The pin declares no allocator framing.
    NoFraming,
    /// The framings do not negotiate.
    Negotiation(NegotiationError),
    /// No framing item of the pin takes a user-mode client's buffers.
    Client(Box<ClientError>),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotStopped => f.write_str("the pin is not stopped"),
            Self::NoFraming => f.write_str("the pin declares no allocator framing"),
            Self::Negotiation(error) => write!(f, "negotiation failed: {error}"),
            Self::Client(error) => write!(f, "a user-mode client cannot connect: {error}"),
        }
    }
}

impl std::error::Error for ConnectError {}

impl<'f> Pin<'f> {
    fn new(
        filter: &'f Filter<'f>,
        id: u32,
        descriptor: &'static KSPIN_DESCRIPTOR_EX,
        format: &[u8],
    ) -> Self {
        let storage = aligned_copy(format);
        let state = PinState {
            bag: Bag::default(),
            control: &raw const filter.object.state().mutex,
            flags: descriptor.Flags,
            output: descriptor.PinDescriptor.DataFlow == ks_sys::KSPIN_DATAFLOW_OUT,
            format: Mutex::new(storage),
            shared: Arc::default(),
            edge: UnsafeCell::new(stream::Edge::new(std::ptr::null_mut())),
            processor: Mutex::new(None),
            again: AtomicBool::new(false),
            state: AtomicI32::new(ks_sys::KSSTATE_STOP),
            connection: Mutex::new(None),
            assigned: ks_allocator::property::AssignedAllocator::new(),
            worker: Mutex::new(None),
            in_place: Mutex::new(None),
            filter_processing: filter.object.state().processing.clone(),
        };
        // SAFETY: KSPIN is plain data: NULL pointers and zero numbers are valid.
        let public: KSPIN = unsafe { std::mem::zeroed() };
        let filter_public = filter.as_ptr();
        // SAFETY: the filter is live; its header names its device.
        let device = unsafe { object::header(filter_public.cast()) }
            .map_or(std::ptr::null_mut(), |h| h.device);
        // SAFETY: the filter is live while `filter` is borrowed.
        let context = unsafe { (*filter_public).Context };
        let mut object = Owned::new(Kind::Pin, public, state, filter_public.cast(), device);
        let bag = object.state().bag().cast_mut().cast();
        let format = crate::lock(&object.state().format).as_mut_ptr().cast();
        let public = object.public_mut();
        public.Descriptor = descriptor;
        public.Bag = bag;
        public.Context = context;
        public.Id = id;
        public.Communication = ks_sys::KSPIN_COMMUNICATION_SINK;
        public.ConnectionFormat = format;
        #[expect(clippy::cast_possible_truncation, reason = "48 bytes")]
        {
            public.StreamHeaderSize = size_of::<ks_sys::KSSTREAM_HEADER>() as u32;
        }
        public.DataFlow = descriptor.PinDescriptor.DataFlow;
        let pin = object.public();
        let state = object.state();
        // SAFETY: the edge is not shared yet.
        unsafe { *state.edge.get() = stream::Edge::new(pin) };
        if descriptor.Flags & ks_sys::KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING == 0 {
            let (sender, receiver) = mpsc::channel::<()>();
            let address = pin.expose_provenance();
            let worker = std::thread::Builder::new()
                .name("ks-host pin worker".to_owned())
                .spawn(move || {
                    let pin = std::ptr::with_exposed_provenance_mut::<KSPIN>(address);
                    for () in receiver {
                        // SAFETY: the pin joins this thread before it goes away.
                        if let Some(state) = unsafe { object::pin_object(pin) } {
                            state.process_now(pin);
                        }
                    }
                })
                .expect("the host starts the pin's worker thread");
            *crate::lock(&state.worker) = Some((sender, worker));
        }
        // A filter-centric filter processes when a frame reaches any of its pins.
        if let Some(processing) = state.filter_processing.clone() {
            state.shared.set_arrival(Some(Arc::new(move || processing.request())));
        }
        Self { object, filter, id, created: false }
    }

    /// Offers the pin's `ConnectionFormat` to its `SetDataFormat` with each of its ranges whose
    /// GUIDs match it, as AVStream does, until one accepts: `STATUS_SUCCESS`, or the first
    /// failure other than `STATUS_NO_MATCH`, or `STATUS_NO_MATCH` when none accepts. A pin
    /// without `SetDataFormat` accepts a format that matches a range's GUIDs. With the filter's
    /// mutex held.
    fn offer_format(
        &self,
        descriptor: &'static KSPIN_DESCRIPTOR_EX,
        format: &[u8],
        old_format: ks_sys::PKSDATAFORMAT,
    ) -> NTSTATUS {
        let pin = self.as_ptr();
        // SAFETY: the driver's static dispatch table, or NULL.
        let dispatch = unsafe { descriptor.Dispatch.as_ref() };
        for range in data_ranges(descriptor) {
            if !guids_match(range_bytes(*range), format) {
                continue;
            }
            let Some(set_format) = dispatch.and_then(|d| d.SetDataFormat) else {
                return STATUS_SUCCESS;
            };
            // SAFETY: the driver's callback on its pin with one of its ranges.
            let status = unsafe {
                set_format(pin, old_format, std::ptr::null_mut(), *range, std::ptr::null())
            };
            if status != STATUS_NO_MATCH {
                return status;
            }
        }
        STATUS_NO_MATCH
    }

    /// `SetDataFormat` against the matching ranges, then `Create`. With the filter's mutex
    /// held.
    fn create(&self, descriptor: &'static KSPIN_DESCRIPTOR_EX, format: &[u8]) -> NTSTATUS {
        let pin = self.as_ptr();
        let status = self.offer_format(descriptor, format, std::ptr::null_mut());
        if status != STATUS_SUCCESS {
            return status;
        }
        // SAFETY: the driver's static dispatch table, or NULL.
        let dispatch = unsafe { descriptor.Dispatch.as_ref() };
        if let Some(create) = dispatch.and_then(|d| d.Create) {
            let mut irp = crate::irp::HostIrp::new(crate::irp::Kind::Bare, ks_sys::UserMode, 0, 0);
            // SAFETY: the driver's Create callback on its new pin.
            let status = unsafe { create(pin, irp.as_irp()) };
            if status < 0 {
                return status;
            }
        }
        STATUS_SUCCESS
    }

    /// Changes the format of a pin that exists, as AVStream does for a client's
    /// `KSPROPERTY_CONNECTION_DATAFORMAT` set, and for the second `SetDataFormat` a video
    /// capture pin may get just before RUN, carrying the renderer's surface parameters (a row
    /// pitch wider than the image): `KSPIN.ConnectionFormat` becomes `format` and the pin's
    /// `SetDataFormat` is called with the old format and each of its ranges whose GUIDs match,
    /// with the filter's control mutex held. If none accepts it, the old format is put back.
    /// PASSIVE_LEVEL, in any state.
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_PARAMETER` for a format shorter than a `KSDATAFORMAT` or its
    /// `FormatSize`; `STATUS_NO_MATCH` when no range accepts it; `SetDataFormat`'s failure
    /// status (the pin keeps its old format).
    pub fn set_data_format(&self, format: &[u8]) -> Result<(), NTSTATUS> {
        crate::verifier::require_irql_at_most(
            "IOCTL_KS_PROPERTY(KSPROPERTY_CONNECTION_DATAFORMAT)",
            PASSIVE_LEVEL,
        );
        let declared = format.first_chunk::<4>().map(|b| u32::from_le_bytes(*b) as usize);
        if format.len() < size_of::<ks_sys::KSDATAFORMAT>() || declared != Some(format.len()) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        let pin = self.as_ptr();
        let state = self.object.state();
        let _held = Held::new(&self.filter.object.state().mutex);
        let mut new = aligned_copy(format);
        let old = {
            let storage = crate::lock(&state.format);
            storage.as_ptr().cast_mut().cast::<ks_sys::KSDATAFORMAT>()
        };
        // SAFETY: the pin is live; the driver reads the field only in its callbacks, and this
        // one runs with the filter's mutex held, as every other that reads it does.
        unsafe { (*pin).ConnectionFormat = new.as_mut_ptr().cast() };
        // SAFETY: the pin is live while `self` is.
        let descriptor = unsafe { current_descriptor(pin) };
        let status = self.offer_format(descriptor, format, old);
        if status != STATUS_SUCCESS {
            // SAFETY: as above; the old storage is still in place.
            unsafe { (*pin).ConnectionFormat = old };
            return Err(status);
        }
        // The old storage goes; the pointer already names the new one.
        *crate::lock(&state.format) = new;
        Ok(())
    }

    /// The pin's connection format, as bytes (`FormatSize` of them).
    #[must_use]
    pub fn connection_format(&self) -> Vec<u8> {
        let storage = crate::lock(&self.object.state().format);
        // SAFETY: the storage holds the format the host copied, 8-byte words.
        let bytes =
            unsafe { std::slice::from_raw_parts(storage.as_ptr().cast::<u8>(), storage.len() * 8) };
        let size = bytes.first_chunk::<4>().map_or(0, |b| u32::from_le_bytes(*b) as usize);
        bytes.get(..size).unwrap_or(bytes).to_vec()
    }

    /// The pin's public structure.
    #[must_use]
    pub fn as_ptr(&self) -> *mut KSPIN {
        self.object.public()
    }

    /// The pin's state.
    #[must_use]
    pub fn state(&self) -> KSSTATE {
        self.object.state().state.load(Ordering::Acquire)
    }

    /// Connects the pin's output to a downstream pin that declares `downstream`: the framings
    /// are negotiated; frames come from the pin's own allocator (`KSPIN_DISPATCH.Allocator`)
    /// when the plan makes the pin the owner and it has one, else from the library's default
    /// allocator (standing for the downstream side's). Completed frames go to `consumer`.
    /// PASSIVE_LEVEL, in STOP.
    ///
    /// # Errors
    ///
    /// A [`ConnectError`].
    pub fn connect(
        &self,
        downstream: &FramingExView<'_>,
        consumer: Consumer,
    ) -> Result<AllocatorPlan, ConnectError> {
        crate::verifier::require_irql_at_most("KsPinConnect", PASSIVE_LEVEL);
        if self.state() != ks_sys::KSSTATE_STOP {
            return Err(ConnectError::NotStopped);
        }
        let pin = self.as_ptr();
        // SAFETY: the pin is live while `self` is.
        let descriptor = unsafe { current_descriptor(pin) };
        // SAFETY: NULL or the pin's framing, `CountItems` items long.
        let upstream = unsafe { FramingExView::from_raw(descriptor.AllocatorFraming) }
            .ok_or(ConnectError::NoFraming)?;
        let plan =
            ks_allocator::negotiate(&upstream, downstream).map_err(ConnectError::Negotiation)?;
        // SAFETY: as above.
        let own = unsafe { current_dispatch(pin) }.map_or(std::ptr::null(), |d| d.Allocator);
        let table = match (plan.owner, own.is_null()) {
            // SAFETY: the pin's allocator table, a driver static.
            (Side::Upstream, false) => unsafe { &*own },
            _ => dispatch_table::<DefaultAllocator>(),
        };
        let frames = if plan.framing.frames == 0 { 2 } else { plan.framing.frames };
        let pipe = stream::Pipe::new(
            Arc::clone(&self.object.state().shared),
            frames,
            stream::Downstream::Consumer(consumer),
        );
        let link = Link::Pin { plan: Box::new(plan), table, owner: None };
        *crate::lock(&self.object.state().connection) = Some(Connection { link, pipe });
        Ok(plan)
    }

    /// Connects the pin's output to a user-mode client that reads with its own buffers, as a
    /// camera application does: no allocator; the client allocates the buffers
    /// [`plan_for_user_client`](ks_allocator::negotiate::plan_for_user_client) says the pin's
    /// framing asks for, when the pin leaves STOP, and sends each down as a read request (locked
    /// and mapped; mapped for DMA too if the pin generates mappings). Completed frames go to
    /// `consumer`; the client sends each buffer down again once `consumer` returns.
    /// PASSIVE_LEVEL, in STOP.
    ///
    /// # Errors
    ///
    /// A [`ConnectError`].
    pub fn connect_client(&self, consumer: Consumer) -> Result<ClientPlan, ConnectError> {
        crate::verifier::require_irql_at_most("KsPinConnect", PASSIVE_LEVEL);
        if self.state() != ks_sys::KSSTATE_STOP {
            return Err(ConnectError::NotStopped);
        }
        let pin = self.as_ptr();
        // SAFETY: the pin is live while `self` is.
        let descriptor = unsafe { current_descriptor(pin) };
        // SAFETY: NULL or the pin's framing, `CountItems` items long.
        let framing = unsafe { FramingExView::from_raw(descriptor.AllocatorFraming) }
            .ok_or(ConnectError::NoFraming)?;
        let plan = ks_allocator::negotiate::plan_for_user_client(&framing)
            .map_err(|error| ConnectError::Client(Box::new(error)))?;
        let pipe = stream::Pipe::new(
            Arc::clone(&self.object.state().shared),
            plan.frames,
            stream::Downstream::Consumer(consumer),
        );
        let link = Link::Client { plan: Box::new(plan) };
        *crate::lock(&self.object.state().connection) = Some(Connection { link, pipe });
        Ok(plan)
    }

    /// Where the pin's frames come from, once it is connected.
    #[must_use]
    pub fn frame_source(&self) -> Option<FrameSource> {
        let pin = self.as_ptr();
        // SAFETY: the pin is live while `self` is.
        let own = unsafe { current_dispatch(pin) }.map_or(std::ptr::null(), |d| d.Allocator);
        crate::lock(&self.object.state().connection).as_ref().map(|c| match c.link {
            Link::Pin { table, .. } if std::ptr::eq(table, own) => FrameSource::OwnAllocator,
            Link::Pin { .. } => FrameSource::SinkAllocator,
            Link::Client { .. } => FrameSource::ClientBuffers,
            Link::Delivered => FrameSource::Upstream,
        })
    }

    /// Whether the pipe's allocator is the pin's own.
    #[must_use]
    pub fn uses_own_allocator(&self) -> bool {
        self.frame_source() == Some(FrameSource::OwnAllocator)
    }

    /// The context `InitializeAllocator` returned for the pipe's allocator, from ACQUIRE until
    /// the pin returns to STOP (when `DeleteAllocator` frees it); `None` otherwise. What it
    /// points at is the allocator's own business: only code that knows the allocator's type
    /// may look (as the sample's tests and `ksalloc capture` do for the library's pool).
    #[must_use]
    pub fn allocator_context(&self) -> Option<ks_sys::PVOID> {
        self.object.state().shared.allocator_context()
    }

    /// Frames queued for the driver now.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.object.state().shared.queued()
    }

    /// Moves the pin to `target` one state at a time, as KS does: each step calls the pin's
    /// `SetDeviceState` with the filter's mutex held; leaving STOP creates the allocator
    /// (`InitializeAllocator` with the negotiated framing) and queues frames, reaching STOP
    /// frees them and deletes it. PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// `STATUS_INVALID_DEVICE_STATE` for leaving STOP unconnected; `InitializeAllocator`'s or
    /// the callback's failure status (the pin stays in the state it last reached).
    pub fn set_state(&self, target: KSSTATE) -> Result<(), NTSTATUS> {
        crate::verifier::require_irql_at_most(
            "IOCTL_KS_PROPERTY(KSPROPERTY_CONNECTION_STATE)",
            PASSIVE_LEVEL,
        );
        if !(ks_sys::KSSTATE_STOP..=ks_sys::KSSTATE_RUN).contains(&target) {
            return Err(STATUS_INVALID_PARAMETER);
        }
        loop {
            let from = self.state();
            if from == target {
                return Ok(());
            }
            let to = if target > from { from + 1 } else { from - 1 };
            self.step(from, to)?;
        }
    }

    /// How AVStream maps the pin's frames: for a pin with `KSPIN_FLAG_GENERATE_MAPPINGS`,
    /// through the adapter its device registered. Such a pin on a device that registered none
    /// is a violation; its frames then have no mappings.
    fn mapper(&self) -> Option<stream::Mapper> {
        let state = self.object.state();
        if state.flags & ks_sys::KSPIN_FLAG_GENERATE_MAPPINGS == 0 {
            return None;
        }
        let pin = self.as_ptr();
        // SAFETY: the pin is live; its header names its device, live longer than the pin.
        let device =
            unsafe { object::header(pin.cast()) }.map_or(std::ptr::null_mut(), |h| h.device);
        // SAFETY: as above.
        let registered = unsafe { object::device_object(device) }
            .and_then(|device| *crate::lock(&device.adapter));
        let Some(registered) = registered else {
            crate::verifier::report(
                "AVStream (GENERATE_MAPPINGS)",
                format!(
                    "pin {} generates mappings but its device registered no DMA adapter \
                     (KsDeviceRegisterAdapterObject)",
                    self.id
                ),
            );
            return None;
        };
        Some(stream::Mapper { registered, pin: self.id, poison: state.output })
    }

    fn step(&self, from: KSSTATE, to: KSSTATE) -> Result<(), NTSTATUS> {
        let pin = self.as_ptr();
        let state = self.object.state();
        let _held = Held::new(&self.filter.object.state().mutex);
        if from == ks_sys::KSSTATE_STOP {
            let connection = crate::lock(&state.connection);
            let connection = connection.as_ref().ok_or(STATUS_INVALID_DEVICE_STATE)?;
            let (source, frame_size) = match &connection.link {
                Link::Pin { plan, table, owner } => {
                    let framing = plan.framing.to_raw();
                    let owner = owner.map_or(pin, std::ptr::with_exposed_provenance_mut);
                    // SAFETY: the owner is live until the allocator is deleted (at STOP or
                    // close: a graph stops its pins before it closes any).
                    let allocator = unsafe {
                        crate::ks::DispatchAllocator::initialize(table, owner, &framing)
                    }?;
                    (stream::Source::Allocator(allocator), plan.framing.frame_size)
                }
                Link::Delivered => (stream::Source::Delivered, 0),
                Link::Client { plan } => {
                    let alignment = (plan.file_alignment as usize + 1).next_power_of_two();
                    let buffers =
                        stream::ClientBuffers::new(plan.frames, plan.frame_size, alignment)
                            .ok_or(ks_sys::STATUS_INSUFFICIENT_RESOURCES)?;
                    let size = u32::try_from(buffers.size()).unwrap_or(u32::MAX);
                    (stream::Source::Client(buffers), size)
                }
            };
            // The header size the pin asked for (`KSPIN.StreamHeaderSize`, which its create
            // dispatch may have raised for an extended header).
            // SAFETY: the pin is live; the driver writes the field only in its callbacks.
            let header_size = unsafe { (*pin).StreamHeaderSize };
            let mapper = self.mapper();
            connection.pipe.start(source, frame_size, header_size, mapper);
        }
        // SAFETY: the pin is live while `self` is.
        let dispatch = unsafe { current_dispatch(pin) };
        if let Some(set_state) = dispatch.and_then(|d| d.SetDeviceState) {
            // SAFETY: the driver's callback on its live pin, one step, the mutex held.
            let status = unsafe { set_state(pin, to, from) };
            if status < 0 {
                if from == ks_sys::KSSTATE_STOP
                    && let Some(connection) = &*crate::lock(&state.connection)
                {
                    connection.pipe.stop();
                }
                return Err(status);
            }
        }
        // SAFETY: the pin is live; the driver reads these fields only in its callbacks.
        unsafe { (*pin).DeviceState = to };
        // SAFETY: as above.
        unsafe { (*pin).ClientState = to };
        state.state.store(to, Ordering::Release);
        if let Some(processing) = &state.filter_processing {
            processing.request();
        }
        if to == ks_sys::KSSTATE_STOP {
            // As ks.sys does, frames are taken back only once no processing runs: a process
            // callback that started before the state changed finishes first (none starts after:
            // STOP stops it).
            state.wait_for_processing();
            if let Some(connection) = &*crate::lock(&state.connection) {
                connection.pipe.stop();
            }
        }
        Ok(())
    }

    /// A property request on the pin, as a client's `IOCTL_KS_PROPERTY`
    /// ([`crate::property::request`]): through its automation table's property sets merged with
    /// the ones AVStream answers for every pin (the allocator framing and the stream allocator;
    /// the pin's own items win). Handlers run without the filter's mutex, as AVStream calls a
    /// minidriver's. PASSIVE_LEVEL.
    #[must_use]
    pub fn property(
        &self,
        request: &[u8],
        value: &mut [u8],
        client: crate::property::Client,
    ) -> crate::property::Reply {
        let pin = self.as_ptr();
        // SAFETY: the pin is live while `self` is.
        let table = unsafe { current_descriptor(pin) }.AutomationTable;
        // SAFETY: NULL or the driver's static automation table.
        let sets = match unsafe { table.as_ref() } {
            Some(table) if !table.PropertySets.is_null() => {
                // SAFETY: `PropertySetsCount` sets, driver statics.
                unsafe {
                    std::slice::from_raw_parts(table.PropertySets, table.PropertySetsCount as usize)
                }
            }
            _ => &[][..],
        };
        // SAFETY: the driver's sets, statics.
        let merged = unsafe { class::merge(sets) };
        // SAFETY: the merged sets and their handlers on the live pin.
        unsafe { crate::property::request(pin, merged.sets(), request, value, client) }
    }

    /// The allocator a client assigned to the pin with `KSPROPERTY_STREAM_ALLOCATOR`, as the
    /// class keeps it: its file object, referenced, or `None`.
    #[must_use]
    pub fn assigned_allocator(&self) -> Option<NonNull<std::ffi::c_void>> {
        self.object.state().assigned.file_object()
    }

    /// The pin factory id.
    #[must_use]
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl Drop for Pin<'_> {
    /// Closes the pin: to STOP, its `Close` callback, the pipe and worker ended, its bag freed.
    /// PASSIVE_LEVEL.
    fn drop(&mut self) {
        let _ = self.set_state(ks_sys::KSSTATE_STOP);
        let pin = self.as_ptr();
        let state = self.object.state();
        {
            let _held = Held::new(&self.filter.object.state().mutex);
            // SAFETY: the pin is live while `self` is.
            let dispatch = unsafe { current_dispatch(pin) };
            if self.created
                && let Some(close) = dispatch.and_then(|d| d.Close)
            {
                let mut irp =
                    crate::irp::HostIrp::new(crate::irp::Kind::Bare, ks_sys::UserMode, 0, 0);
                // SAFETY: the driver's Close callback on its live pin.
                let _ = unsafe { close(pin, irp.as_irp()) };
            }
        }
        drop(crate::lock(&state.connection).take());
        state.shared.set_arrival(None);
        if let Some((sender, worker)) = crate::lock(&state.worker).take() {
            drop(sender);
            let _ = worker.join();
        }
        state.bag.free_all();
        if let Some(open) =
            crate::lock(&self.filter.object.state().instances).get_mut(self.id as usize)
        {
            open.retain(|address| *address != pin.addr());
        }
    }
}
