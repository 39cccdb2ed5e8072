//! AVStream objects as ks.sys keeps them: each public structure (`KSDEVICE`, `KSFILTERFACTORY`,
//! `KSFILTER`, `KSPIN`) preceded by a header the host uses to find the object's kind, parent,
//! device, object bag and mutex from the pointer a driver holds. And the routines that work on
//! any object: object bags and `_KsEdit`, `KsGetDevice`, `KsGetParent`, `KsPinGetParentFilter`,
//! `KsAcquireControl`/`KsReleaseControl`, `KsAcquireDevice`/`KsReleaseDevice`.
//!
//! # Mutexes
//!
//! AVStream's device mutex and filter control mutexes are not recursive: a thread that takes one
//! it already holds deadlocks with itself ("Device Mutex in AVStream", "Filter Control Mutex in
//! AVStream"). The host's [`ControlMutex`] records that as a violation naming the mutex (and then
//! carries on, so that the test reports it instead of hanging). The routines documented to need a
//! mutex check that the calling thread holds it, and record a violation otherwise:
//! `KsAddItemToObjectBag` and `_KsEdit` the mutex of the bag (the device mutex for a device's or
//! filter factory's bag, the filter control mutex for a filter's or its pins' bags), and
//! `KsCreateFilterFactory` the device mutex.

use std::{
    sync::{Condvar, Mutex},
    thread::ThreadId,
};

use ks_sys::{
    KSDEVICE, KSOBJECT_BAG, KSPIN, NTSTATUS, PFNKSFREE, PKSDEVICE, PKSFILTER, PKSPIN, PVOID,
    SIZE_T, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, ULONG,
};

use crate::irql::PASSIVE_LEVEL;

/// What an object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Device,
    Factory,
    Filter,
    Pin,
    /// A pin with no filter or pipe (`DetachedPin`): a header and a control mutex only.
    DetachedPin,
}

const MAGIC: u64 = u64::from_le_bytes(*b"KsHostOb");

/// The header in front of every object's public structure.
#[repr(C)]
pub(crate) struct Header {
    magic: u64,
    pub(crate) kind: Kind,
    /// The parent's public structure (NULL for a device).
    pub(crate) parent: PVOID,
    /// The device's public structure.
    pub(crate) device: PKSDEVICE,
    /// The object's bag.
    pub(crate) bag: *const Bag,
    /// The mutex `KsAcquireControl` takes: the filter's for a filter and its pins, the device's
    /// for a device and its factories. It is also the mutex of the object's bag.
    pub(crate) control: *const ControlMutex,
}

/// An object: the header, then the public structure a driver sees, then the host's own state.
#[repr(C)]
pub(crate) struct Object<P, S> {
    pub(crate) header: Header,
    pub(crate) public: P,
    pub(crate) state: S,
}

const _: () =
    assert!(size_of::<Header>().is_multiple_of(8), "public structures are 8-byte aligned");

/// The public structures of the objects alive now, by address.
static OBJECTS: Mutex<Option<std::collections::HashSet<usize>>> = Mutex::new(None);

/// Records a live object's public structure.
pub(crate) fn register(public: PVOID) {
    crate::lock(&OBJECTS).get_or_insert_with(Default::default).insert(public.addr());
}

/// Forgets an object's public structure (it is being dropped).
pub(crate) fn unregister(public: PVOID) {
    if let Some(objects) = crate::lock(&OBJECTS).as_mut() {
        objects.remove(&public.addr());
    }
}

/// The header of the object whose public structure is at `public`, if it is a live host
/// object; `None` for anything else (NULL, a structure a driver made itself, a freed object),
/// which is never read.
///
/// # Safety
///
/// A live object's header lives as long as the object: the result must not outlive it.
pub(crate) unsafe fn header<'a>(public: PVOID) -> Option<&'a Header> {
    let live =
        crate::lock(&OBJECTS).as_ref().is_some_and(|objects| objects.contains(&public.addr()));
    if !live {
        return None;
    }
    let header = public.wrapping_byte_sub(size_of::<Header>()).cast::<Header>();
    // SAFETY: a registered public structure is preceded by its header, alive with it.
    let header = unsafe { &*header };
    (header.magic == MAGIC).then_some(header)
}

