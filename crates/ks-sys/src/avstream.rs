//! AVStream devices, filters and pins: descriptors, dispatch tables and objects (`ks.h`).

use crate::{
    BOOLEAN, DEVICE_POWER_STATE, GUID, KSALLOCATOR_DISPATCH, KSALLOCATOR_FRAMING_EX,
    KSAUTOMATION_TABLE, KSDATARANGE, KSPIN_INTERFACE, KSPIN_MEDIUM, KSPRIORITY, NTSTATUS,
    PCM_RESOURCE_LIST, PDEVICE_CAPABILITIES, PDEVICE_OBJECT, PIRP, PKSDATAFORMAT, PKSDATARANGE,
    PKSMULTIPLE_ITEM, PMDL, POWER_ACTION, PULONG, PVOID, SYSTEM_POWER_STATE, ULONG,
};

/// `KSSTATE` (a C enum): the streaming state of a pin.
pub type KSSTATE = i32;
/// `KSPIN_DATAFLOW` (a C enum): direction of data through a pin.
pub type KSPIN_DATAFLOW = i32;
/// `KSPIN_COMMUNICATION` (a C enum): whether a pin sends or receives IRPs.
pub type KSPIN_COMMUNICATION = i32;
/// `KSRESET` (a C enum): begin or end of a flush.
pub type KSRESET = i32;
/// `KSOBJECT_BAG`: the bag of dynamically allocated items owned by an AVStream object.
pub type KSOBJECT_BAG = PVOID;

ks_opaque! {
    /// `KSCLOCK_DISPATCH`: a pin's clock callbacks.
    KSCLOCK_DISPATCH,
    /// `KSCOMPONENTID`: manufacturer, product and version ids of a filter.
    KSCOMPONENTID,
    /// `KSATTRIBUTE_LIST`: attribute ranges of a data range.
    KSATTRIBUTE_LIST,
}

ks_struct! {
    /// `KSPROCESSPIN`: one pin as a filter-centric `Process` callback sees it: the leading edge
    /// of its queue, locked, and the bytes it offers.
    pub struct KSPROCESSPIN (size 64, align 8) {
        /// The pin.
        pub Pin: *mut KSPIN => 0,
        /// Its leading edge.
        pub StreamPointer: crate::PKSSTREAM_POINTER => 8,
        /// The process pin whose frames this one shares in place, or NULL.
        pub InPlaceCounterpart: *mut KSPROCESSPIN => 16,
        /// The process pin that delegates to this one, or NULL.
        pub DelegateBranch: *mut KSPROCESSPIN => 24,
        /// The process pin this one's frames are copied from, or NULL.
        pub CopySource: *mut KSPROCESSPIN => 32,
        /// The data at the leading edge.
        pub Data: PVOID => 40,
        /// Bytes there.
        pub BytesAvailable: ULONG => 48,
        /// Bytes the filter used (set by the filter).
        pub BytesUsed: ULONG => 52,
        /// Flags of the frame at the leading edge (`KSSTREAM_HEADER_OPTIONSF_*`).
        pub Flags: ULONG => 56,
        /// Set by the filter: complete the frame whatever `BytesUsed` says.
        pub Terminate: BOOLEAN => 60,
    }
}
/// Pointer to a [`KSPROCESSPIN`].
pub type PKSPROCESSPIN = *mut KSPROCESSPIN;

ks_struct! {
    /// `KSPROCESSPIN_INDEXENTRY`: the process pins of one pin factory.
    pub struct KSPROCESSPIN_INDEXENTRY (size 16, align 8) {
        /// The pins (`Count` of them).
        pub Pins: *mut PKSPROCESSPIN => 0,
        /// How many.
        pub Count: ULONG => 8,
    }
}
/// Pointer to a [`KSPROCESSPIN_INDEXENTRY`].
pub type PKSPROCESSPIN_INDEXENTRY = *mut KSPROCESSPIN_INDEXENTRY;

