//! The device: its context, and the PnP callbacks AVStream makes (add, start, stop), as avshws
//! has them: the filter factory is created at start, and the simulated hardware is owned by the
//! device from start to stop (or removal).

use core::{
    ptr::{self, NonNull},
    sync::atomic::{AtomicPtr, Ordering},
};

use ks_allocator::{Error, PoolBox, from_result, to_result};
use ks_sys::{KSDEVICE, NTSTATUS, PCM_RESOURCE_LIST, PIRP, PVOID};

use crate::{POOL_TAG, descriptors, hardware::Hardware, ks};

/// What the driver keeps per device (`KSDEVICE.Context`).
pub(crate) struct DeviceContext {
    /// The simulated hardware, from PnP start to stop; NULL otherwise.
    hardware: AtomicPtr<Hardware>,
}

impl DeviceContext {
    /// The hardware, if the device is started.
    pub(crate) fn hardware(&self) -> Option<&Hardware> {
        // SAFETY: a non-NULL pointer is a live boxed Hardware, released only by `release` after
        // every pin using it has stopped (AVStream closes the filters before PnP stop).
        unsafe { self.hardware.load(Ordering::Acquire).as_ref() }
    }

    /// Releases the hardware, if any. PASSIVE_LEVEL.
    fn release(&self) {
        if let Some(hardware) = NonNull::new(self.hardware.swap(ptr::null_mut(), Ordering::AcqRel))
        {
            // SAFETY: the pointer came from `PoolBox::into_raw` with POOL_TAG in `start`, and the
            // swap took it out, so it is taken back once.
            drop(unsafe { PoolBox::from_raw_with_tag(hardware, POOL_TAG) });
        }
    }
}

impl Drop for DeviceContext {
    /// Removal without a stop first still releases the hardware. PASSIVE_LEVEL.
    fn drop(&mut self) {
        self.release();
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
    let Ok(context) =
        PoolBox::new(DeviceContext { hardware: AtomicPtr::new(ptr::null_mut()) }, POOL_TAG)
    else {
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

/// `AVStrMiniDeviceStart`: creates the filter factory and the simulated hardware. The sample
/// takes no hardware resources. PASSIVE_LEVEL.
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
    // SAFETY: as above.
    if unsafe { ks::device_started(device) } {
        return ks_sys::STATUS_SUCCESS; // a restart after a stop keeps its factory
    }
    // SAFETY: as above; the factory is created with the device mutex held, as avshws does.
    let status = unsafe { descriptors::create_filter_factory(device) };
    if let Err(error) = to_result(status) {
        return error.to_status();
    }
    from_result(context.start())
}

impl DeviceContext {
    /// Makes the simulated hardware. PASSIVE_LEVEL.
    fn start(&self) -> ks_allocator::Result {
        if !self.hardware.load(Ordering::Acquire).is_null() {
            return Ok(());
        }
        let hardware =
            PoolBox::new(Hardware::new(), POOL_TAG).map_err(|_| Error::INSUFFICIENT_RESOURCES)?;
        // SAFETY: the hardware is in pool, where it stays until `release`; initialised once.
        unsafe { hardware.initialize() };
        self.hardware.store(PoolBox::into_raw(hardware), Ordering::Release);
        Ok(())
    }
}

/// `AVStrMiniDeviceStop`: releases the simulated hardware. PASSIVE_LEVEL.
///
/// # Safety
///
/// Only AVStream calls it, with a live device.
pub(crate) unsafe extern "C" fn stop(device: *mut KSDEVICE, _irp: PIRP) {
    // SAFETY: a live device (this function's contract).
    if let Some(context) = unsafe { context(device) } {
        context.release();
    }
}
