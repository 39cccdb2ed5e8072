//! Routines imported from `ks.sys` (through `ks.lib`), with the prototypes of `ks.h`.
//!
//! Every routine here is a real export of ks.sys. Header macros and inline helpers that are not
//! exports (`KsEdit`, `KsEditSized`) are small Rust functions at the end of this module.
//!
//! On Windows these resolve against ks.sys. In the user-mode host, `ks-host` defines the ones
//! that the library and the sample driver call; a routine the host does not define fails to
//! link there instead of being faked.

use crate::{
    BOOLEAN, HANDLE, KSALLOCATOR_FRAMING_EX, KSDEVICE_DESCRIPTOR, KSFILTER_DESCRIPTOR,
    KSOBJECT_BAG, KSPROPERTY_SET, KSSTREAM_POINTER_STATE, NTSTATUS, PADAPTER_OBJECT,
    PDEVICE_OBJECT, PDRIVER_OBJECT, PFNKSDEFAULTALLOCATE, PFNKSDEFAULTFREE, PFNKSDELETEALLOCATOR,
    PFNKSFILTERFACTORYPOWER, PFNKSFREE, PFNKSINITIALIZEALLOCATOR, PFNKSSTREAMPOINTER, PHANDLE,
    PIRP, PKSALLOCATOR_FRAMING, PKSALLOCATOR_FRAMING_EX, PKSDEVICE, PKSFILTER, PKSFILTERFACTORY,
    PKSPIN, PKSSTREAM_POINTER, PSECURITY_DESCRIPTOR, PUNICODE_STRING, PVOID, PWSTR, ULONG,
};

// `ks.lib`, the import library of ks.sys, on the link line of a Windows build with the WDK,
// written the way wdk-sys writes its base libraries (`ntoskrnl`, `hal`, …): a static,
// non-bundled `#[link]` on an empty block, left out of the crate's own tests. The library search
// path is the driver's business: `wdk_build::configure_wdk_binary_build` in the driver's build
// script puts the WDK's `km` directory on it, and neither wdk-sys nor this crate does. Only the
// driver crate enables `wdk`; user-mode tools never do (build them without the driver crate
// selected, so that features do not unify).
#[cfg(all(windows, feature = "wdk", not(test)))]
#[link(name = "ks", kind = "static", modifiers = "-bundle")]
unsafe extern "C" {}