ks_struct! {
    /// `KSP_PIN`: a property request that names a pin factory (what an intersect handler
    /// receives).
    pub struct KSP_PIN (size 32, align 8) {
        /// The property request.
        pub Property: crate::KSPROPERTY => 0,
        /// The pin factory id.
        pub PinId: ULONG => 24,
        /// Reserved, 0.
        pub Reserved: ULONG => 28,
    }
}

ks_callbacks! {
    AVSTREAM_CALLBACKS;
    /// `PFNKSPINIRP`: pin create or close. PASSIVE_LEVEL.
    pub type PFNKSPINIRP = fn(Pin: *mut KSPIN, Irp: PIRP) -> NTSTATUS;
    /// `PFNKSPIN`: pin process or connect.
    pub type PFNKSPIN = fn(Pin: *mut KSPIN) -> NTSTATUS;
    /// `PFNKSPINVOID`: pin reset or disconnect.
    pub type PFNKSPINVOID = fn(Pin: *mut KSPIN);
    /// `PFNKSPINSETDATAFORMAT`: a new connection format. PASSIVE_LEVEL.
    pub type PFNKSPINSETDATAFORMAT = fn(
        Pin: *mut KSPIN,
        OldFormat: PKSDATAFORMAT,
        OldAttributeList: PKSMULTIPLE_ITEM,
        DataRange: *const KSDATARANGE,
        AttributeRange: *const KSATTRIBUTE_LIST,
    ) -> NTSTATUS;
    /// `PFNKSPINSETDEVICESTATE`: a state transition. PASSIVE_LEVEL.
    pub type PFNKSPINSETDEVICESTATE =
        fn(Pin: *mut KSPIN, ToState: KSSTATE, FromState: KSSTATE) -> NTSTATUS;
    /// `PFNKSINTERSECTHANDLEREX`: data-range intersection of a pin. PASSIVE_LEVEL.
    pub type PFNKSINTERSECTHANDLEREX = fn(
        Context: PVOID,
        Irp: PIRP,
        Pin: *mut KSP_PIN,
        DataRange: PKSDATARANGE,
        MatchingDataRange: PKSDATARANGE,
        DataBufferSize: ULONG,
        Data: PVOID,
        DataSize: PULONG,
    ) -> NTSTATUS;
    /// `PFNKSFILTERIRP`: filter create or close. PASSIVE_LEVEL.
    pub type PFNKSFILTERIRP = fn(Filter: *mut KSFILTER, Irp: PIRP) -> NTSTATUS;
    /// `PFNKSFILTERPROCESS`: filter-centric processing.
    pub type PFNKSFILTERPROCESS =
        fn(Filter: *mut KSFILTER, Index: *mut KSPROCESSPIN_INDEXENTRY) -> NTSTATUS;
    /// `PFNKSFILTERVOID`: filter reset.
    pub type PFNKSFILTERVOID = fn(Filter: *mut KSFILTER) -> NTSTATUS;
    /// `PFNKSDEVICECREATE`: device add. PASSIVE_LEVEL.
    pub type PFNKSDEVICECREATE = fn(Device: *mut KSDEVICE) -> NTSTATUS;
    /// `PFNKSDEVICEPNPSTART`: PnP start. PASSIVE_LEVEL.
    pub type PFNKSDEVICEPNPSTART = fn(
        Device: *mut KSDEVICE,
        Irp: PIRP,
        TranslatedResourceList: PCM_RESOURCE_LIST,
        UntranslatedResourceList: PCM_RESOURCE_LIST,
    ) -> NTSTATUS;
    /// `PFNKSDEVICE`: post-start. PASSIVE_LEVEL.
    pub type PFNKSDEVICE = fn(Device: *mut KSDEVICE) -> NTSTATUS;
    /// `PFNKSDEVICEIRP`: a PnP query. PASSIVE_LEVEL.
    pub type PFNKSDEVICEIRP = fn(Device: *mut KSDEVICE, Irp: PIRP) -> NTSTATUS;
    /// `PFNKSDEVICEIRPVOID`: a PnP notification. PASSIVE_LEVEL.
    pub type PFNKSDEVICEIRPVOID = fn(Device: *mut KSDEVICE, Irp: PIRP);
    /// `PFNKSDEVICEQUERYCAPABILITIES`: PnP capabilities query. PASSIVE_LEVEL.
    pub type PFNKSDEVICEQUERYCAPABILITIES =
        fn(Device: *mut KSDEVICE, Irp: PIRP, Capabilities: PDEVICE_CAPABILITIES) -> NTSTATUS;
    /// `PFNKSDEVICEQUERYPOWER`: power query. PASSIVE_LEVEL.
    pub type PFNKSDEVICEQUERYPOWER = fn(
        Device: *mut KSDEVICE,
        Irp: PIRP,
        DeviceTo: DEVICE_POWER_STATE,
        DeviceFrom: DEVICE_POWER_STATE,
        SystemTo: SYSTEM_POWER_STATE,
        SystemFrom: SYSTEM_POWER_STATE,
        Action: POWER_ACTION,
    ) -> NTSTATUS;
    /// `PFNKSDEVICESETPOWER`: power change. PASSIVE_LEVEL.
    pub type PFNKSDEVICESETPOWER =
        fn(Device: *mut KSDEVICE, Irp: PIRP, To: DEVICE_POWER_STATE, From: DEVICE_POWER_STATE);
    /// `PFNKSFILTERFACTORYPOWER`: filter factory sleep or wake.
    pub type PFNKSFILTERFACTORYPOWER = fn(FilterFactory: *mut KSFILTERFACTORY, State: DEVICE_POWER_STATE);
    /// `PFNKSSTREAMPOINTER`: cancel callback of a stream-pointer clone.
    pub type PFNKSSTREAMPOINTER = fn(StreamPointer: *mut crate::KSSTREAM_POINTER);
    /// `PFNKSPINFRAMERETURN`: an injected frame came back.
    pub type PFNKSPINFRAMERETURN = fn(
        Pin: *mut KSPIN,
        Data: PVOID,
        Size: ULONG,
        Mdl: PMDL,
        Context: PVOID,
        Status: NTSTATUS,
    );
    /// `PFNKSFREE`: frees an item of an object bag.
    pub type PFNKSFREE = fn(Data: PVOID);
}

