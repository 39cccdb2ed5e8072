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
    KSPRIORITY::LAYOUT,
    KS_BITMAPINFOHEADER::LAYOUT,
    KS_VIDEOINFOHEADER::LAYOUT,
    KS_VIDEO_STREAM_CONFIG_CAPS::LAYOUT,
    KS_DATARANGE_VIDEO::LAYOUT,
    KS_DATAFORMAT_VIDEOINFOHEADER::LAYOUT,
    KSP_PIN::LAYOUT,
    KSTIME::LAYOUT,
    KSSTREAM_HEADER::LAYOUT,
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
