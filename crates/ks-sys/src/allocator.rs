//! Allocator framing and the allocator dispatch table (`ks.h`).

use crate::{GUID, KSPIN, NTSTATUS, PFILE_OBJECT, POOL_TYPE, PVOID, ULONG};

ks_struct! {
    /// `KSALLOCATOR_FRAMING`: the 24-byte legacy framing.
    ///
    /// It is the value of `KSPROPERTY_CONNECTION_ALLOCATORFRAMING` (then the first field holds
    /// `KSALLOCATOR_REQUIREMENTF_*` requirements) and the parameter block of every allocator
    /// create request and of `InitializeAllocator` (then it holds `KSALLOCATOR_OPTIONF_*`
    /// options). The C union `OptionsFlags`/`RequirementsFlags` is one `u32` here, as is
    /// `FileAlignment`/`FramePitch`.
    pub struct KSALLOCATOR_FRAMING (size 24, align 4) {
        /// `OptionsFlags` in create requests, `RequirementsFlags` in queries.
        pub OptionsFlags: ULONG => 0,
        /// Pool type of the frames (`NonPagedPool`, `PagedPool`).
        pub PoolType: POOL_TYPE => 4,
        /// Allowable outstanding frames; 0 means no requirement (queries) or no cap (creates).
        pub Frames: ULONG => 8,
        /// Size of one frame in bytes, prefix and postfix included.
        pub FrameSize: ULONG => 12,
        /// Alignment mask (`FILE_*_ALIGNMENT`), or the 2-D pitch when
        /// `KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED` applies.
        pub FileAlignment: ULONG => 16,
        /// Reserved, 0.
        pub Reserved: ULONG => 20,
    }
}
/// Pointer to a [`KSALLOCATOR_FRAMING`].
pub type PKSALLOCATOR_FRAMING = *mut KSALLOCATOR_FRAMING;

ks_struct! {
    /// `KS_FRAMING_RANGE`: a range of frame sizes, `Min + k * Stepping <= Max`.
    pub struct KS_FRAMING_RANGE (size 12, align 4) {
        /// Smallest frame size.
        pub MinFrameSize: ULONG => 0,
        /// Largest frame size.
        pub MaxFrameSize: ULONG => 4,
        /// Granularity of sizes between the two.
        pub Stepping: ULONG => 8,
    }
}

ks_struct! {
    /// `KS_FRAMING_RANGE_WEIGHTED`: the optimal range of frame sizes with weights.
    pub struct KS_FRAMING_RANGE_WEIGHTED (size 20, align 4) {
        /// The range.
        pub Range: KS_FRAMING_RANGE => 0,
        /// Weight for in-place use; documented as unsupported, 0.
        pub InPlaceWeight: ULONG => 12,
        /// Weight for copying use; documented as unsupported, 0.
        pub NotInPlaceWeight: ULONG => 16,
    }
}

ks_struct! {
    /// `KS_COMPRESSION`: output/input frame size ratio of a transform.
    pub struct KS_COMPRESSION (size 12, align 4) {
        /// Numerator of the ratio.
        pub RatioNumerator: ULONG => 0,
        /// Denominator of the ratio; never 0.
        pub RatioDenominator: ULONG => 4,
        /// Constant added to the scaled size.
        pub RatioConstantMargin: ULONG => 8,
    }
}

ks_struct! {
    /// `KS_FRAMING_ITEM`: one memory-type alternative of an extended framing.
    pub struct KS_FRAMING_ITEM (size 88, align 4) {
        /// `KSMEMORY_TYPE_*`; GUID_NULL means any.
        pub MemoryType: GUID => 0,
        /// `GUID_BUS_TYPE_*`; GUID_NULL means any.
        pub BusType: GUID => 16,
        /// Memory flags; in practice 0.
        pub MemoryFlags: ULONG => 32,
        /// Bus flags; unused, 0.
        pub BusFlags: ULONG => 36,
        /// `KSALLOCATOR_REQUIREMENTF_*` and `KSALLOCATOR_FLAG_*` bits.
        pub Flags: ULONG => 40,
        /// Allowable outstanding frames.
        pub Frames: ULONG => 44,
        /// Alignment mask, or the 2-D pitch (`FramePitch`).
        pub FileAlignment: ULONG => 48,
        /// Pin-wide weight of this memory type.
        pub MemoryTypeWeight: ULONG => 52,
        /// Hard limits on the frame size.
        pub PhysicalRange: KS_FRAMING_RANGE => 56,
        /// Optimal frame sizes.
        pub FramingRange: KS_FRAMING_RANGE_WEIGHTED => 68,
    }
}