ks_struct! {
    /// `KSPIN_DISPATCH`: a pin's callbacks; every member is optional.
    pub struct KSPIN_DISPATCH (size 80, align 8) {
        /// Pin creation.
        pub Create: PFNKSPINIRP => 0,
        /// Pin close.
        pub Close: PFNKSPINIRP => 8,
        /// Pin-centric processing.
        pub Process: PFNKSPIN => 16,
        /// Flush.
        pub Reset: PFNKSPINVOID => 24,
        /// Connection format change.
        pub SetDataFormat: PFNKSPINSETDATAFORMAT => 32,
        /// State change.
        pub SetDeviceState: PFNKSPINSETDEVICESTATE => 40,
        /// Connection.
        pub Connect: PFNKSPIN => 48,
        /// Disconnection.
        pub Disconnect: PFNKSPINVOID => 56,
        /// Clock callbacks, or NULL.
        pub Clock: *const KSCLOCK_DISPATCH => 64,
        /// Pin-specific allocator, or NULL for none.
        pub Allocator: *const KSALLOCATOR_DISPATCH => 72,
    }
}

ks_struct! {
    /// `KSPIN_DESCRIPTOR`: the KS 1.0 part of a pin factory description.
    ///
    /// The trailing C union of `LONGLONG Reserved` and the constrained-ranges pair is modelled by
    /// the pair.
    pub struct KSPIN_DESCRIPTOR (size 88, align 8) {
        /// Number of interfaces; 0 for the standard streaming interface.
        pub InterfacesCount: ULONG => 0,
        /// The interfaces.
        pub Interfaces: *const KSPIN_INTERFACE => 8,
        /// Number of mediums; 0 for the standard medium.
        pub MediumsCount: ULONG => 16,
        /// The mediums.
        pub Mediums: *const KSPIN_MEDIUM => 24,
        /// Number of data ranges.
        pub DataRangesCount: ULONG => 32,
        /// The data ranges.
        pub DataRanges: *const PKSDATARANGE => 40,
        /// `KSPIN_DATAFLOW_*`.
        pub DataFlow: KSPIN_DATAFLOW => 48,
        /// `KSPIN_COMMUNICATION_*`.
        pub Communication: KSPIN_COMMUNICATION => 52,
        /// Pin category GUID, or NULL.
        pub Category: *const GUID => 56,
        /// Pin name GUID, or NULL.
        pub Name: *const GUID => 64,
        /// Number of constrained data ranges.
        pub ConstrainedDataRangesCount: ULONG => 72,
        /// The constrained data ranges.
        pub ConstrainedDataRanges: *mut PKSDATARANGE => 80,
    }
}

