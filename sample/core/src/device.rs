//! The device: its context, and the PnP callbacks AVStream makes (add, start, stop), as avshws
//! has them: the filter factories (the capture filter, and the overlay and scaling transforms)
//! are created at start; the simulated hardware is made at the first
//! start and kept until removal (as avshws keeps its hardware simulation); the DMA resources
//! ([`dma`](crate::dma)) are taken at every start and given up at every stop and at removal,
//! as PnP stop requires.

use core::{
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, AtomicUsize, Ordering},
};

use ks_allocator::{Error, PoolBox, from_result, to_result};
use ks_sys::{KSDEVICE, NTSTATUS, PCM_RESOURCE_LIST, PIRP, PVOID};

use crate::{POOL_TAG, descriptors, dma::DeviceDma, hardware::Hardware, ks};

/// What the driver keeps per device (`KSDEVICE.Context`).
pub(crate) struct DeviceContext {
    /// The simulated hardware, from the first PnP start to removal; NULL before.
    hardware: AtomicPtr<Hardware>,
    /// The DMA resources, from each PnP start to the next stop (or removal); NULL otherwise.
    /// Changed and read with the device mutex held.
    dma: AtomicPtr<DeviceDma>,
    /// How many of the filter factories ([`descriptors::FILTERS`]) were created (at the first
    /// start, or the next ones after a failure: they stay across PnP stops, while
    /// `KSDEVICE.Started` is cleared by each stop).
    factories: AtomicUsize,
}

impl DeviceContext {
    /// The hardware, once the device has started.
    pub(crate) fn hardware(&self) -> Option<&Hardware> {
        // SAFETY: a non-NULL pointer is a live boxed Hardware, released only when the context
        // is dropped, at removal, after every pin of the device has closed.
        unsafe { self.hardware.load(Ordering::Acquire).as_ref() }
    }

    /// A handle on the device's frame memory (its common buffer), while the device is started.
    /// PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// `device` is the device of this context, live.
    pub(crate) unsafe fn region(
        &self,
        device: *mut KSDEVICE,
    ) -> Option<ks_allocator::pool::DeviceRegion> {
        // SAFETY: a live device (this function's contract); PASSIVE_LEVEL.
        unsafe { ks_sys::KsAcquireDevice(device) };
        // SAFETY: a non-NULL pointer is a live boxed DeviceDma, freed only with the device mutex
        // held (`release_dma`), which this thread holds.
        let region = unsafe { self.dma.load(Ordering::Acquire).as_ref() }.map(DeviceDma::region);
        // SAFETY: acquired above.
        unsafe { ks_sys::KsReleaseDevice(device) };
        region
    }

    /// Gives up the DMA resources: the device's handle on its region (the common buffer and
    /// the adapter go when the last pool over it does). PASSIVE_LEVEL, with the device mutex
    /// held or no other thread using the device.
    fn release_dma(&self) {
        if let Some(dma) = NonNull::new(self.dma.swap(ptr::null_mut(), Ordering::AcqRel)) {
            // SAFETY: the pointer came from `PoolBox::into_raw` with POOL_TAG in `start`, and the
            // swap took it out, so it is taken back once.
            drop(unsafe { PoolBox::from_raw_with_tag(dma, POOL_TAG) });
        }
    }

    /// Releases the hardware, if any. PASSIVE_LEVEL, at removal.
    fn release_hardware(&self) {
        if let Some(hardware) = NonNull::new(self.hardware.swap(ptr::null_mut(), Ordering::AcqRel))
        {
            // SAFETY: the pointer came from `PoolBox::into_raw` with POOL_TAG in `start`, and the
            // swap took it out, so it is taken back once.
            drop(unsafe { PoolBox::from_raw_with_tag(hardware, POOL_TAG) });
        }
    }
}

impl Drop for DeviceContext {
    /// Removal (with or without a stop first) releases the DMA resources and the hardware.
    /// PASSIVE_LEVEL.
    fn drop(&mut self) {
        self.release_dma();
        self.release_hardware();
    }
}

/// Frees a device context when AVStream empties the device's object bag. PASSIVE_LEVEL.
///
/// # Safety
///
/// Only AVStream calls it, once, with the context `add` put in the bag.
unsafe extern "C" fn free_context(context: PVOID) {
    if let Some(context) = NonNull::new(context.cast::<DeviceContext>()) {
        // SAFETY: the bag item is the PoolBox `add` made with POOL_TAG; freed once.
        drop(unsafe { PoolBox::from_raw_with_tag(context, POOL_TAG) });
    }
}

/// `AVStrMiniDeviceAdd`: creates the device context. PASSIVE_LEVEL.
///
/// # Safety
///
/// Only AVStream calls it, with a live device.
pub(crate) unsafe extern "C" fn add(device: *mut KSDEVICE) -> NTSTATUS {
    let context = DeviceContext {
        hardware: AtomicPtr::new(ptr::null_mut()),
        dma: AtomicPtr::new(ptr::null_mut()),
        factories: AtomicUsize::new(0),
    };
    let Ok(context) = PoolBox::new(context, POOL_TAG) else {
        return Error::INSUFFICIENT_RESOURCES.to_status();
    };
    let raw = PoolBox::into_raw(context);
    // SAFETY: a live device (this function's contract).
    let bag = unsafe { ks::device_bag(device) };
    // The device's bag is the device mutex's (KsAddItemToObjectBag); AVStream does not hold it
    // during Add.
    // SAFETY: a live device.
    unsafe { ks_sys::KsAcquireDevice(device) };
    // SAFETY: the device's bag takes the context, freed by `free_context`; its mutex is held.
    let status = unsafe { ks::add_to_bag(bag, raw.cast(), Some(free_context)) };
    // SAFETY: acquired above.
    unsafe { ks_sys::KsReleaseDevice(device) };
    if let Err(error) = to_result(status) {
        if let Some(raw) = NonNull::new(raw) {
            // SAFETY: `raw` came from `into_raw` just now and the bag did not take it.
            drop(unsafe { PoolBox::from_raw_with_tag(raw, POOL_TAG) });
        }
        return error.to_status();
    }
    // SAFETY: a live device; the context is set once, before any filter exists.
    unsafe { ks::set_device_context(device, raw.cast()) };
    ks_sys::STATUS_SUCCESS
}