impl<P, S> Object<P, S> {
    /// An object; the header's pointers are filled by the caller once it is at its final
    /// address.
    pub(crate) fn new(kind: Kind, public: P, state: S) -> Self {
        Self {
            header: Header {
                magic: MAGIC,
                kind,
                parent: std::ptr::null_mut(),
                device: std::ptr::null_mut(),
                bag: std::ptr::null(),
                control: std::ptr::null(),
            },
            public,
            state,
        }
    }
}

/// The state behind a pin's public pointer.
///
/// # Safety
///
/// `pin` is a pin the host made and that is still alive.
pub(crate) unsafe fn pin_object<'a>(pin: PKSPIN) -> Option<&'a super::PinState> {
    // SAFETY: the caller's contract.
    let header = unsafe { header(pin.cast()) }?;
    if header.kind != Kind::Pin {
        return None;
    }
    let object = std::ptr::from_ref(header).cast::<Object<KSPIN, super::PinState>>();
    // SAFETY: a pin header is the start of an `Object<KSPIN, PinState>`.
    Some(unsafe { &(*object).state })
}

/// The host's state of a filter, from its public structure.
///
/// # Safety
///
/// `filter` is NULL or a `KSFILTER` the host made (live while the result is used).
pub(crate) unsafe fn filter_object<'a>(filter: PKSFILTER) -> Option<&'a super::FilterState> {
    // SAFETY: the caller's contract.
    let header = unsafe { header(filter.cast()) }?;
    if header.kind != Kind::Filter {
        return None;
    }
    let object = std::ptr::from_ref(header).cast::<Object<ks_sys::KSFILTER, super::FilterState>>();
    // SAFETY: a filter header is the start of an `Object<KSFILTER, FilterState>`.
    Some(unsafe { &(*object).state })
}

/// The host's state of a device, from its public structure.
///
/// # Safety
///
/// `device` is NULL or a `KSDEVICE` the host made (live while the result is used).
pub(crate) unsafe fn device_object<'a>(device: PKSDEVICE) -> Option<&'a super::DeviceState> {
    // SAFETY: the caller's contract.
    let header = unsafe { header(device.cast()) }?;
    if header.kind != Kind::Device {
        return None;
    }
    let object = std::ptr::from_ref(header).cast::<Object<KSDEVICE, super::DeviceState>>();
    // SAFETY: a device header is the start of an `Object<KSDEVICE, DeviceState>`.
    Some(unsafe { &(*object).state })
}

/// An AVStream mutex: the device mutex or a filter control mutex. Not recursive, as on Windows:
/// taking it again on the thread that holds it is recorded as a violation (on Windows the thread
/// deadlocks with itself); the host then counts the nested hold instead of hanging the test.
pub(crate) struct ControlMutex {
    /// "device mutex" or "filter control mutex", for reports.
    name: &'static str,
    owner: Mutex<Option<(ThreadId, u32)>>,
    released: Condvar,
}

impl ControlMutex {
    pub(crate) fn new(name: &'static str) -> Self {
        Self { name, owner: Mutex::new(None), released: Condvar::new() }
    }