ks_struct! {
    /// `KSPIN_DESCRIPTOR_EX`: an AVStream pin factory description.
    pub struct KSPIN_DESCRIPTOR_EX (size 136, align 8) {
        /// Pin callbacks, or NULL.
        pub Dispatch: *const KSPIN_DISPATCH => 0,
        /// Pin automation table, or NULL.
        pub AutomationTable: *const KSAUTOMATION_TABLE => 8,
        /// The KS 1.0 description.
        pub PinDescriptor: KSPIN_DESCRIPTOR => 16,
        /// `KSPIN_FLAG_*`.
        pub Flags: ULONG => 104,
        /// Maximum pin instances.
        pub InstancesPossible: ULONG => 108,
        /// Instances needed for the filter to work.
        pub InstancesNecessary: ULONG => 112,
        /// Allocator framing, or NULL if the pin does not support the framing property.
        pub AllocatorFraming: *const KSALLOCATOR_FRAMING_EX => 120,
        /// Data intersection handler, or NULL.
        pub IntersectHandler: PFNKSINTERSECTHANDLEREX => 128,
    }
}

ks_struct! {
    /// `KSPIN`: an AVStream pin object.
    pub struct KSPIN (size 136, align 8) {
        /// The descriptor (possibly a per-pin `KsEdit` copy).
        pub Descriptor: *const KSPIN_DESCRIPTOR_EX => 0,
        /// The pin's object bag.
        pub Bag: KSOBJECT_BAG => 8,
        /// Minidriver context, inherited from the filter.
        pub Context: PVOID => 16,
        /// Pin factory id.
        pub Id: ULONG => 24,
        /// `KSPIN_COMMUNICATION_*` of this instance.
        pub Communication: KSPIN_COMMUNICATION => 28,
        /// The peer does not use the AVStream handshake.
        pub ConnectionIsExternal: BOOLEAN => 32,
        /// Interface of the connection.
        pub ConnectionInterface: KSPIN_INTERFACE => 40,
        /// Medium of the connection.
        pub ConnectionMedium: KSPIN_MEDIUM => 64,
        /// Priority of the connection.
        pub ConnectionPriority: KSPRIORITY => 88,
        /// Format of the connection.
        pub ConnectionFormat: PKSDATAFORMAT => 96,
        /// Attributes of the connection format.
        pub AttributeList: PKSMULTIPLE_ITEM => 104,
        /// Size of stream headers including extended headers.
        pub StreamHeaderSize: ULONG => 112,
        /// `KSPIN_DATAFLOW_*`.
        pub DataFlow: KSPIN_DATAFLOW => 116,
        /// Requested state.
        pub DeviceState: KSSTATE => 120,
        /// `KSRESET_*`.
        pub ResetState: KSRESET => 124,
        /// Client-visible state.
        pub ClientState: KSSTATE => 128,
    }
}
/// Pointer to a [`KSPIN`].
pub type PKSPIN = *mut KSPIN;

