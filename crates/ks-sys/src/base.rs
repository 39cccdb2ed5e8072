//! NT base types that the KS definitions are written in.
//!
//! With the `wdk` feature on a Windows host these are re-exported from `wdk-sys`, so ks-sys
//! structures and wdk-sys structures are the same Rust types. Everywhere else ks-sys defines the
//! same names with the same x64 layout, so the library and the sample driver build, run and are
//! tested on any host. Only the re-export is chosen by `cfg`; no logic depends on it.
//!
//! Kernel objects that KS only passes by pointer (`IRP`, `FILE_OBJECT`, `DEVICE_OBJECT`, …) are
//! opaque in the local definitions: nothing in ks-allocator reads their fields.

#[cfg(all(windows, feature = "wdk"))]
pub use wdk_sys::{
    ACCESS_MASK, BOOLEAN, CCHAR, CM_RESOURCE_LIST, DEVICE_CAPABILITIES, DEVICE_OBJECT,
    DEVICE_POWER_STATE, DRIVER_OBJECT, FILE_OBJECT, GUID, HANDLE, IO_STATUS_BLOCK, IRP, KDPC,
    KPROCESSOR_MODE, KTIMER, LARGE_INTEGER, LONG, LONG_PTR, LONGLONG, MDL, NTSTATUS,
    PCM_RESOURCE_LIST, PDEVICE_CAPABILITIES, PDEVICE_OBJECT, PDRIVER_OBJECT, PFILE_OBJECT, PHANDLE,
    PIO_STATUS_BLOCK, PIRP, PKDEFERRED_ROUTINE, PKDPC, PKTIMER, PLONGLONG, PMDL,
    POBJECT_HANDLE_INFORMATION, POBJECT_TYPE, POOL_FLAGS, POOL_TYPE, POWER_ACTION,
    PPROCESSOR_NUMBER, PRKDPC, PROCESSOR_NUMBER, PSECURITY_DESCRIPTOR, PUCHAR, PULONG,
    PUNICODE_STRING, PVOID, PWCHAR, PWSTR, SIZE_T, SYSTEM_POWER_STATE, TIMER_TYPE, UCHAR, ULONG,
    ULONG_PTR, ULONGLONG, UNICODE_STRING, USHORT, WCHAR,
};

// The DMA types: wdk-sys names the operations table only by its tag.
#[cfg(all(windows, feature = "wdk"))]
pub use wdk_sys::{
    _DMA_OPERATIONS as DMA_OPERATIONS, DEVICE_DESCRIPTION, DMA_ADAPTER, DMA_SPEED, DMA_WIDTH,
    INTERFACE_TYPE, PADAPTER_OBJECT, PALLOCATE_COMMON_BUFFER, PDEVICE_DESCRIPTION, PDMA_ADAPTER,
    PFREE_COMMON_BUFFER, PHYSICAL_ADDRESS, PPHYSICAL_ADDRESS, PPUT_DMA_ADAPTER,
};

#[cfg(not(all(windows, feature = "wdk")))]
pub use local::*;

/// Local definitions of the NT base types, used when wdk-sys is not available.
#[cfg(not(all(windows, feature = "wdk")))]
mod local {
    use core::ffi::c_void;

