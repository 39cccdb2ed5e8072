//! The ntoskrnl routines and constants the library uses besides KS: pool allocation, routine
//! lookup, object references, timers and DPCs, DMA adapters, and debug output and breakpoints
//! (`wdm.h`, `dpfilter.h`).
//!
//! `ExAllocatePool2` is deliberately *not* imported: a driver that imports it does not load on
//! Windows before 10 version 2004. The library looks it up with `MmGetSystemRoutineAddress` and
//! falls back to `ExAllocatePoolWithTag`, as Microsoft documents for drivers that support older
//! versions; [`PFN_EX_ALLOCATE_POOL2`] is its type.

use core::ffi::c_char;

use crate::{
    ACCESS_MASK, BOOLEAN, HANDLE, INTERFACE_TYPE, KPROCESSOR_MODE, LARGE_INTEGER, LONG, LONG_PTR,
    NTSTATUS, PDEVICE_DESCRIPTION, PDEVICE_OBJECT, PDMA_ADAPTER, PDRIVER_OBJECT, PHYSICAL_ADDRESS,
    PIRP, PKDEFERRED_ROUTINE, PKDPC, PKTIMER, POBJECT_HANDLE_INFORMATION, POBJECT_TYPE, POOL_FLAGS,
    POOL_TYPE, PPROCESSOR_NUMBER, PRKDPC, PULONG, PUNICODE_STRING, PVOID, SIZE_T, TIMER_TYPE,
    ULONG, ULONGLONG, USHORT,
};

/// Interrupt request level.
pub type KIRQL = u8;
/// Pointer to a constant NUL-terminated ANSI string.
pub type PCSTR = *const c_char;