ks_struct! {
    /// `KSALLOCATOR_FRAMING_EX`: the extended framing of an AVStream pin.
    ///
    /// C declares `FramingItem[1]`; a real instance holds `CountItems` items and is
    /// `24 + 88 * CountItems` bytes long. Never read past item 0 through this type: use the
    /// item count and the buffer length (the safe layer's parser does).
    pub struct KSALLOCATOR_FRAMING_EX (size 112, align 4) {
        /// Number of framing items that follow the header.
        pub CountItems: ULONG => 0,
        /// Reserved, 0.
        pub PinFlags: ULONG => 4,
        /// Output compression of a transform; {1, 1, 0} for identity.
        pub OutputCompression: KS_COMPRESSION => 8,
        /// Reserved, 0.
        pub PinWeight: ULONG => 20,
        /// The first framing item; the others follow it in memory.
        pub FramingItem: [KS_FRAMING_ITEM; 1] => 24,
    }
}
/// Pointer to a [`KSALLOCATOR_FRAMING_EX`].
pub type PKSALLOCATOR_FRAMING_EX = *mut KSALLOCATOR_FRAMING_EX;

ks_struct! {
    /// `KSSTREAMALLOCATOR_STATUS`: value of `KSPROPERTY_STREAMALLOCATOR_STATUS`.
    pub struct KSSTREAMALLOCATOR_STATUS (size 32, align 4) {
        /// The framing the allocator was created with.
        pub Framing: KSALLOCATOR_FRAMING => 0,
        /// Frames currently allocated.
        pub AllocatedFrames: ULONG => 24,
        /// Reserved, 0.
        pub Reserved: ULONG => 28,
    }
}

ks_struct! {
    /// `KSSTREAMALLOCATOR_FUNCTIONTABLE`: the DISPATCH_LEVEL interface of an allocator object.
    pub struct KSSTREAMALLOCATOR_FUNCTIONTABLE (size 16, align 8) {
        /// Takes a frame.
        pub AllocateFrame: PFNALLOCATOR_ALLOCATEFRAME => 0,
        /// Returns a frame.
        pub FreeFrame: PFNALLOCATOR_FREEFRAME => 8,
    }
}

ks_callbacks! {
    ALLOCATOR_CALLBACKS;
    /// `PFNKSPININITIALIZEALLOCATOR`: creates an allocator context for a pin from the
    /// negotiated legacy framing. PASSIVE_LEVEL.
    pub type PFNKSPININITIALIZEALLOCATOR =
        fn(Pin: *mut KSPIN, AllocatorFraming: PKSALLOCATOR_FRAMING, Context: *mut PVOID) -> NTSTATUS;
    /// `PFNKSDELETEALLOCATOR`: destroys an allocator context. PASSIVE_LEVEL.
    pub type PFNKSDELETEALLOCATOR = fn(Context: PVOID);
    /// `PFNKSDEFAULTALLOCATE`: takes a frame, or returns NULL. IRQL <= DISPATCH_LEVEL.
    pub type PFNKSDEFAULTALLOCATE = fn(Context: PVOID) -> PVOID;
    /// `PFNKSDEFAULTFREE`: returns a frame. IRQL <= DISPATCH_LEVEL.
    pub type PFNKSDEFAULTFREE = fn(Context: PVOID, Buffer: PVOID);
    /// `PFNKSINITIALIZEALLOCATOR`: the `KsCreateDefaultAllocatorEx` form of the initialise
    /// callback, with an untyped initial context. PASSIVE_LEVEL.
    pub type PFNKSINITIALIZEALLOCATOR =
        fn(InitialContext: PVOID, AllocatorFraming: PKSALLOCATOR_FRAMING, Context: *mut PVOID) -> NTSTATUS;
    /// `PFNALLOCATOR_ALLOCATEFRAME`: function-table allocation on an allocator file object.
    pub type PFNALLOCATOR_ALLOCATEFRAME = fn(FileObject: PFILE_OBJECT, Frame: *mut PVOID) -> NTSTATUS;
    /// `PFNALLOCATOR_FREEFRAME`: function-table free on an allocator file object.
    pub type PFNALLOCATOR_FREEFRAME = fn(FileObject: PFILE_OBJECT, Frame: PVOID);
}