    /// Takes the mutex for `routine` (a driver's call, or the host acting for AVStream).
    pub(crate) fn acquire(&self, routine: &'static str) {
        let me = std::thread::current().id();
        let mut owner = crate::lock(&self.owner);
        loop {
            match *owner {
                None => {
                    *owner = Some((me, 1));
                    return;
                }
                Some((thread, depth)) if thread == me => {
                    crate::verifier::report(
                        routine,
                        format!(
                            "the calling thread already holds the {}: AVStream's mutexes are not \
                             recursive, so on Windows this thread deadlocks with itself",
                            self.name
                        ),
                    );
                    *owner = Some((me, depth + 1));
                    return;
                }
                Some(_) => {
                    owner = self
                        .released
                        .wait(owner)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
            }
        }
    }

    /// Releases once; `false` if the calling thread does not hold it.
    pub(crate) fn release(&self) -> bool {
        let me = std::thread::current().id();
        let mut owner = crate::lock(&self.owner);
        match *owner {
            Some((thread, depth)) if thread == me => {
                *owner = if depth > 1 { Some((me, depth - 1)) } else { None };
                self.released.notify_all();
                true
            }
            _ => false,
        }
    }

    /// Whether the calling thread holds it.
    pub(crate) fn held_here(&self) -> bool {
        matches!(*crate::lock(&self.owner), Some((thread, _)) if thread == std::thread::current().id())
    }

    /// Records a violation for `routine` unless the calling thread holds the mutex.
    pub(crate) fn require_held(&self, routine: &'static str, what: &str) {
        if !self.held_here() {
            crate::verifier::report(
                routine,
                format!("{what} needs the {}, which the calling thread does not hold", self.name),
            );
        }
    }
}

/// Holds a mutex until dropped: the host taking it on AVStream's behalf around a callback.
pub(crate) struct Held<'a>(&'a ControlMutex);