    /// An NT status code: negative values are errors, 0..=0x3FFFFFFF success, the rest
    /// informational or warnings.
    pub type NTSTATUS = i32;
    /// 32-bit unsigned integer (LLP64 `unsigned long`).
    pub type ULONG = u32;
    /// Pointer to a [`ULONG`].
    pub type PULONG = *mut ULONG;
    /// 32-bit signed integer (LLP64 `long`).
    pub type LONG = i32;
    /// 16-bit unsigned integer.
    pub type USHORT = u16;
    /// 8-bit unsigned integer.
    pub type UCHAR = u8;
    /// Pointer to bytes.
    pub type PUCHAR = *mut UCHAR;
    /// 8-bit boolean: 0 is false, anything else true.
    pub type BOOLEAN = u8;
    /// 64-bit signed integer.
    pub type LONGLONG = i64;
    /// Pointer to a [`LONGLONG`].
    pub type PLONGLONG = *mut LONGLONG;
    /// 64-bit unsigned integer.
    pub type ULONGLONG = u64;
    /// Pointer-sized unsigned integer.
    pub type ULONG_PTR = u64;
    /// Pointer-sized size.
    pub type SIZE_T = u64;
    /// Pointer-sized signed integer.
    pub type LONG_PTR = i64;
    /// Access rights (`ACCESS_MASK`, a `ULONG`).
    pub type ACCESS_MASK = ULONG;
    /// 8-bit C `char`.
    pub type CCHAR = core::ffi::c_char;
    /// `KernelMode` or `UserMode`: who issued a request.
    pub type KPROCESSOR_MODE = CCHAR;
    /// Untyped pointer.
    pub type PVOID = *mut c_void;
    /// Object handle.
    pub type HANDLE = PVOID;
    /// Pointer to a [`HANDLE`].
    pub type PHANDLE = *mut HANDLE;
    /// UTF-16 code unit.
    pub type WCHAR = u16;
    /// Pointer to UTF-16 code units.
    pub type PWCHAR = *mut WCHAR;
    /// Pointer to a NUL-terminated UTF-16 string.
    pub type PWSTR = *mut WCHAR;
    /// `POOL_TYPE` (a C enum): the kind of pool memory for legacy allocation routines.
    pub type POOL_TYPE = i32;
    /// `POOL_FLAGS` of `ExAllocatePool2` (a 64-bit mask).
    pub type POOL_FLAGS = u64;
    /// `DEVICE_POWER_STATE` (a C enum).
    pub type DEVICE_POWER_STATE = i32;
    /// `SYSTEM_POWER_STATE` (a C enum).
    pub type SYSTEM_POWER_STATE = i32;
    /// `POWER_ACTION` (a C enum).
    pub type POWER_ACTION = i32;
    /// Pointer to a security descriptor.
    pub type PSECURITY_DESCRIPTOR = PVOID;

    /// A globally unique identifier, laid out as in `guiddef.h`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default)]
    pub struct GUID {
        /// First 8 hex digits.
        pub Data1: u32,
        /// Next 4 hex digits.
        pub Data2: u16,
        /// Next 4 hex digits.
        pub Data3: u16,
        /// Last 16 hex digits, in string order.
        pub Data4: [u8; 8],
    }