ks_struct! {
    /// `KSALLOCATOR_DISPATCH`: the four callbacks of a pin-specific allocator, hung off
    /// `KSPIN_DISPATCH.Allocator`.
    pub struct KSALLOCATOR_DISPATCH (size 32, align 8) {
        /// Creates the allocator context (PASSIVE_LEVEL).
        pub InitializeAllocator: PFNKSPININITIALIZEALLOCATOR => 0,
        /// Destroys it (PASSIVE_LEVEL).
        pub DeleteAllocator: PFNKSDELETEALLOCATOR => 8,
        /// Takes a frame (IRQL <= DISPATCH_LEVEL).
        pub Allocate: PFNKSDEFAULTALLOCATE => 16,
        /// Returns a frame (IRQL <= DISPATCH_LEVEL).
        pub Free: PFNKSDEFAULTFREE => 24,
    }
}

ks_consts! {
    REQUIREMENT_FLAGS, "A `KSALLOCATOR_REQUIREMENTF_*` requirement bit (`RequirementsFlags`, `KS_FRAMING_ITEM.Flags`).";
    /// The connection point can modify frames in place.
    KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER: ULONG = 0x0000_0001;
    /// Frames must be system memory.
    KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY: ULONG = 0x0000_0002;
    /// Downstream filters must keep frame data intact.
    KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY: ULONG = 0x0000_0004;
    /// The connection point must allocate every frame it sends.
    KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE: ULONG = 0x0000_0008;
    /// Newer SDKs only; undocumented. Same bit as `KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT`.
    KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION: ULONG = 0x0000_0010;
    /// The other requirement bits are preferences only.
    KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY: ULONG = 0x8000_0000;
}

ks_consts! {
    OPTION_FLAGS, "A `KSALLOCATOR_OPTIONF_*` bit of `OptionsFlags` in an allocator create request.";
    /// The new allocator's framing is compatible with the downstream allocator.
    KSALLOCATOR_OPTIONF_COMPATIBLE: ULONG = 0x0000_0001;
    /// Allocate from pool of the requested `PoolType`.
    KSALLOCATOR_OPTIONF_SYSTEM_MEMORY: ULONG = 0x0000_0002;
    /// Mask of every valid option bit.
    KSALLOCATOR_OPTIONF_VALID: ULONG = 0x0000_0003;
}

ks_consts! {
    ITEM_FLAGS, "A `KSALLOCATOR_FLAG_*` bit of `KS_FRAMING_ITEM.Flags`.";
    /// The filter accepts partially filled frames.
    KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT: ULONG = 0x0000_0010;
    /// The memory type is device specific.
    KSALLOCATOR_FLAG_DEVICE_SPECIFIC: ULONG = 0x0000_0020;
    /// The filter can allocate the device-specific memory.
    KSALLOCATOR_FLAG_CAN_ALLOCATE: ULONG = 0x0000_0040;
    /// The output compression ratio must be kept exactly.
    KSALLOCATOR_FLAG_INSIST_ON_FRAMESIZE_RATIO: ULONG = 0x0000_0080;
    /// Pipe flag: at least one data modification in the pipe.
    KSALLOCATOR_FLAG_NO_FRAME_INTEGRITY: ULONG = 0x0000_0100;
    /// Pipe flag: multiple outputs.
    KSALLOCATOR_FLAG_MULTIPLE_OUTPUT: ULONG = 0x0000_0200;
    /// Pipe flag: cycle.
    KSALLOCATOR_FLAG_CYCLE: ULONG = 0x0000_0400;
    /// Pipe flag: an allocator exists.
    KSALLOCATOR_FLAG_ALLOCATOR_EXISTS: ULONG = 0x0000_0800;
    /// Pipe flag: no framing dependency between neighbouring pipes.
    KSALLOCATOR_FLAG_INDEPENDENT_RANGES: ULONG = 0x0000_1000;
    /// Pipe flag: stepping must be honoured.
    KSALLOCATOR_FLAG_ATTENTION_STEPPING: ULONG = 0x0000_2000;
    /// Newer SDKs only: MDL caching (documented as internal).
    KSALLOCATOR_FLAG_ENABLE_CACHED_MDL: ULONG = 0x0000_4000;
    /// Newer SDKs only: `FileAlignment` holds a signed 2-D pitch (`FramePitch`).
    KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED: ULONG = 0x0000_8000;
}