/// The device context of a device.
///
/// # Safety
///
/// `device` is a live device whose `add` succeeded.
pub(crate) unsafe fn context<'a>(device: *const KSDEVICE) -> Option<&'a DeviceContext> {
    // SAFETY: the caller's contract.
    let context = unsafe { ks::device_context(device) }.cast::<DeviceContext>();
    // SAFETY: the context is the one `add` set, alive with the device.
    unsafe { context.as_ref() }
}

/// `AVStrMiniDeviceStart`: creates the filter factories (at the first start) and the simulated
/// hardware (likewise), and takes the DMA resources. The sample has no hardware resources to
/// translate. PASSIVE_LEVEL.
///
/// # Safety
///
/// Only AVStream calls it, with a live device.
pub(crate) unsafe extern "C" fn start(
    device: *mut KSDEVICE,
    _irp: PIRP,
    _translated: PCM_RESOURCE_LIST,
    _untranslated: PCM_RESOURCE_LIST,
) -> NTSTATUS {
    // SAFETY: a live device (this function's contract).
    let Some(context) = (unsafe { context(device) }) else {
        return Error::INVALID_DEVICE_STATE.to_status();
    };
    // A restart after a stop keeps its factory (AVStream clears `Started` at every stop, so the
    // context remembers).
    let created = context.factories.load(Ordering::Acquire);
    if created < descriptors::FILTERS.len() {
        // SAFETY: as above; the factories are created with the device mutex held, as avshws
        // does.
        let (count, status) = unsafe { descriptors::create_filter_factories(device, created) };
        context.factories.store(count, Ordering::Release);
        if let Err(error) = to_result(status) {
            return error.to_status();
        }
    }
    // SAFETY: as above.
    from_result(unsafe { context.start(device) })
}

impl DeviceContext {
    /// Makes the simulated hardware if there is none, then takes the DMA resources.
    /// PASSIVE_LEVEL.
    ///
    /// # Safety
    ///
    /// `device` is the live device of this context, in its start callback.
    unsafe fn start(&self, device: *mut KSDEVICE) -> ks_allocator::Result {
        if self.hardware.load(Ordering::Acquire).is_null() {
            let hardware = PoolBox::new(Hardware::new(), POOL_TAG)
                .map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
            // SAFETY: the hardware is in pool, where it stays until removal; initialised once.
            unsafe { hardware.initialize() };
            self.hardware.store(PoolBox::into_raw(hardware), Ordering::Release);
        }
        // SAFETY: as above.
        let dma = unsafe { DeviceDma::start(device) }?;
        let dma = PoolBox::new(dma, POOL_TAG).map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
        // SAFETY: a live device; PASSIVE_LEVEL.
        unsafe { ks_sys::KsAcquireDevice(device) };
        self.release_dma(); // a start without a stop before it
        self.dma.store(PoolBox::into_raw(dma), Ordering::Release);
        // SAFETY: acquired above.
        unsafe { ks_sys::KsReleaseDevice(device) };
        Ok(())
    }
}

/// `AVStrMiniDeviceQueryStop`: vetoes a PnP stop (a rebalance) while a pin streams, whose frames
/// AVStream maps through the device's DMA adapter: the stop would give the adapter back under
/// them. A stopped pin does not stand in the way (it has no frames); the stop can be asked for
/// again once the stream ends. PASSIVE_LEVEL.
///
/// # Safety
///
/// Only AVStream calls it, with a live device.
pub(crate) unsafe extern "C" fn query_stop(device: *mut KSDEVICE, _irp: PIRP) -> NTSTATUS {
    // SAFETY: a live device (this function's contract).
    let streaming =
        unsafe { context(device) }.and_then(DeviceContext::hardware).is_some_and(Hardware::in_use);
    if streaming { ks_sys::STATUS_DEVICE_BUSY } else { ks_sys::STATUS_SUCCESS }
}

/// `AVStrMiniDeviceStop`: gives up the DMA resources (the hardware stays until removal).
/// PASSIVE_LEVEL.
///
/// # Safety
///
/// Only AVStream calls it, with a live device.
pub(crate) unsafe extern "C" fn stop(device: *mut KSDEVICE, _irp: PIRP) {
    // SAFETY: a live device (this function's contract).
    if let Some(context) = unsafe { context(device) } {
        // SAFETY: a live device; PASSIVE_LEVEL.
        unsafe { ks_sys::KsAcquireDevice(device) };
        context.release_dma();
        // SAFETY: acquired above.
        unsafe { ks_sys::KsReleaseDevice(device) };
    }
}
