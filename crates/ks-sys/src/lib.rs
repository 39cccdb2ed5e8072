//! Raw x64 ABI of the Windows Kernel Streaming headers used by `ks-allocator`.
//!
//! C headers: `ks.h` and `ksmedia.h` (kernel-mode view), plus the few `wdm.h`/`ntstatus.h`
//! constants KS code needs. `wdk-sys` generates no bindings for these headers, so every
//! structure, constant, GUID and import is written here by hand, under its C name at the crate
//! root, and checked:
//!
//! - at compile time: every structure asserts its size, alignment and field offsets;
//! - by `tests/abi.rs`: every structure, constant, GUID, callback type and import is compared
//!   with an independent record of the x64 headers (a copy of the project's ABI oracle).
//!
//! NT base types (`NTSTATUS`, `ULONG`, `GUID`, `IRP`, …) come from `wdk-sys` when the `wdk`
//! feature is enabled on a Windows host, and from local definitions with the same names and
//! layout otherwise (see [`base`]). That choice, and linking `ks.lib`, are the only things
//! configuration changes.
//!
//! This crate is the raw layer: nothing here is safe to use without reading the KS contract.
//! Use the `ks-allocator` crate's safe API instead wherever it covers what you need.

#![no_std]
#![expect(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    reason = "bindings keep the C spellings of ks.h so they can be searched for in the docs"
)]

#[macro_use]
pub mod layout;

pub mod base;

mod allocator;
mod avstream;
mod consts;
mod format;
mod guids;
mod imports;
pub mod irp;
mod ntoskrnl;
mod property;
mod stream;

pub use allocator::*;
pub use avstream::*;
pub use base::*;
pub use consts::*;
pub use format::*;
pub use guids::*;
pub use imports::*;
pub use ntoskrnl::*;
pub use property::*;
pub use stream::*;

/// Re-exports, with the `wdk` feature, wdk-sys's own item for each name that wdk-sys also defines
/// at its crate root, and checks at compile time that this crate's definition has the same type
/// and value. An explicit `pub use` shadows the glob re-exports above, so a driver that
/// glob-imports both crates sees one item per name (no E0659), and code written against either
/// crate means the same thing. Without `wdk` the names are this crate's, with the types wdk-sys
/// gives them (`PASSIVE_LEVEL` is a `u32` in both, as bindgen types the `#define`).
///
/// One exception: `IoFileObjectType` stays this crate's. wdk-sys declares its data exports
/// without a DLL import, so a driver using them does not link (windows-drivers-rs issue 338);
/// ks-sys's declaration goes through ntoskrnl.exe's import slot. A driver that glob-imports both
/// crates and uses it names it `ks_sys::IoFileObjectType`.
macro_rules! shared_with_wdk_sys {
    (consts { $($module:ident::{$($name:ident),* $(,)?})* } types { $($type_module:ident::{$($type:ident),* $(,)?})* }) => {
        #[cfg(all(windows, feature = "wdk"))]
        pub use wdk_sys::{$($($name,)*)* $($($type,)*)*};

        #[cfg(all(windows, feature = "wdk"))]
        const _: () = {
            $($(assert!($module::$name == wdk_sys::$name, stringify!($name));)*)*
        };

        $($(
            #[cfg(all(windows, feature = "wdk"))]
            const _: fn($type_module::$type) -> wdk_sys::$type = |same| same;
        )*)*
    };
}

// Enumerators wdk-sys keeps in modules (so not shared at the root): the same values.
#[cfg(all(windows, feature = "wdk"))]
const _: () = {
    assert!(ntoskrnl::PCIBus == wdk_sys::_INTERFACE_TYPE::PCIBus);
};

shared_with_wdk_sys! {
    consts {
        consts::{
            FILE_BYTE_ALIGNMENT, FILE_WORD_ALIGNMENT, FILE_LONG_ALIGNMENT, FILE_QUAD_ALIGNMENT,
            FILE_OCTA_ALIGNMENT, FILE_32_BYTE_ALIGNMENT, FILE_64_BYTE_ALIGNMENT,
            FILE_128_BYTE_ALIGNMENT, FILE_256_BYTE_ALIGNMENT, FILE_512_BYTE_ALIGNMENT, PAGE_SIZE,
            STATUS_SUCCESS, STATUS_PENDING, STATUS_MORE_ENTRIES, STATUS_BUFFER_OVERFLOW,
            STATUS_UNSUCCESSFUL, STATUS_NOT_IMPLEMENTED, STATUS_INVALID_HANDLE,
            STATUS_INVALID_PARAMETER, STATUS_INVALID_DEVICE_REQUEST, STATUS_NO_MEMORY,
            STATUS_ACCESS_DENIED, STATUS_BUFFER_TOO_SMALL, STATUS_OBJECT_TYPE_MISMATCH,
            STATUS_INSUFFICIENT_RESOURCES, STATUS_DEVICE_NOT_READY, STATUS_NOT_SUPPORTED,
            STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_BUFFER_SIZE, STATUS_NOT_FOUND,
            STATUS_NO_MATCH, STATUS_DEVICE_BUSY,
        }
        ntoskrnl::{
            POOL_FLAG_UNINITIALIZED, POOL_FLAG_CACHE_ALIGNED, POOL_FLAG_NON_PAGED, POOL_FLAG_PAGED,
            DEVICE_DESCRIPTION_VERSION, DEVICE_DESCRIPTION_VERSION1, DEVICE_DESCRIPTION_VERSION2,
            PASSIVE_LEVEL, APC_LEVEL, DISPATCH_LEVEL, DPFLTR_ERROR_LEVEL, DPFLTR_WARNING_LEVEL,
            DPFLTR_TRACE_LEVEL, DPFLTR_INFO_LEVEL, ALL_PROCESSOR_GROUPS,
        }
    }
    types { ntoskrnl::{KIRQL, PCSTR, PDRIVER_UNLOAD} }
}