ks_struct! {
    /// `KSNODE_DESCRIPTOR`: a topology node of a filter (x64 layout).
    pub struct KSNODE_DESCRIPTOR (size 24, align 8) {
        /// Node automation table, or NULL.
        pub AutomationTable: *const KSAUTOMATION_TABLE => 0,
        /// Node type GUID.
        pub Type: *const GUID => 8,
        /// Node name GUID, or NULL.
        pub Name: *const GUID => 16,
    }
}

ks_struct! {
    /// `KSTOPOLOGY_CONNECTION`: an edge of a filter's topology.
    pub struct KSTOPOLOGY_CONNECTION (size 16, align 4) {
        /// Source node, or `KSFILTER_NODE`.
        pub FromNode: ULONG => 0,
        /// Pin of the source node.
        pub FromNodePin: ULONG => 4,
        /// Destination node, or `KSFILTER_NODE`.
        pub ToNode: ULONG => 8,
        /// Pin of the destination node.
        pub ToNodePin: ULONG => 12,
    }
}

ks_struct! {
    /// `KSFILTER_DISPATCH`: a filter's callbacks; every member is optional.
    pub struct KSFILTER_DISPATCH (size 32, align 8) {
        /// Filter creation.
        pub Create: PFNKSFILTERIRP => 0,
        /// Filter close.
        pub Close: PFNKSFILTERIRP => 8,
        /// Filter-centric processing.
        pub Process: PFNKSFILTERPROCESS => 16,
        /// Flush.
        pub Reset: PFNKSFILTERVOID => 24,
    }
}

ks_struct! {
    /// `KSFILTER_DESCRIPTOR`: an AVStream filter factory description.
    pub struct KSFILTER_DESCRIPTOR (size 104, align 8) {
        /// Filter callbacks, or NULL.
        pub Dispatch: *const KSFILTER_DISPATCH => 0,
        /// Filter automation table, or NULL.
        pub AutomationTable: *const KSAUTOMATION_TABLE => 8,
        /// `KSFILTER_DESCRIPTOR_VERSION`.
        pub Version: ULONG => 16,
        /// `KSFILTER_FLAG_*`.
        pub Flags: ULONG => 20,
        /// Reference GUID of the filter factory.
        pub ReferenceGuid: *const GUID => 24,
        /// Number of pin descriptors.
        pub PinDescriptorsCount: ULONG => 32,
        /// Stride of the pin descriptor array.
        pub PinDescriptorSize: ULONG => 36,
        /// The pin descriptors.
        pub PinDescriptors: *const KSPIN_DESCRIPTOR_EX => 40,
        /// Number of categories.
        pub CategoriesCount: ULONG => 48,
        /// The categories (`KSCATEGORY_*`).
        pub Categories: *const GUID => 56,
        /// Number of node descriptors.
        pub NodeDescriptorsCount: ULONG => 64,
        /// Stride of the node descriptor array.
        pub NodeDescriptorSize: ULONG => 68,
        /// The node descriptors.
        pub NodeDescriptors: *const KSNODE_DESCRIPTOR => 72,
        /// Number of topology connections.
        pub ConnectionsCount: ULONG => 80,
        /// The topology connections.
        pub Connections: *const KSTOPOLOGY_CONNECTION => 88,
        /// Component id, or NULL.
        pub ComponentId: *const KSCOMPONENTID => 96,
    }
}

ks_struct! {
    /// `KSFILTER`: an AVStream filter object.
    pub struct KSFILTER (size 24, align 8) {
        /// The descriptor.
        pub Descriptor: *const KSFILTER_DESCRIPTOR => 0,
        /// The filter's object bag.
        pub Bag: KSOBJECT_BAG => 8,
        /// Minidriver context, inherited from the device.
        pub Context: PVOID => 16,
    }
}
/// Pointer to a [`KSFILTER`].
pub type PKSFILTER = *mut KSFILTER;