    /// A counted UTF-16 string.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct UNICODE_STRING {
        /// Length of the string in bytes, without any terminator.
        pub Length: USHORT,
        /// Size of the buffer in bytes.
        pub MaximumLength: USHORT,
        /// The code units.
        pub Buffer: PWSTR,
    }
    /// Pointer to a [`UNICODE_STRING`].
    pub type PUNICODE_STRING = *mut UNICODE_STRING;

    /// A 64-bit signed integer as the `LARGE_INTEGER` union passes it.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub union LARGE_INTEGER {
        /// The whole 64-bit value.
        pub QuadPart: LONGLONG,
    }

    ks_opaque! {
        /// I/O request packet.
        IRP,
        /// Device object.
        DEVICE_OBJECT,
        /// Driver object.
        DRIVER_OBJECT,
        /// File object.
        FILE_OBJECT,
        /// Memory descriptor list.
        MDL,
        /// Hardware resource list of a PnP start.
        CM_RESOURCE_LIST,
        /// PnP device capabilities.
        DEVICE_CAPABILITIES,
        /// Status block of an I/O request.
        IO_STATUS_BLOCK,
        /// Object manager type object (`_OBJECT_TYPE`).
        OBJECT_TYPE,
        /// What `ObReferenceObjectByHandle` can report about a handle.
        OBJECT_HANDLE_INFORMATION,
    }

    /// Pointer to an [`OBJECT_TYPE`].
    pub type POBJECT_TYPE = *mut OBJECT_TYPE;
    /// Pointer to [`OBJECT_HANDLE_INFORMATION`].
    pub type POBJECT_HANDLE_INFORMATION = *mut OBJECT_HANDLE_INFORMATION;

    /// Pointer to an [`IRP`].
    pub type PIRP = *mut IRP;
    /// Pointer to a [`DEVICE_OBJECT`].
    pub type PDEVICE_OBJECT = *mut DEVICE_OBJECT;
    /// Pointer to a [`DRIVER_OBJECT`].
    pub type PDRIVER_OBJECT = *mut DRIVER_OBJECT;
    /// Pointer to a [`FILE_OBJECT`].
    pub type PFILE_OBJECT = *mut FILE_OBJECT;
    /// Pointer to an [`MDL`].
    pub type PMDL = *mut MDL;
    /// A kernel timer (`KTIMER`, 64 bytes on x64). The driver owns the memory (zeroed, then
    /// `KeInitializeTimerEx`); only the kernel reads or writes the fields.
    #[repr(C, align(8))]
    #[derive(Clone, Copy)]
    pub struct KTIMER {
        _opaque: [u8; 64],
    }

    /// A deferred procedure call object (`KDPC`, 64 bytes on x64). The driver owns the memory;
    /// `KeInitializeDpc` fills it and only the kernel reads or writes it after that.
    #[repr(C, align(8))]
    #[derive(Clone, Copy)]
    pub struct KDPC {
        _opaque: [u8; 64],
    }

    /// Pointer to a [`KTIMER`].
    pub type PKTIMER = *mut KTIMER;
    /// Pointer to a [`KDPC`].
    pub type PKDPC = *mut KDPC;
    /// Pointer to a [`KDPC`] (`PRKDPC`, the spelling of `KeInitializeDpc`'s prototype).
    pub type PRKDPC = *mut KDPC;
    /// `TIMER_TYPE` (a C enum): `NotificationTimer` or `SynchronizationTimer`.
    pub type TIMER_TYPE = i32;
    /// `PKDEFERRED_ROUTINE`: a DPC's routine. Runs at DISPATCH_LEVEL.
    pub type PKDEFERRED_ROUTINE = Option<
        unsafe extern "C" fn(
            Dpc: *mut KDPC,
            DeferredContext: PVOID,
            SystemArgument1: PVOID,
            SystemArgument2: PVOID,
        ),
    >;
    /// Pointer to a [`CM_RESOURCE_LIST`].
    pub type PCM_RESOURCE_LIST = *mut CM_RESOURCE_LIST;
    /// Pointer to [`DEVICE_CAPABILITIES`].
    pub type PDEVICE_CAPABILITIES = *mut DEVICE_CAPABILITIES;
    /// Pointer to an [`IO_STATUS_BLOCK`].
    pub type PIO_STATUS_BLOCK = *mut IO_STATUS_BLOCK;

    /// A processor as its group and its number in the group (`PROCESSOR_NUMBER`), which
    /// `KeGetCurrentProcessorNumberEx` fills.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct PROCESSOR_NUMBER {
        /// The processor group.
        pub Group: USHORT,
        /// The processor's number within its group.
        pub Number: UCHAR,
        /// Reserved; zero.
        pub Reserved: UCHAR,
    }
    /// Pointer to a [`PROCESSOR_NUMBER`].
    pub type PPROCESSOR_NUMBER = *mut PROCESSOR_NUMBER;

    /// A physical or bus (logical) address, as a `LARGE_INTEGER`.
    pub type PHYSICAL_ADDRESS = LARGE_INTEGER;
    /// Pointer to a [`PHYSICAL_ADDRESS`].
    pub type PPHYSICAL_ADDRESS = *mut LARGE_INTEGER;
    /// `INTERFACE_TYPE` (a C enum): the bus a device sits on (`PCIBus`, …).
    pub type INTERFACE_TYPE = i32;
    /// `DMA_WIDTH` (a C enum), for system DMA only.
    pub type DMA_WIDTH = i32;
    /// `DMA_SPEED` (a C enum), for system DMA only.
    pub type DMA_SPEED = i32;

    /// `DEVICE_DESCRIPTION`: what a driver tells `IoGetDmaAdapter` about its DMA (the fields of
    /// `DEVICE_DESCRIPTION_VERSION2`; a newer WDK's structure is longer, so drivers fill it from
    /// a zeroed value field by field).
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct DEVICE_DESCRIPTION {
        /// `DEVICE_DESCRIPTION_VERSION*`.
        pub Version: ULONG,
        /// A bus-master device.
        pub Master: BOOLEAN,
        /// The device does scatter/gather DMA.
        pub ScatterGather: BOOLEAN,
        /// System DMA only.
        pub DemandMode: BOOLEAN,
        /// System DMA only.
        pub AutoInitialize: BOOLEAN,
        /// The device can address 32 bits.
        pub Dma32BitAddresses: BOOLEAN,
        /// System DMA only.
        pub IgnoreCount: BOOLEAN,
        /// Reserved.
        pub Reserved1: BOOLEAN,
        /// The device can address 64 bits.
        pub Dma64BitAddresses: BOOLEAN,
        /// The bus number.
        pub BusNumber: ULONG,
        /// System DMA only.
        pub DmaChannel: ULONG,
        /// The bus type.
        pub InterfaceType: INTERFACE_TYPE,
        /// System DMA only.
        pub DmaWidth: DMA_WIDTH,
        /// System DMA only.
        pub DmaSpeed: DMA_SPEED,
        /// The longest transfer the device makes at once, in bytes.
        pub MaximumLength: ULONG,
        /// System DMA only.
        pub DmaPort: ULONG,
    }
    /// Pointer to a [`DEVICE_DESCRIPTION`].
    pub type PDEVICE_DESCRIPTION = *mut DEVICE_DESCRIPTION;

    /// `DMA_ADAPTER`: what `IoGetDmaAdapter` returns; its operations are called through
    /// `DmaOperations`.
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct DMA_ADAPTER {
        /// Version of the structure.
        pub Version: USHORT,
        /// Size of the structure.
        pub Size: USHORT,
        /// The adapter's operations.
        pub DmaOperations: *mut DMA_OPERATIONS,
    }
    /// Pointer to a [`DMA_ADAPTER`].
    pub type PDMA_ADAPTER = *mut DMA_ADAPTER;
    /// `PADAPTER_OBJECT`: a DMA adapter, as `KsDeviceRegisterAdapterObject` takes it.
    pub type PADAPTER_OBJECT = *mut DMA_ADAPTER;

    /// `PutDmaAdapter`: gives the adapter back. PASSIVE_LEVEL.
    pub type PPUT_DMA_ADAPTER = Option<unsafe extern "C" fn(DmaAdapter: PDMA_ADAPTER)>;
    /// `AllocateCommonBuffer`: physically contiguous memory the device and the driver both
    /// reach; its bus address in `*LogicalAddress`. PASSIVE_LEVEL.
    pub type PALLOCATE_COMMON_BUFFER = Option<
        unsafe extern "C" fn(
            DmaAdapter: PDMA_ADAPTER,
            Length: ULONG,
            LogicalAddress: PPHYSICAL_ADDRESS,
            CacheEnabled: BOOLEAN,
        ) -> PVOID,
    >;
    /// `FreeCommonBuffer`: gives back a common buffer, with exactly what allocated it.
    /// PASSIVE_LEVEL.
    pub type PFREE_COMMON_BUFFER = Option<
        unsafe extern "C" fn(
            DmaAdapter: PDMA_ADAPTER,
            Length: ULONG,
            LogicalAddress: PHYSICAL_ADDRESS,
            VirtualAddress: PVOID,
            CacheEnabled: BOOLEAN,
        ),
    >;
    /// An operation of [`DMA_OPERATIONS`] ks-sys does not call (its prototype is not modelled).
    pub type DMA_OPERATION = Option<unsafe extern "C" fn()>;

    /// `DMA_OPERATIONS`: the adapter's operation table (the `DMA_ADAPTER` interface).
    #[repr(C)]
    #[derive(Clone, Copy, Debug)]
    pub struct DMA_OPERATIONS {
        /// Size of the table.
        pub Size: ULONG,
        /// `PutDmaAdapter`.
        pub PutDmaAdapter: PPUT_DMA_ADAPTER,
        /// `AllocateCommonBuffer`.
        pub AllocateCommonBuffer: PALLOCATE_COMMON_BUFFER,
        /// `FreeCommonBuffer`.
        pub FreeCommonBuffer: PFREE_COMMON_BUFFER,
        /// `AllocateAdapterChannel` (not modelled).
        pub AllocateAdapterChannel: DMA_OPERATION,
        /// `FlushAdapterBuffers` (not modelled).
        pub FlushAdapterBuffers: DMA_OPERATION,
        /// `FreeAdapterChannel` (not modelled).
        pub FreeAdapterChannel: DMA_OPERATION,
        /// `FreeMapRegisters` (not modelled).
        pub FreeMapRegisters: DMA_OPERATION,
        /// `MapTransfer` (not modelled).
        pub MapTransfer: DMA_OPERATION,
        /// `GetDmaAlignment` (not modelled).
        pub GetDmaAlignment: DMA_OPERATION,
        /// `ReadDmaCounter` (not modelled).
        pub ReadDmaCounter: DMA_OPERATION,
        /// `GetScatterGatherList` (not modelled).
        pub GetScatterGatherList: DMA_OPERATION,
        /// `PutScatterGatherList` (not modelled).
        pub PutScatterGatherList: DMA_OPERATION,
        /// `CalculateScatterGatherList` (not modelled).
        pub CalculateScatterGatherList: DMA_OPERATION,
        /// `BuildScatterGatherList` (not modelled).
        pub BuildScatterGatherList: DMA_OPERATION,
        /// `BuildMdlFromScatterGatherList` (not modelled).
        pub BuildMdlFromScatterGatherList: DMA_OPERATION,
    }
}