ks_imports! {
    KS_IMPORTS, extern "system";
    /// Creates the default (pool) allocator for a validated allocator create IRP. PASSIVE_LEVEL.
    pub fn KsCreateDefaultAllocator(Irp: PIRP) -> NTSTATUS;
    /// Creates an allocator object for an allocator create IRP whose frames come from the
    /// given callbacks (all NULL for the default pool allocator). PASSIVE_LEVEL.
    pub fn KsCreateDefaultAllocatorEx(
        Irp: PIRP,
        InitializeContext: PVOID,
        DefaultAllocate: PFNKSDEFAULTALLOCATE,
        DefaultFree: PFNKSDEFAULTFREE,
        InitializeAllocator: PFNKSINITIALIZEALLOCATOR,
        DeleteAllocator: PFNKSDELETEALLOCATOR,
    ) -> NTSTATUS;
    /// Validates an allocator create IRP and returns the framing it carries. PASSIVE_LEVEL.
    pub fn KsValidateAllocatorCreateRequest(
        Irp: PIRP,
        AllocatorFraming: *mut PKSALLOCATOR_FRAMING,
    ) -> NTSTATUS;
    /// Creates an allocator on a sink connection handle. PASSIVE_LEVEL.
    pub fn KsCreateAllocator(
        ConnectionHandle: HANDLE,
        AllocatorFraming: PKSALLOCATOR_FRAMING,
        AllocatorHandle: PHANDLE,
    ) -> NTSTATUS;
    /// "For system use only": a narrow check of an extended framing.
    pub fn KsValidateAllocatorFramingEx(
        Framing: PKSALLOCATOR_FRAMING_EX,
        BufferSize: ULONG,
        PinFraming: *const KSALLOCATOR_FRAMING_EX,
    ) -> NTSTATUS;
    /// Initialises an AVStream minidriver from `DriverEntry`. PASSIVE_LEVEL.
    pub fn KsInitializeDriver(
        DriverObject: PDRIVER_OBJECT,
        RegistryPathName: PUNICODE_STRING,
        Descriptor: *const KSDEVICE_DESCRIPTOR,
    ) -> NTSTATUS;
    /// Makes an item writable and owned by an object bag (the routine behind `KsEdit`).
    /// PASSIVE_LEVEL, with the bag's mutex held.
    pub fn _KsEdit(
        ObjectBag: KSOBJECT_BAG,
        PointerToPointerToItem: *mut PVOID,
        NewSize: ULONG,
        OldSize: ULONG,
        Tag: ULONG,
    ) -> NTSTATUS;
    /// Adds an item to an object bag. PASSIVE_LEVEL.
    pub fn KsAddItemToObjectBag(ObjectBag: KSOBJECT_BAG, Item: PVOID, Free: PFNKSFREE) -> NTSTATUS;
    /// Creates a filter factory. PASSIVE_LEVEL.
    pub fn KsCreateFilterFactory(
        DeviceObject: PDEVICE_OBJECT,
        Descriptor: *const KSFILTER_DESCRIPTOR,
        RefString: PWSTR,
        SecurityDescriptor: PSECURITY_DESCRIPTOR,
        CreateItemFlags: ULONG,
        SleepCallback: PFNKSFILTERFACTORYPOWER,
        WakeCallback: PFNKSFILTERFACTORYPOWER,
        FilterFactory: *mut PKSFILTERFACTORY,
    ) -> NTSTATUS;
    /// Acquires the device mutex. PASSIVE_LEVEL.
    pub fn KsAcquireDevice(Device: PKSDEVICE);
    /// Releases the device mutex. PASSIVE_LEVEL.
    pub fn KsReleaseDevice(Device: PKSDEVICE);
    /// The device of an AVStream object.
    pub fn KsGetDevice(Object: PVOID) -> PKSDEVICE;
    /// The parent of an AVStream object.
    pub fn KsGetParent(Object: PVOID) -> PVOID;
    /// Acquires the control mutex of an AVStream object. PASSIVE_LEVEL.
    pub fn KsAcquireControl(Object: PVOID);
    /// Releases the control mutex of an AVStream object. PASSIVE_LEVEL.
    pub fn KsReleaseControl(Object: PVOID);
    /// The filter that owns a pin.
    pub fn KsPinGetParentFilter(Pin: PKSPIN) -> PKSFILTER;
    /// The first pin a filter has of pin factory `PinId`, or NULL. With the filter's control
    /// mutex held.
    pub fn KsFilterGetFirstChildPin(Filter: PKSFILTER, PinId: ULONG) -> PKSPIN;
    /// Asks AVStream to call the pin's process callback. IRQL <= DISPATCH_LEVEL.
    pub fn KsPinAttemptProcessing(Pin: PKSPIN, Asynchronous: BOOLEAN);
    /// Takes the pin's processing mutex: no process callback of the pin runs until it is
    /// released. Not recursive. PASSIVE_LEVEL.
    pub fn KsPinAcquireProcessingMutex(Pin: PKSPIN);
    /// Releases the pin's processing mutex. PASSIVE_LEVEL.
    pub fn KsPinReleaseProcessingMutex(Pin: PKSPIN);
    /// The leading-edge stream pointer of a pin's queue. IRQL <= DISPATCH_LEVEL.
    pub fn KsPinGetLeadingEdgeStreamPointer(
        Pin: PKSPIN,
        State: KSSTREAM_POINTER_STATE,
    ) -> PKSSTREAM_POINTER;
    /// The trailing-edge stream pointer of a pin's queue. IRQL <= DISPATCH_LEVEL.
    pub fn KsPinGetTrailingEdgeStreamPointer(
        Pin: PKSPIN,
        State: KSSTREAM_POINTER_STATE,
    ) -> PKSSTREAM_POINTER;
    /// Locks a stream pointer. IRQL <= DISPATCH_LEVEL.
    pub fn KsStreamPointerLock(StreamPointer: PKSSTREAM_POINTER) -> NTSTATUS;
    /// Unlocks a stream pointer, optionally ejecting its frame. IRQL <= DISPATCH_LEVEL.
    pub fn KsStreamPointerUnlock(StreamPointer: PKSSTREAM_POINTER, Eject: BOOLEAN);
    /// Advances a stream pointer to the next frame. IRQL <= DISPATCH_LEVEL.
    pub fn KsStreamPointerAdvance(StreamPointer: PKSSTREAM_POINTER) -> NTSTATUS;
    /// Advances a stream pointer's offsets. IRQL <= DISPATCH_LEVEL.
    pub fn KsStreamPointerAdvanceOffsets(
        StreamPointer: PKSSTREAM_POINTER,
        InUsed: ULONG,
        OutUsed: ULONG,
        Eject: BOOLEAN,
    ) -> NTSTATUS;
    /// Advances a stream pointer's offsets and unlocks it. IRQL <= DISPATCH_LEVEL.
    pub fn KsStreamPointerAdvanceOffsetsAndUnlock(
        StreamPointer: PKSSTREAM_POINTER,
        InUsed: ULONG,
        OutUsed: ULONG,
        Eject: BOOLEAN,
    );
    /// Clones a stream pointer. IRQL <= DISPATCH_LEVEL.
    pub fn KsStreamPointerClone(
        StreamPointer: PKSSTREAM_POINTER,
        CancelCallback: PFNKSSTREAMPOINTER,
        ContextSize: ULONG,
        CloneStreamPointer: *mut PKSSTREAM_POINTER,
    ) -> NTSTATUS;
    /// Deletes a stream pointer clone. IRQL <= DISPATCH_LEVEL.
    pub fn KsStreamPointerDelete(StreamPointer: PKSSTREAM_POINTER);
    /// The next clone in a pin's clone list. IRQL <= DISPATCH_LEVEL.
    pub fn KsStreamPointerGetNextClone(StreamPointer: PKSSTREAM_POINTER) -> PKSSTREAM_POINTER;
    /// The oldest clone of a pin's stream pointers, or NULL. IRQL <= DISPATCH_LEVEL.
    pub fn KsPinGetFirstCloneStreamPointer(Pin: PKSPIN) -> PKSSTREAM_POINTER;
    /// Registers a device's DMA adapter with AVStream, which then builds scatter/gather
    /// mappings for pins with `KSPIN_FLAG_GENERATE_MAPPINGS`: at most `MaxMappingsByteCount`
    /// bytes a mapping, mappings `MappingTableStride` bytes apart (at least a `KSMAPPING`).
    /// PASSIVE_LEVEL, from the device's start.
    pub fn KsDeviceRegisterAdapterObject(
        Device: PKSDEVICE,
        AdapterObject: PADAPTER_OBJECT,
        MaxMappingsByteCount: ULONG,
        MappingTableStride: ULONG,
    );
    /// The pin an IRP addresses (the object of its file object). PASSIVE_LEVEL, in the pin's
    /// dispatch routines.
    pub fn KsGetPinFromIrp(Irp: PIRP) -> PKSPIN;
    /// Dispatches a property request through property sets. PASSIVE_LEVEL.
    pub fn KsPropertyHandler(
        Irp: PIRP,
        PropertySetsCount: ULONG,
        PropertySet: *const KSPROPERTY_SET,
    ) -> NTSTATUS;
}