ks_struct! {
    /// `KSFILTERFACTORY`: an AVStream filter factory object.
    pub struct KSFILTERFACTORY (size 24, align 8) {
        /// The descriptor.
        pub FilterDescriptor: *const KSFILTER_DESCRIPTOR => 0,
        /// The factory's object bag.
        pub Bag: KSOBJECT_BAG => 8,
        /// Minidriver context.
        pub Context: PVOID => 16,
    }
}
/// Pointer to a [`KSFILTERFACTORY`].
pub type PKSFILTERFACTORY = *mut KSFILTERFACTORY;

ks_struct! {
    /// `KSDEVICE_DISPATCH`: a device's PnP and power callbacks; every member is optional.
    pub struct KSDEVICE_DISPATCH (size 112, align 8) {
        /// Device add.
        pub Add: PFNKSDEVICECREATE => 0,
        /// PnP start.
        pub Start: PFNKSDEVICEPNPSTART => 8,
        /// After start.
        pub PostStart: PFNKSDEVICE => 16,
        /// Query stop.
        pub QueryStop: PFNKSDEVICEIRP => 24,
        /// Cancel stop.
        pub CancelStop: PFNKSDEVICEIRPVOID => 32,
        /// Stop.
        pub Stop: PFNKSDEVICEIRPVOID => 40,
        /// Query remove.
        pub QueryRemove: PFNKSDEVICEIRP => 48,
        /// Cancel remove.
        pub CancelRemove: PFNKSDEVICEIRPVOID => 56,
        /// Remove.
        pub Remove: PFNKSDEVICEIRPVOID => 64,
        /// Capabilities query.
        pub QueryCapabilities: PFNKSDEVICEQUERYCAPABILITIES => 72,
        /// Surprise removal.
        pub SurpriseRemoval: PFNKSDEVICEIRPVOID => 80,
        /// Power query.
        pub QueryPower: PFNKSDEVICEQUERYPOWER => 88,
        /// Power change.
        pub SetPower: PFNKSDEVICESETPOWER => 96,
        /// Interface query.
        pub QueryInterface: PFNKSDEVICEIRP => 104,
    }
}

ks_struct! {
    /// `KSDEVICE_DESCRIPTOR`: what `KsInitializeDriver` needs (x64 layout).
    ///
    /// `Flags` at offset 28 is in Microsoft's layout (public PDB symbols) and pairs with
    /// `KSDEVICE_DESCRIPTOR_VERSION_2`; older headers leave the slot as tail padding.
    pub struct KSDEVICE_DESCRIPTOR (size 32, align 8) {
        /// Device callbacks, or NULL.
        pub Dispatch: *const KSDEVICE_DISPATCH => 0,
        /// Number of filter descriptors created at start.
        pub FilterDescriptorsCount: ULONG => 8,
        /// The filter descriptors.
        pub FilterDescriptors: *const *const KSFILTER_DESCRIPTOR => 16,
        /// `KSDEVICE_DESCRIPTOR_VERSION` or `KSDEVICE_DESCRIPTOR_VERSION_2`.
        pub Version: ULONG => 24,
        /// `KSDEVICE_FLAG_*` (version 2 only).
        pub Flags: ULONG => 28,
    }
}

ks_struct! {
    /// `KSDEVICE`: an AVStream device object.
    pub struct KSDEVICE (size 64, align 8) {
        /// The descriptor.
        pub Descriptor: *const KSDEVICE_DESCRIPTOR => 0,
        /// The device's object bag.
        pub Bag: KSOBJECT_BAG => 8,
        /// Minidriver context.
        pub Context: PVOID => 16,
        /// The functional device object.
        pub FunctionalDeviceObject: PDEVICE_OBJECT => 24,
        /// The physical device object.
        pub PhysicalDeviceObject: PDEVICE_OBJECT => 32,
        /// The next lower device object.
        pub NextDeviceObject: PDEVICE_OBJECT => 40,
        /// The device has been started.
        pub Started: BOOLEAN => 48,
        /// Current system power state.
        pub SystemPowerState: SYSTEM_POWER_STATE => 52,
        /// Current device power state.
        pub DevicePowerState: DEVICE_POWER_STATE => 56,
    }
}
/// Pointer to a [`KSDEVICE`].
pub type PKSDEVICE = *mut KSDEVICE;