use layout::{ConstValue, GuidValue, HasLayout, Prototype, TypeLayout};

/// Layout records of every structure ks-sys defines.
pub const TYPES: &[TypeLayout] = &[
    KSALLOCATOR_FRAMING::LAYOUT,
    KS_FRAMING_RANGE::LAYOUT,
    KS_FRAMING_RANGE_WEIGHTED::LAYOUT,
    KS_COMPRESSION::LAYOUT,
    KS_FRAMING_ITEM::LAYOUT,
    KSALLOCATOR_FRAMING_EX::LAYOUT,
    KSSTREAMALLOCATOR_STATUS::LAYOUT,
    KSSTREAMALLOCATOR_FUNCTIONTABLE::LAYOUT,
    KSALLOCATOR_DISPATCH::LAYOUT,
    KSIDENTIFIER::LAYOUT,
    KSPROPERTY_ITEM::LAYOUT,
    KSPROPERTY_SET::LAYOUT,
    KSMETHOD_SET::LAYOUT,
    KSEVENT_SET::LAYOUT,
    KSAUTOMATION_TABLE::LAYOUT,
    KSDATAFORMAT::LAYOUT,
    KSMULTIPLE_ITEM::LAYOUT,
    KSATTRIBUTE::LAYOUT,
    KS_FRAME_INFO::LAYOUT,
    KSPRIORITY::LAYOUT,
    KS_BITMAPINFOHEADER::LAYOUT,
    KS_VIDEOINFOHEADER::LAYOUT,
    KS_VIDEO_STREAM_CONFIG_CAPS::LAYOUT,
    KS_DATARANGE_VIDEO::LAYOUT,
    KS_DATAFORMAT_VIDEOINFOHEADER::LAYOUT,
    KSP_PIN::LAYOUT,
    KSPROCESSPIN::LAYOUT,
    KSPROCESSPIN_INDEXENTRY::LAYOUT,
    KSTIME::LAYOUT,
    KSSTREAM_HEADER::LAYOUT,
    KSMAPPING::LAYOUT,
    KSSTREAM_POINTER_OFFSET::LAYOUT,
    KSSTREAM_POINTER::LAYOUT,
    KSPIN_DISPATCH::LAYOUT,
    KSPIN_DESCRIPTOR::LAYOUT,
    KSPIN_DESCRIPTOR_EX::LAYOUT,
    KSPIN::LAYOUT,
    KSNODE_DESCRIPTOR::LAYOUT,
    KSTOPOLOGY_CONNECTION::LAYOUT,
    KSFILTER_DISPATCH::LAYOUT,
    KSFILTER_DESCRIPTOR::LAYOUT,
    KSFILTER::LAYOUT,
    KSFILTERFACTORY::LAYOUT,
    KSDEVICE_DISPATCH::LAYOUT,
    KSDEVICE_DESCRIPTOR::LAYOUT,
    KSDEVICE::LAYOUT,
    RECT::LAYOUT,
    SIZE::LAYOUT,
];

/// C type aliases ks-sys defines as Rust type aliases: `(alias, target)`.
pub const TYPE_ALIASES: &[(&str, &str)] = &[
    ("KSPROPERTY", "KSIDENTIFIER"),
    ("KSMETHOD", "KSIDENTIFIER"),
    ("KSEVENT", "KSIDENTIFIER"),
    ("KSPIN_INTERFACE", "KSIDENTIFIER"),
    ("KSPIN_MEDIUM", "KSIDENTIFIER"),
    ("KSDATARANGE", "KSDATAFORMAT"),
];

/// Every integer constant ks-sys defines, grouped as in the sources.
pub const CONSTANTS: &[&[ConstValue]] = &[
    allocator::REQUIREMENT_FLAGS,
    allocator::OPTION_FLAGS,
    allocator::ITEM_FLAGS,
    property::PROPERTY_TYPES,
    property::METHOD_TYPES,
    property::PROPERTY_IDS,
    format::FORMAT_FLAGS,
    format::PRIORITY_CLASSES,
    stream::STREAM_CONSTANTS_TABLE,
    avstream::STATES,
    avstream::PIN_FLAGS,
    avstream::OBJECT_FLAGS,
    consts::ALIGNMENTS,
    consts::NT_CONSTANTS,
    ntoskrnl::NT_POOL_AND_DEBUG,
];

/// Every GUID constant ks-sys defines.
pub const GUIDS: &[&[GuidValue]] = guids::ALL_GUIDS;

/// Every callback type (`PFN*`) ks-sys defines.
pub const CALLBACKS: &[&[Prototype]] =
    &[allocator::ALLOCATOR_CALLBACKS, property::PROPERTY_CALLBACKS, avstream::AVSTREAM_CALLBACKS];

/// Every routine ks-sys imports from ks.sys.
pub const IMPORTS: &[Prototype] = imports::KS_IMPORTS;

/// Every routine ks-sys imports from ntoskrnl.exe (`wdm.h`), in two groups: the ordinary
/// imports, and `DbgPrintEx` without its variadic tail.
pub const NT_IMPORTS: &[&[Prototype]] = &[ntoskrnl::NT_IMPORTS, &[ntoskrnl::DBGPRINTEX_PROTOTYPE]];

/// Data (not routines) ks-sys imports from ntoskrnl.exe.
pub const NT_DATA_IMPORTS: &[&str] = &["IoFileObjectType"];