/// The type of `ExAllocatePool2(Flags, NumberOfBytes, Tag)`, as `MmGetSystemRoutineAddress`
/// returns it. IRQL <= DISPATCH_LEVEL (<= APC_LEVEL for paged pool).
pub type PFN_EX_ALLOCATE_POOL2 = Option<
    unsafe extern "system" fn(Flags: POOL_FLAGS, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID,
>;

// "C", as wdk-sys's bindings declare ntoskrnl's routines (x64 has one calling convention, so
// `NTAPI` changes nothing), so that each routine here has the type of wdk-sys's.
ks_imports! {
    NT_IMPORTS, extern "C";
    /// Allocates pool memory of a `POOL_TYPE` (not zeroed). Deprecated in favour of
    /// `ExAllocatePool2`, which it stands in for on older Windows. IRQL <= DISPATCH_LEVEL
    /// (<= APC_LEVEL for paged pool).
    pub fn ExAllocatePoolWithTag(PoolType: POOL_TYPE, NumberOfBytes: SIZE_T, Tag: ULONG) -> PVOID;
    /// Frees pool memory allocated with the same tag. IRQL <= DISPATCH_LEVEL (<= APC_LEVEL for
    /// paged pool).
    pub fn ExFreePoolWithTag(P: PVOID, Tag: ULONG);
    /// The address of an exported kernel routine, or NULL. PASSIVE_LEVEL.
    pub fn MmGetSystemRoutineAddress(SystemRoutineName: PUNICODE_STRING) -> PVOID;
    /// Whether the IRP comes from a 32-bit process under WOW64 (its pointers and handles are
    /// 4 bytes). IRQL <= DISPATCH_LEVEL.
    pub fn IoIs32bitProcess(Irp: PIRP) -> BOOLEAN;
    /// Resolves a handle in the current process's handle table (or the kernel's) to its object
    /// and takes a reference on it. `AccessMode` is the requestor's mode: from `UserMode` a kernel
    /// handle is refused and the granted access is checked. `ObjectType` NULL accepts any type.
    /// IRQL PASSIVE_LEVEL, in the context of the process that owns the handle.
    pub fn ObReferenceObjectByHandle(
        Handle: HANDLE,
        DesiredAccess: ACCESS_MASK,
        ObjectType: POBJECT_TYPE,
        AccessMode: KPROCESSOR_MODE,
        Object: *mut PVOID,
        HandleInformation: POBJECT_HANDLE_INFORMATION,
    ) -> NTSTATUS;
    /// Releases one reference on an object (the routine behind the `ObDereferenceObject` macro
    /// on x64). IRQL <= DISPATCH_LEVEL.
    pub fn ObfDereferenceObject(Object: PVOID) -> LONG_PTR;
    /// Breaks into the kernel debugger. Without a debugger attached the breakpoint exception
    /// is not handled and the system bugchecks: ask [`KdRefreshDebuggerNotPresent`] first.
    /// Any IRQL.
    pub fn DbgBreakPoint();
    /// Refreshes and returns `KD_DEBUGGER_NOT_PRESENT`: `FALSE` (0) when a kernel debugger is
    /// attached. Any IRQL.
    pub fn KdRefreshDebuggerNotPresent() -> BOOLEAN;
    /// Initialises a timer object (`NotificationTimer` or `SynchronizationTimer`), not set.
    /// IRQL <= DISPATCH_LEVEL.
    pub fn KeInitializeTimerEx(Timer: PKTIMER, Type: TIMER_TYPE);
    /// Initialises a DPC object with its routine and context. Any IRQL.
    pub fn KeInitializeDpc(Dpc: PRKDPC, DeferredRoutine: PKDEFERRED_ROUTINE, DeferredContext: PVOID);
    /// Sets a timer to expire at `DueTime` (negative: relative, in 100 ns units; positive:
    /// absolute system time), then every `Period` milliseconds if `Period` is not 0, queueing
    /// `Dpc` (if not NULL) each time. Returns whether the timer was already set (it is reset).
    /// IRQL <= DISPATCH_LEVEL.
    pub fn KeSetTimerEx(Timer: PKTIMER, DueTime: LARGE_INTEGER, Period: LONG, Dpc: PKDPC) -> BOOLEAN;
    /// Cancels a timer; returns whether it was set. A DPC it already queued still runs (see
    /// `KeFlushQueuedDpcs`). IRQL <= DISPATCH_LEVEL.
    pub fn KeCancelTimer(Timer: PKTIMER) -> BOOLEAN;
    /// Returns once every DPC queued on any processor has run. PASSIVE_LEVEL.
    pub fn KeFlushQueuedDpcs();
    /// The interrupt time (100 ns units since boot), not counting time the system slept: the
    /// clock relative timers run on. Any IRQL.
    pub fn KeQueryUnbiasedInterruptTime() -> ULONGLONG;
    /// The system-wide index of the processor the caller runs on (0 up to the number of active
    /// processors, across groups), and its group and number in `*ProcNumber` unless that is
    /// NULL. Any IRQL; below DISPATCH_LEVEL the thread may move to another processor as soon as
    /// this returns, so the answer is then only a hint.
    pub fn KeGetCurrentProcessorNumberEx(ProcNumber: PPROCESSOR_NUMBER) -> ULONG;
    /// The number of active processors in a group, or in all of them with
    /// [`ALL_PROCESSOR_GROUPS`]. Any IRQL. Processors added while the system runs make it grow.
    pub fn KeQueryActiveProcessorCountEx(GroupNumber: USHORT) -> ULONG;
    /// The DMA adapter of a device, for the DMA `DeviceDescription` describes; the number of map
    /// registers it may use in `*NumberOfMapRegisters`. NULL when there is none. PASSIVE_LEVEL.
    /// Its operations are called through `DMA_ADAPTER.DmaOperations`; `PutDmaAdapter` gives it
    /// back.
    pub fn IoGetDmaAdapter(
        PhysicalDeviceObject: PDEVICE_OBJECT,
        DeviceDescription: PDEVICE_DESCRIPTION,
        NumberOfMapRegisters: PULONG,
    ) -> PDMA_ADAPTER;
    /// The physical address of a valid non-paged virtual address. Any IRQL. Not for DMA: a
    /// device is given the logical addresses of its adapter (`AllocateCommonBuffer`, mappings).
    pub fn MmGetPhysicalAddress(BaseAddress: PVOID) -> PHYSICAL_ADDRESS;
    /// The system virtual address of a physical address of RAM, or NULL. IRQL <=
    /// DISPATCH_LEVEL. The sample's simulated hardware uses it to reach what a real device
    /// reaches by bus-master DMA (see the sample's `dma` module for when that is valid).
    pub fn MmGetVirtualForPhysical(PhysicalAddress: PHYSICAL_ADDRESS) -> PVOID;
}

// A data export is only reachable through its import slot (`__imp_IoFileObjectType`), which
// the compiler uses for a static of a block linked as a DLL import: in a kernel image the block
// names ntoskrnl (what wdm.h's NTKERNELAPI, dllimport, says in C). Elsewhere, a user-mode host
// on Windows included, the host defines it and no ntoskrnl.lib is wanted.
#[cfg_attr(all(windows, feature = "kernel"), link(name = "ntoskrnl"))]
unsafe extern "C" {
    /// The object type of file objects (`*IoFileObjectType`), for
    /// [`ObReferenceObjectByHandle`]. A data export of ntoskrnl.exe, set before any driver loads
    /// and never changed.
    pub static IoFileObjectType: *const POBJECT_TYPE;
}

unsafe extern "C" {
    /// Sends a printf-style message to the kernel debugger, filtered by component and level.
    /// IRQL <= DIRQL (only non-Unicode formats above PASSIVE_LEVEL). At most 512 bytes are
    /// transmitted per call.
    pub fn DbgPrintEx(ComponentId: ULONG, Level: ULONG, Format: PCSTR, ...) -> ULONG;
}

/// Offset of `KDPC.DeferredRoutine` (x64): where `KeInitializeDpc` stores the routine.
pub const KDPC_DEFERRED_ROUTINE_OFFSET: usize = 24;
/// Offset of `KDPC.DeferredContext` (x64): where `KeInitializeDpc` stores the context.
pub const KDPC_DEFERRED_CONTEXT_OFFSET: usize = 32;

/// Offset of `DRIVER_OBJECT.DriverUnload` (x64): where `DriverEntry` stores a
/// [`PDRIVER_UNLOAD`] to make the driver unloadable.
pub const DRIVER_OBJECT_DRIVER_UNLOAD_OFFSET: usize = 104;

/// `DRIVER_UNLOAD`: called once, at PASSIVE_LEVEL, before the driver image is unloaded.
pub type PDRIVER_UNLOAD = Option<unsafe extern "C" fn(DriverObject: PDRIVER_OBJECT)>;

/// `DbgPrintEx`'s prototype for the conformance test (the variadic tail is not recorded).
pub(crate) const DBGPRINTEX_PROTOTYPE: crate::layout::Prototype = crate::layout::Prototype {
    name: "DbgPrintEx",
    params: &[
        crate::layout::ParamLayout { name: "ComponentId", size: 4 },
        crate::layout::ParamLayout { name: "Level", size: 4 },
        crate::layout::ParamLayout { name: "Format", size: size_of::<PCSTR>() },
    ],
    ret_size: size_of::<ULONG>(),
};

ks_consts! {
    NT_POOL_AND_DEBUG, "A `POOL_FLAG_*` bit, an IRQL, or a `DbgPrintEx` component or level.";
    /// Do not zero the allocation.
    POOL_FLAG_UNINITIALIZED: POOL_FLAGS = 0x0000_0002;
    /// Cache-aligned allocation.
    POOL_FLAG_CACHE_ALIGNED: POOL_FLAGS = 0x0000_0008;
    /// Non-paged, non-executable pool.
    POOL_FLAG_NON_PAGED: POOL_FLAGS = 0x0000_0040;
    /// Paged pool.
    POOL_FLAG_PAGED: POOL_FLAGS = 0x0000_0100;
    /// `DEVICE_DESCRIPTION.Version` without the version-1 and -2 fields.
    DEVICE_DESCRIPTION_VERSION: ULONG = 0;
    /// `DEVICE_DESCRIPTION.Version` 1 (`IgnoreCount` and `Reserved1` are read).
    DEVICE_DESCRIPTION_VERSION1: ULONG = 1;
    /// `DEVICE_DESCRIPTION.Version` 2 (`Dma64BitAddresses` is read).
    DEVICE_DESCRIPTION_VERSION2: ULONG = 2;
    /// Normal thread execution. Typed as wdk-sys types the `#define` (`u32`): compare with
    /// `u32::from(irql)`.
    PASSIVE_LEVEL: ULONG = 0;
    /// Asynchronous procedure calls are masked (`u32`, as in wdk-sys).
    APC_LEVEL: ULONG = 1;
    /// DPCs and the dispatcher are masked; no paging, no waiting (`u32`, as in wdk-sys).
    DISPATCH_LEVEL: ULONG = 2;
    /// A timer that stays signalled until reset (`TIMER_TYPE`).
    NotificationTimer: TIMER_TYPE = 0;
    /// A timer that releases one waiter and resets itself (`TIMER_TYPE`).
    SynchronizationTimer: TIMER_TYPE = 1;
    /// `DEVICE_DESCRIPTION.InterfaceType` of a PCI device (`INTERFACE_TYPE`).
    PCIBus: INTERFACE_TYPE = 5;
    /// The requestor of an IRP is kernel code (`KPROCESSOR_MODE`).
    KernelMode: KPROCESSOR_MODE = 0;
    /// The requestor of an IRP is a user-mode process.
    UserMode: KPROCESSOR_MODE = 1;
    /// Component id for streaming drivers' debug output.
    DPFLTR_IHVSTREAMING_ID: ULONG = 81;
    /// Error messages.
    DPFLTR_ERROR_LEVEL: ULONG = 0;
    /// Warnings.
    DPFLTR_WARNING_LEVEL: ULONG = 1;
    /// `KeQueryActiveProcessorCountEx`'s group number for the processors of every group. Typed
    /// as wdk-sys types the `#define` (`u32`); the parameter is a `USHORT`.
    ALL_PROCESSOR_GROUPS: ULONG = 0xFFFF;
    /// Trace messages.
    DPFLTR_TRACE_LEVEL: ULONG = 2;
    /// Informational messages.
    DPFLTR_INFO_LEVEL: ULONG = 3;
}