ks_consts! {
    STATES, "A `KSSTATE`, `KSPIN_DATAFLOW`, `KSPIN_COMMUNICATION` or `KSRESET` value.";
    /// Stopped: minimum resources.
    KSSTATE_STOP: KSSTATE = 0;
    /// Resources acquired.
    KSSTATE_ACQUIRE: KSSTATE = 1;
    /// Paused: ready to run.
    KSSTATE_PAUSE: KSSTATE = 2;
    /// Running.
    KSSTATE_RUN: KSSTATE = 3;
    /// Data flows into the pin.
    KSPIN_DATAFLOW_IN: KSPIN_DATAFLOW = 1;
    /// Data flows out of the pin.
    KSPIN_DATAFLOW_OUT: KSPIN_DATAFLOW = 2;
    /// The pin does not communicate.
    KSPIN_COMMUNICATION_NONE: KSPIN_COMMUNICATION = 0;
    /// The pin receives IRPs.
    KSPIN_COMMUNICATION_SINK: KSPIN_COMMUNICATION = 1;
    /// The pin sends IRPs.
    KSPIN_COMMUNICATION_SOURCE: KSPIN_COMMUNICATION = 2;
    /// The pin can be a sink or a source.
    KSPIN_COMMUNICATION_BOTH: KSPIN_COMMUNICATION = 3;
    /// The pin is a bridge.
    KSPIN_COMMUNICATION_BRIDGE: KSPIN_COMMUNICATION = 4;
    /// A flush begins.
    KSRESET_BEGIN: KSRESET = 0;
    /// A flush ends.
    KSRESET_END: KSRESET = 1;
}

ks_consts! {
    PIN_FLAGS, "A `KSPIN_FLAG_*` bit of `KSPIN_DESCRIPTOR_EX.Flags`.";
    /// Process at DISPATCH_LEVEL.
    KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING: ULONG = 0x0000_0001;
    /// Process on a critical work queue.
    KSPIN_FLAG_CRITICAL_PROCESSING: ULONG = 0x0000_0002;
    /// Process on a hypercritical work queue.
    KSPIN_FLAG_HYPERCRITICAL_PROCESSING: ULONG = 0x0000_0004;
    /// Processing may be asynchronous.
    KSPIN_FLAG_ASYNCHRONOUS_PROCESSING: ULONG = 0x0000_0008;
    /// AVStream does not start processing by itself.
    KSPIN_FLAG_DO_NOT_INITIATE_PROCESSING: ULONG = 0x0000_0010;
    /// Process on every frame arrival.
    KSPIN_FLAG_INITIATE_PROCESSING_ON_EVERY_ARRIVAL: ULONG = 0x0000_0020;
    /// Process even without frames.
    KSPIN_FLAG_FRAMES_NOT_REQUIRED_FOR_PROCESSING: ULONG = 0x0000_0040;
    /// Complete frames in order.
    KSPIN_FLAG_ENFORCE_FIFO: ULONG = 0x0000_0080;
    /// Generate scatter/gather mappings for frames.
    KSPIN_FLAG_GENERATE_MAPPINGS: ULONG = 0x0000_0100;
    /// Frames between the trailing and leading edge stay referenced.
    KSPIN_FLAG_DISTINCT_TRAILING_EDGE: ULONG = 0x0000_0200;
    /// Process only in the run state.
    KSPIN_FLAG_PROCESS_IN_RUN_STATE_ONLY: ULONG = 0x0001_0000;
    /// AVStream copies frames to extra instances.
    KSPIN_FLAG_SPLITTER: ULONG = 0x0002_0000;
    /// Use the standard transport.
    KSPIN_FLAG_USE_STANDARD_TRANSPORT: ULONG = 0x0004_0000;
    /// Do not use the standard transport.
    KSPIN_FLAG_DO_NOT_USE_STANDARD_TRANSPORT: ULONG = 0x0008_0000;
    /// The format cannot change.
    KSPIN_FLAG_FIXED_FORMAT: ULONG = 0x0010_0000;
    /// Generate end-of-stream events.
    KSPIN_FLAG_GENERATE_EOS_EVENTS: ULONG = 0x0020_0000;
    /// A renderer pin.
    KSPIN_FLAG_RENDERER: ULONG = 0x0021_0000;
    /// The pin implements a clock.
    KSPIN_FLAG_IMPLEMENT_CLOCK: ULONG = 0x0040_0000;
    /// Process when some pins have frames.
    KSPIN_FLAG_SOME_FRAMES_REQUIRED_FOR_PROCESSING: ULONG = 0x0080_0000;
    /// Process if any pin is running.
    KSPIN_FLAG_PROCESS_IF_ANY_IN_RUN_STATE: ULONG = 0x0100_0000;
    /// No user-mode access.
    KSPIN_FLAG_DENY_USERMODE_ACCESS: ULONG = 0x8000_0000;
}

