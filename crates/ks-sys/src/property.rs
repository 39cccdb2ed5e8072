//! Identifiers, property items and sets, automation tables (`ks.h`).

use crate::{GUID, NTSTATUS, PIRP, PVOID, ULONG};

ks_struct! {
    /// `KSIDENTIFIER`: a property, method, event, interface or medium identifier.
    ///
    /// In C it is a union of `{ GUID Set; ULONG Id; ULONG Flags; }` with a `LONGLONG` that only
    /// forces 8-byte alignment; that member is modelled by `repr(align(8))`.
    #[repr(align(8))]
    pub struct KSIDENTIFIER (size 24, align 8) {
        /// The set the identifier belongs to.
        pub Set: GUID => 0,
        /// The item within the set.
        pub Id: ULONG => 16,
        /// Request flags (`KSPROPERTY_TYPE_*` for properties).
        pub Flags: ULONG => 20,
    }
}
/// Pointer to a [`KSIDENTIFIER`].
pub type PKSIDENTIFIER = *mut KSIDENTIFIER;
/// `KSPROPERTY`: a property request header.
pub type KSPROPERTY = KSIDENTIFIER;
/// Pointer to a [`KSPROPERTY`].
pub type PKSPROPERTY = *mut KSPROPERTY;
/// `KSMETHOD`: a method request header.
pub type KSMETHOD = KSIDENTIFIER;
/// `KSEVENT`: an event request header.
pub type KSEVENT = KSIDENTIFIER;
/// `KSPIN_INTERFACE`: a pin interface (transport) identifier.
pub type KSPIN_INTERFACE = KSIDENTIFIER;
/// Pointer to a [`KSPIN_INTERFACE`].
pub type PKSPIN_INTERFACE = *mut KSPIN_INTERFACE;
/// `KSPIN_MEDIUM`: a pin medium identifier.
pub type KSPIN_MEDIUM = KSIDENTIFIER;
/// Pointer to a [`KSPIN_MEDIUM`].
pub type PKSPIN_MEDIUM = *mut KSPIN_MEDIUM;

ks_opaque! {
    /// `KSPROPERTY_VALUES`: default values and ranges of a property.
    KSPROPERTY_VALUES,
    /// `KSFASTPROPERTY_ITEM`: a fast-I/O property item.
    KSFASTPROPERTY_ITEM,
    /// `KSMETHOD_ITEM`: one method of a method set.
    KSMETHOD_ITEM,
    /// `KSFASTMETHOD_ITEM`: a fast-I/O method item.
    KSFASTMETHOD_ITEM,
    /// `KSEVENT_ITEM`: one event of an event set.
    KSEVENT_ITEM,
}

ks_callbacks! {
    PROPERTY_CALLBACKS;
    /// `PFNKSHANDLER`: a property, method or support handler. PASSIVE_LEVEL.
    pub type PFNKSHANDLER = fn(Irp: PIRP, Request: PKSIDENTIFIER, Data: PVOID) -> NTSTATUS;
}

ks_struct! {
    /// `KSPROPERTY_ITEM`: one property of a property set.
    ///
    /// The C unions `GetPropertyHandler`/`GetSupported` and `SetPropertyHandler`/`SetSupported`
    /// are modelled by their handler members.
    pub struct KSPROPERTY_ITEM (size 72, align 8) {
        /// Property id within the set.
        pub PropertyId: ULONG => 0,
        /// Get handler, or NULL if get is not supported.
        pub GetPropertyHandler: PFNKSHANDLER => 8,
        /// Minimum input (request) length.
        pub MinProperty: ULONG => 16,
        /// Minimum output (data) length; 0 for variable-length values.
        pub MinData: ULONG => 20,
        /// Set handler, or NULL if set is not supported.
        pub SetPropertyHandler: PFNKSHANDLER => 24,
        /// Default values and ranges.
        pub Values: *const KSPROPERTY_VALUES => 32,
        /// Number of related properties.
        pub RelationsCount: ULONG => 40,
        /// Related properties.
        pub Relations: *const KSPROPERTY => 48,
        /// Basic-support handler.
        pub SupportHandler: PFNKSHANDLER => 56,
        /// Size of the serialised value.
        pub SerializedSize: ULONG => 64,
    }
}

ks_struct! {
    /// `KSPROPERTY_SET`: the properties of one property set GUID.
    pub struct KSPROPERTY_SET (size 40, align 8) {
        /// The set GUID.
        pub Set: *const GUID => 0,
        /// Number of items.
        pub PropertiesCount: ULONG => 8,
        /// The items.
        pub PropertyItem: *const KSPROPERTY_ITEM => 16,
        /// Number of fast-I/O items.
        pub FastIoCount: ULONG => 24,
        /// The fast-I/O items.
        pub FastIoTable: *const KSFASTPROPERTY_ITEM => 32,
    }
}