impl<'a> Held<'a> {
    pub(crate) fn new(mutex: &'a ControlMutex) -> Self {
        mutex.acquire("AVStream");
        Self(mutex)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// One item of an object bag: its address and how to free it.
struct Item {
    address: usize,
    free: PFNKSFREE,
}

/// An object bag: items freed when the object is destroyed.
#[derive(Default)]
pub(crate) struct Bag {
    items: Mutex<Vec<Item>>,
    /// The bag's mutex (its object's control mutex), once the object is at its final address.
    mutex: std::sync::atomic::AtomicPtr<ControlMutex>,
}

impl Bag {
    /// Associates the bag with its mutex.
    pub(crate) fn bind(&self, mutex: *const ControlMutex) {
        self.mutex.store(mutex.cast_mut(), std::sync::atomic::Ordering::Release);
    }

    /// Records a violation for `routine` unless the calling thread holds the bag's mutex.
    fn require_mutex(&self, routine: &'static str) {
        let mutex = self.mutex.load(std::sync::atomic::Ordering::Acquire);
        // SAFETY: the mutex lives in the same object as the bag, as long as the bag.
        if let Some(mutex) = unsafe { mutex.as_ref() } {
            mutex.require_held(routine, "the object bag");
        }
    }

    fn contains(&self, address: usize) -> bool {
        crate::lock(&self.items).iter().any(|item| item.address == address)
    }

    fn add(&self, address: usize, free: PFNKSFREE) {
        crate::lock(&self.items).push(Item { address, free });
    }

    fn remove(&self, address: usize) -> Option<PFNKSFREE> {
        let mut items = crate::lock(&self.items);
        let index = items.iter().position(|item| item.address == address)?;
        Some(items.remove(index).free)
    }

    /// Frees every item, newest first, as the object goes away. PASSIVE_LEVEL.
    pub(crate) fn free_all(&self) {
        loop {
            let Some(item) = crate::lock(&self.items).pop() else { break };
            free_item(item.address, item.free);
        }
    }
}

impl Drop for Bag {
    fn drop(&mut self) {
        self.free_all();
    }
}

/// Frees a bag item: its callback, or `ExFreePool` for pool memory.
fn free_item(address: usize, free: PFNKSFREE) {
    let item = std::ptr::with_exposed_provenance_mut(address);
    match free {
        // SAFETY: the callback the driver registered for this item, called once.
        Some(free) => unsafe { free(item) },
        None => match crate::pool::tag_of(item) {
            Some(tag) => crate::pool::ExFreePoolWithTag(item, tag),
            None => crate::verifier::report(
                "KsFreeObjectBag",
                format!("item {item:p} has no free callback and is not pool memory"),
            ),
        },
    }
}

/// The bag behind a `KSOBJECT_BAG`.
///
/// # Safety
///
/// `bag` is NULL or a bag of a live host object.
unsafe fn bag<'a>(bag: KSOBJECT_BAG) -> Option<&'a Bag> {
    // SAFETY: the caller's contract.
    unsafe { bag.cast::<Bag>().cast_const().as_ref() }
}

/// `KsAddItemToObjectBag`: the item is freed with the bag. PASSIVE_LEVEL.
///
/// # Safety
///
/// `ObjectBag` is the bag of a live object.
// SAFETY: no other symbol of a host process is named `KsAddItemToObjectBag`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsAddItemToObjectBag(
    ObjectBag: KSOBJECT_BAG,
    Item: PVOID,
    Free: PFNKSFREE,
) -> NTSTATUS {
    const ROUTINE: &str = "KsAddItemToObjectBag";
    crate::verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    // SAFETY: the caller's contract.
    let Some(bag) = (unsafe { bag(ObjectBag) }) else {
        crate::verifier::report(ROUTINE, "NULL bag".to_owned());
        return STATUS_INVALID_PARAMETER;
    };
    bag.require_mutex(ROUTINE);
    if Item.is_null() || bag.contains(Item.expose_provenance()) {
        crate::verifier::report(ROUTINE, format!("item {Item:p} is NULL or already in the bag"));
        return STATUS_INVALID_PARAMETER;
    }
    bag.add(Item.expose_provenance(), Free);
    STATUS_SUCCESS
}

/// `_KsEdit` (behind `KsEdit`/`KsEditSized`): makes `*PointerToPointerToItem` an item of the bag
/// of `NewSize` bytes, a copy of the first `OldSize` bytes of what it pointed at (the rest
/// zeroed), unless it already is one. PASSIVE_LEVEL, with the object's mutex held.
///
/// # Safety
///
/// `ObjectBag` is a live bag; `PointerToPointerToItem` points at a pointer to at least `OldSize`
/// readable bytes.
// SAFETY: no other symbol of a host process is named `_KsEdit`; ks-sys declares it with exactly
// this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn _KsEdit(
    ObjectBag: KSOBJECT_BAG,
    PointerToPointerToItem: *mut PVOID,
    NewSize: ULONG,
    OldSize: ULONG,
    Tag: ULONG,
) -> NTSTATUS {
    const ROUTINE: &str = "KsEdit";
    crate::verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    // SAFETY: the caller's contract.
    let Some(bag) = (unsafe { bag(ObjectBag) }) else {
        crate::verifier::report(ROUTINE, "NULL bag".to_owned());
        return STATUS_INVALID_PARAMETER;
    };
    bag.require_mutex(ROUTINE);
    if PointerToPointerToItem.is_null() || NewSize == 0 {
        return STATUS_INVALID_PARAMETER;
    }
    // SAFETY: the caller's contract.
    let old = unsafe { PointerToPointerToItem.read() };
    if bag.contains(old.expose_provenance()) && NewSize <= OldSize {
        return STATUS_SUCCESS; // already the object's own
    }
    let copy =
        crate::pool::ExAllocatePoolWithTag(ks_sys::NonPagedPoolNx, SIZE_T::from(NewSize), Tag);
    if copy.is_null() {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    // SAFETY: `copy` is a fresh block of `NewSize` bytes.
    unsafe { copy.cast::<u8>().write_bytes(0, NewSize as usize) };
    if !old.is_null() {
        let bytes = OldSize.min(NewSize) as usize;
        // SAFETY: `old` has at least `OldSize` readable bytes (the caller's contract); `copy` is
        // fresh, so they do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(old.cast::<u8>(), copy.cast::<u8>(), bytes) };
    }
    bag.add(copy.expose_provenance(), None);
    // SAFETY: the caller's contract: the pointer is writable.
    unsafe { PointerToPointerToItem.write(copy) };
    if let Some(free) = bag.remove(old.expose_provenance()) {
        free_item(old.expose_provenance(), free); // an earlier copy, replaced by a larger one
    }
    STATUS_SUCCESS
}

/// `KsGetDevice`: the device of any AVStream object. Any IRQL.
///
/// # Safety
///
/// `Object` is a live AVStream object the host made.
// SAFETY: no other symbol of a host process is named `KsGetDevice`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsGetDevice(Object: PVOID) -> PKSDEVICE {
    // SAFETY: the caller's contract.
    let Some(header) = (unsafe { header(Object) }) else {
        crate::verifier::report("KsGetDevice", format!("{Object:p} is not an AVStream object"));
        return std::ptr::null_mut();
    };
    header.device
}