ks_consts! {
    OBJECT_FLAGS, "A filter, device or create-item flag, version or sentinel.";
    /// Process at DISPATCH_LEVEL.
    KSFILTER_FLAG_DISPATCH_LEVEL_PROCESSING: ULONG = 0x0000_0001;
    /// Process on a critical work queue.
    KSFILTER_FLAG_CRITICAL_PROCESSING: ULONG = 0x0000_0002;
    /// Process on a hypercritical work queue.
    KSFILTER_FLAG_HYPERCRITICAL_PROCESSING: ULONG = 0x0000_0004;
    /// Receive zero-length samples.
    KSFILTER_FLAG_RECEIVE_ZERO_LENGTH_SAMPLES: ULONG = 0x0000_0008;
    /// Newer SDKs only: prioritise the reference GUID.
    KSFILTER_FLAG_PRIORITIZE_REFERENCEGUID: ULONG = 0x0000_0010;
    /// No user-mode access.
    KSFILTER_FLAG_DENY_USERMODE_ACCESS: ULONG = 0x8000_0000;
    /// Version of `KSFILTER_DESCRIPTOR`.
    KSFILTER_DESCRIPTOR_VERSION: ULONG = 0xFFFF_FFFF;
    /// The filter itself in a topology connection.
    KSFILTER_NODE: ULONG = 0xFFFF_FFFF;
    /// Version of `KSDEVICE_DESCRIPTOR` without `Flags`.
    KSDEVICE_DESCRIPTOR_VERSION: ULONG = 0x100;
    /// Newer SDKs only: version of `KSDEVICE_DESCRIPTOR` with `Flags`.
    KSDEVICE_DESCRIPTOR_VERSION_2: ULONG = 0x110;
    /// Newer SDKs only: the device supports remote wake-up.
    KSDEVICE_FLAG_ENABLE_REMOTE_WAKEUP: ULONG = 0x1;
    /// Newer SDKs only: low-power pass-through.
    KSDEVICE_FLAG_LOWPOWER_PASSTHROUGH: ULONG = 0x2;
    /// Newer SDKs only: forward interface queries.
    KSDEVICE_FLAG_ENABLE_QUERYINTERFACE: ULONG = 0x4;
    /// The security descriptor of the create item changed.
    KSCREATE_ITEM_SECURITYCHANGED: ULONG = 0x1;
    /// The create item matches any name.
    KSCREATE_ITEM_WILDCARD: ULONG = 0x2;
    /// The create item takes no parameters.
    KSCREATE_ITEM_NOPARAMETERS: ULONG = 0x4;
    /// Free the create item when the device stops.
    KSCREATE_ITEM_FREEONSTOP: ULONG = 0x8;
}