// The base types the KS structures embed by value, checked in both configurations.
const _: () = {
    use core::mem::{align_of, size_of};
    assert!(size_of::<GUID>() == 16 && align_of::<GUID>() == 4);
    assert!(size_of::<UNICODE_STRING>() == 16 && align_of::<UNICODE_STRING>() == 8);
    assert!(size_of::<LARGE_INTEGER>() == 8);
    assert!(size_of::<NTSTATUS>() == 4 && size_of::<ULONG>() == 4 && size_of::<LONG>() == 4);
    assert!(size_of::<BOOLEAN>() == 1 && size_of::<POOL_TYPE>() == 4);
    assert!(size_of::<POOL_FLAGS>() == 8 && size_of::<HANDLE>() == size_of::<PVOID>());
    assert!(size_of::<KTIMER>() == 64 && align_of::<KTIMER>() == 8);
    assert!(size_of::<KDPC>() == 64 && align_of::<KDPC>() == 8);
    assert!(size_of::<DMA_ADAPTER>() == 16 && align_of::<DMA_ADAPTER>() == 8);
    assert!(size_of::<DMA_OPERATIONS>() == 128 && align_of::<DMA_OPERATIONS>() == 8);
    assert!(size_of::<PHYSICAL_ADDRESS>() == 8);
    assert!(size_of::<PROCESSOR_NUMBER>() == 4 && align_of::<PROCESSOR_NUMBER>() == 2);
};