/// `KsEdit(Object, PointerToPointer, Tag)`: makes `*item` a bag-owned, writable copy of the
/// item it points to, of the same size.
///
/// # Safety
///
/// Same contract as `_KsEdit`: PASSIVE_LEVEL, the mutex associated with `bag` is held, `item`
/// points to a valid pointer to a `T` that lives at least until the copy is made.
///
/// # Errors
///
/// `STATUS_INSUFFICIENT_RESOURCES` if the copy cannot be allocated.
pub unsafe fn KsEdit<T>(bag: KSOBJECT_BAG, item: *mut *mut T, tag: ULONG) -> NTSTATUS {
    const {
        assert!(size_of::<T>() <= ULONG::MAX as usize, "KsEdit of an item larger than 4 GiB");
    }
    #[expect(clippy::cast_possible_truncation, reason = "checked by the const assertion above")]
    let size = size_of::<T>() as ULONG;
    // SAFETY: the caller upholds `_KsEdit`'s contract; `item` has the layout of a `PVOID*`.
    unsafe { _KsEdit(bag, item.cast(), size, size, tag) }
}

/// `KsEditSized(Object, PointerToPointer, NewSize, OldSize, Tag)`: like [`KsEdit`] with explicit
/// sizes, for variable-length items such as a `KSALLOCATOR_FRAMING_EX` with several items.
///
/// # Safety
///
/// Same contract as `_KsEdit`: PASSIVE_LEVEL, the bag's mutex is held, `item` points to a valid
/// pointer to at least `old_size` readable bytes.
///
/// # Errors
///
/// `STATUS_INSUFFICIENT_RESOURCES` if the copy cannot be allocated.
pub unsafe fn KsEditSized(
    bag: KSOBJECT_BAG,
    item: *mut PVOID,
    new_size: ULONG,
    old_size: ULONG,
    tag: ULONG,
) -> NTSTATUS {
    // SAFETY: the caller upholds `_KsEdit`'s contract.
    unsafe { _KsEdit(bag, item, new_size, old_size, tag) }
}