ks_struct! {
    /// `KSMETHOD_SET`: the methods of one method set GUID.
    pub struct KSMETHOD_SET (size 40, align 8) {
        /// The set GUID.
        pub Set: *const GUID => 0,
        /// Number of items.
        pub MethodsCount: ULONG => 8,
        /// The items.
        pub MethodItem: *const KSMETHOD_ITEM => 16,
        /// Number of fast-I/O items.
        pub FastIoCount: ULONG => 24,
        /// The fast-I/O items.
        pub FastIoTable: *const KSFASTMETHOD_ITEM => 32,
    }
}

ks_struct! {
    /// `KSEVENT_SET`: the events of one event set GUID.
    pub struct KSEVENT_SET (size 24, align 8) {
        /// The set GUID.
        pub Set: *const GUID => 0,
        /// Number of items.
        pub EventsCount: ULONG => 8,
        /// The items.
        pub EventItem: *const KSEVENT_ITEM => 16,
    }
}

ks_struct! {
    /// `KSAUTOMATION_TABLE`: property, method and event sets of a filter, pin or node (x64
    /// layout; x86 adds a padding pointer).
    pub struct KSAUTOMATION_TABLE (size 48, align 8) {
        /// Number of property sets.
        pub PropertySetsCount: ULONG => 0,
        /// `sizeof(KSPROPERTY_ITEM)` or a larger stride.
        pub PropertyItemSize: ULONG => 4,
        /// The property sets.
        pub PropertySets: *const KSPROPERTY_SET => 8,
        /// Number of method sets.
        pub MethodSetsCount: ULONG => 16,
        /// `sizeof(KSMETHOD_ITEM)` or a larger stride.
        pub MethodItemSize: ULONG => 20,
        /// The method sets.
        pub MethodSets: *const KSMETHOD_SET => 24,
        /// Number of event sets.
        pub EventSetsCount: ULONG => 32,
        /// `sizeof(KSEVENT_ITEM)` or a larger stride.
        pub EventItemSize: ULONG => 36,
        /// The event sets.
        pub EventSets: *const KSEVENT_SET => 40,
    }
}

ks_consts! {
    PROPERTY_TYPES, "A `KSPROPERTY_TYPE_*` bit of `KSPROPERTY.Flags`.";
    /// Get the value.
    KSPROPERTY_TYPE_GET: ULONG = 0x0000_0001;
    /// Set the value.
    KSPROPERTY_TYPE_SET: ULONG = 0x0000_0002;
    /// Set support query.
    KSPROPERTY_TYPE_SETSUPPORT: ULONG = 0x0000_0100;
    /// Basic support query.
    KSPROPERTY_TYPE_BASICSUPPORT: ULONG = 0x0000_0200;
    /// Relations query.
    KSPROPERTY_TYPE_RELATIONS: ULONG = 0x0000_0400;
    /// Serialise a set.
    KSPROPERTY_TYPE_SERIALIZESET: ULONG = 0x0000_0800;
    /// Unserialise a set.
    KSPROPERTY_TYPE_UNSERIALIZESET: ULONG = 0x0000_1000;
    /// Serialise raw.
    KSPROPERTY_TYPE_SERIALIZERAW: ULONG = 0x0000_2000;
    /// Unserialise raw.
    KSPROPERTY_TYPE_UNSERIALIZERAW: ULONG = 0x0000_4000;
    /// Serialised size query.
    KSPROPERTY_TYPE_SERIALIZESIZE: ULONG = 0x0000_8000;
    /// Default values query.
    KSPROPERTY_TYPE_DEFAULTVALUES: ULONG = 0x0001_0000;
    /// Newer SDKs only: high-priority request.
    KSPROPERTY_TYPE_HIGHPRIORITY: ULONG = 0x0800_0000;
    /// The request addresses a topology node.
    KSPROPERTY_TYPE_TOPOLOGY: ULONG = 0x1000_0000;
    /// Newer SDKs only: file-system filter scope.
    KSPROPERTY_TYPE_FSFILTERSCOPE: ULONG = 0x4000_0000;
    /// Newer SDKs only: copy the payload.
    KSPROPERTY_TYPE_COPYPAYLOAD: ULONG = 0x8000_0000;
}