// The local DEVICE_DESCRIPTION is the oracle's (DEVICE_DESCRIPTION_VERSION2, 40 bytes); a newer
// WDK's is longer, so the size is asserted only here.
#[cfg(not(all(windows, feature = "wdk")))]
const _: () = assert!(size_of::<DEVICE_DESCRIPTION>() == 40);

/// `DWORD` of `windef.h` (used by the video format structures).
pub type DWORD = u32;
/// `WORD` of `windef.h`.
pub type WORD = u16;
/// `BOOL` of `windef.h` (mingw spells it `WINBOOL`): a 32-bit boolean.
pub type WINBOOL = i32;
/// A 100-nanosecond time value (`REFERENCE_TIME` of the DirectShow headers).
pub type REFERENCE_TIME = LONGLONG;

ks_struct! {
    /// A rectangle in pixels (`RECT` of `windef.h`).
    pub struct RECT (size 16, align 4) {
        /// Left edge.
        pub left: LONG => 0,
        /// Top edge.
        pub top: LONG => 4,
        /// Right edge (exclusive).
        pub right: LONG => 8,
        /// Bottom edge (exclusive).
        pub bottom: LONG => 12,
    }
}

ks_struct! {
    /// A width and height (`SIZE` of `windef.h`).
    pub struct SIZE (size 8, align 4) {
        /// Width.
        pub cx: LONG => 0,
        /// Height.
        pub cy: LONG => 4,
    }
}

/// An ASCII string as UTF-16 code units, for the `PWSTR` and `UNICODE_STRING` buffers drivers
/// keep in statics (`ascii_wide(b"GLOBAL\0")`).
///
/// # Panics
///
/// On a non-ASCII byte; in a `const` or `static`, that fails the build.
///
/// ```
/// static NAME: [u16; 4] = ks_sys::ascii_wide(b"Ks!\0");
/// assert_eq!(NAME, [0x4B, 0x73, 0x21, 0]);
/// ```
#[must_use]
pub const fn ascii_wide<const N: usize>(ascii: &[u8; N]) -> [u16; N] {
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        assert!(ascii[i].is_ascii(), "ascii_wide takes ASCII only");
        out[i] = ascii[i] as u16;
        i += 1;
    }
    out
}