/// `KsGetParent`: the parent of an AVStream object (NULL for a device). Any IRQL.
///
/// # Safety
///
/// `Object` is a live AVStream object the host made.
// SAFETY: no other symbol of a host process is named `KsGetParent`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsGetParent(Object: PVOID) -> PVOID {
    // SAFETY: the caller's contract.
    unsafe { header(Object) }.map_or(std::ptr::null_mut(), |header| header.parent)
}

/// `KsPinGetParentFilter`: the filter a pin belongs to. Any IRQL.
///
/// # Safety
///
/// `Pin` is a live pin the host made.
// SAFETY: no other symbol of a host process is named `KsPinGetParentFilter`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsPinGetParentFilter(Pin: PKSPIN) -> PKSFILTER {
    // SAFETY: the caller's contract.
    unsafe { KsGetParent(Pin.cast()) }.cast()
}

fn control(routine: &'static str, object: PVOID) -> Option<&'static ControlMutex> {
    crate::verifier::require_irql_at_most(routine, PASSIVE_LEVEL);
    // SAFETY: drivers pass their own live objects; a foreign pointer fails the magic.
    let header = unsafe { header(object) };
    // SAFETY: a header's mutex lives as long as the object.
    let mutex = header.and_then(|header| unsafe { header.control.as_ref() });
    if mutex.is_none() {
        crate::verifier::report(routine, format!("{object:p} is not an AVStream object"));
    }
    mutex
}

/// `KsAcquireControl`: takes the object's control mutex (not recursive: see the module
/// documentation). PASSIVE_LEVEL.
// SAFETY: no other symbol of a host process is named `KsAcquireControl`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KsAcquireControl(Object: PVOID) {
    if let Some(mutex) = control("KsAcquireControl", Object) {
        mutex.acquire("KsAcquireControl");
    }
}

/// `KsReleaseControl`: releases the object's control mutex. PASSIVE_LEVEL.
// SAFETY: no other symbol of a host process is named `KsReleaseControl`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KsReleaseControl(Object: PVOID) {
    if let Some(mutex) = control("KsReleaseControl", Object)
        && !mutex.release()
    {
        crate::verifier::report("KsReleaseControl", "the caller does not hold it".to_owned());
    }
}

/// `KsAcquireDevice`: takes the device mutex (not recursive). PASSIVE_LEVEL.
// SAFETY: no other symbol of a host process is named `KsAcquireDevice`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KsAcquireDevice(Device: PKSDEVICE) {
    KsAcquireControl(Device.cast());
}

/// `KsReleaseDevice`: releases the device mutex. PASSIVE_LEVEL.
// SAFETY: no other symbol of a host process is named `KsReleaseDevice`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KsReleaseDevice(Device: PKSDEVICE) {
    KsReleaseControl(Device.cast());
}

/// The size of a `KSDEVICE`, to place the header before it.
const _: () = assert!(align_of::<KSDEVICE>() <= 8 && align_of::<KSPIN>() <= 8);