ks_consts! {
    METHOD_TYPES, "A `KSMETHOD_TYPE_*` value or bit of `KSMETHOD.Flags`.";
    /// No data transfer.
    KSMETHOD_TYPE_NONE: ULONG = 0;
    /// Data is read by the method.
    KSMETHOD_TYPE_READ: ULONG = 1;
    /// Data is written by the method.
    KSMETHOD_TYPE_WRITE: ULONG = 2;
    /// Data is read and written.
    KSMETHOD_TYPE_MODIFY: ULONG = 3;
    /// The data buffer is the source.
    KSMETHOD_TYPE_SOURCE: ULONG = 4;
}

ks_consts! {
    PROPERTY_IDS, "A property, method or event id of the Connection, Stream or StreamAllocator sets.";
    /// `KSPROPERTY_CONNECTION_STATE`.
    KSPROPERTY_CONNECTION_STATE: ULONG = 0;
    /// `KSPROPERTY_CONNECTION_PRIORITY`.
    KSPROPERTY_CONNECTION_PRIORITY: ULONG = 1;
    /// `KSPROPERTY_CONNECTION_DATAFORMAT`.
    KSPROPERTY_CONNECTION_DATAFORMAT: ULONG = 2;
    /// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING`: the legacy 24-byte framing.
    KSPROPERTY_CONNECTION_ALLOCATORFRAMING: ULONG = 3;
    /// `KSPROPERTY_CONNECTION_PROPOSEDATAFORMAT`.
    KSPROPERTY_CONNECTION_PROPOSEDATAFORMAT: ULONG = 4;
    /// `KSPROPERTY_CONNECTION_ACQUIREORDERING`.
    KSPROPERTY_CONNECTION_ACQUIREORDERING: ULONG = 5;
    /// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX`: the extended framing.
    KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX: ULONG = 6;
    /// `KSPROPERTY_CONNECTION_STARTAT`.
    KSPROPERTY_CONNECTION_STARTAT: ULONG = 7;
    /// `KSPROPERTY_PIN_DATAINTERSECTION`: the format a pin offers for a data range.
    KSPROPERTY_PIN_DATAINTERSECTION: ULONG = 4;
    /// `KSPROPERTY_STREAM_ALLOCATOR`: the allocator handle of a connection point.
    KSPROPERTY_STREAM_ALLOCATOR: ULONG = 0;
    /// `KSPROPERTY_STREAM_QUALITY`.
    KSPROPERTY_STREAM_QUALITY: ULONG = 1;
    /// `KSPROPERTY_STREAM_DEGRADATION`.
    KSPROPERTY_STREAM_DEGRADATION: ULONG = 2;
    /// `KSPROPERTY_STREAM_MASTERCLOCK`.
    KSPROPERTY_STREAM_MASTERCLOCK: ULONG = 3;
    /// `KSPROPERTY_STREAM_TIMEFORMAT`.
    KSPROPERTY_STREAM_TIMEFORMAT: ULONG = 4;
    /// `KSPROPERTY_STREAM_PRESENTATIONTIME`.
    KSPROPERTY_STREAM_PRESENTATIONTIME: ULONG = 5;
    /// `KSPROPERTY_STREAM_PRESENTATIONEXTENT`.
    KSPROPERTY_STREAM_PRESENTATIONEXTENT: ULONG = 6;
    /// `KSPROPERTY_STREAM_FRAMETIME`.
    KSPROPERTY_STREAM_FRAMETIME: ULONG = 7;
    /// `KSPROPERTY_STREAM_RATECAPABILITY`.
    KSPROPERTY_STREAM_RATECAPABILITY: ULONG = 8;
    /// `KSPROPERTY_STREAM_RATE`.
    KSPROPERTY_STREAM_RATE: ULONG = 9;
    /// `KSPROPERTY_STREAM_PIPE_ID`.
    KSPROPERTY_STREAM_PIPE_ID: ULONG = 10;
    /// `KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE`.
    KSPROPERTY_STREAMALLOCATOR_FUNCTIONTABLE: ULONG = 0;
    /// `KSPROPERTY_STREAMALLOCATOR_STATUS`.
    KSPROPERTY_STREAMALLOCATOR_STATUS: ULONG = 1;
    /// `KSMETHOD_STREAMALLOCATOR_ALLOC`.
    KSMETHOD_STREAMALLOCATOR_ALLOC: ULONG = 0;
    /// `KSMETHOD_STREAMALLOCATOR_FREE`.
    KSMETHOD_STREAMALLOCATOR_FREE: ULONG = 1;
    /// `KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME`.
    KSEVENT_STREAMALLOCATOR_INTERNAL_FREEFRAME: ULONG = 0;
    /// `KSEVENT_STREAMALLOCATOR_FREEFRAME`.
    KSEVENT_STREAMALLOCATOR_FREEFRAME: ULONG = 1;
}
