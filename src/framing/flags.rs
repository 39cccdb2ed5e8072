//! Flag sets of the framing structures, as `bitflags` types.
//!
//! Bits a type does not name are kept (`from_bits_retain`), never dropped: a value read from a
//! buffer round-trips exactly, and the validator reports unknown bits instead of hiding them.

use bitflags::bitflags;

bitflags! {
    /// `KSALLOCATOR_REQUIREMENTF_*`: the `RequirementsFlags` of a legacy framing returned by
    /// `KSPROPERTY_CONNECTION_ALLOCATORFRAMING`.
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct RequirementFlags: u32 {
        /// The connection point can modify frames in place.
        const INPLACE_MODIFIER = ks_sys::KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER;
        /// Frames must be system memory.
        const SYSTEM_MEMORY = ks_sys::KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY;
        /// Downstream filters must keep frame data intact.
        const FRAME_INTEGRITY = ks_sys::KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY;
        /// The connection point must allocate every frame it sends.
        const MUST_ALLOCATE = ks_sys::KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE;
        /// Newer SDKs: custom system-memory allocation (undocumented).
        const SYSTEM_MEMORY_CUSTOM_ALLOCATION =
            ks_sys::KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION;
        /// The other bits are preferences only.
        const PREFERENCES_ONLY = ks_sys::KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY;
    }
}

bitflags! {
    /// `KSALLOCATOR_OPTIONF_*`: the `OptionsFlags` of an allocator create request, which is also
    /// what `InitializeAllocator` receives.
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct OptionFlags: u32 {
        /// The allocator's framing is compatible with the downstream allocator.
        const COMPATIBLE = ks_sys::KSALLOCATOR_OPTIONF_COMPATIBLE;
        /// Allocate frames from pool of the requested `PoolType`.
        const SYSTEM_MEMORY = ks_sys::KSALLOCATOR_OPTIONF_SYSTEM_MEMORY;
    }
}

bitflags! {
    /// `KS_FRAMING_ITEM.Flags`: requirement bits (`KSALLOCATOR_REQUIREMENTF_*`) and item flags
    /// (`KSALLOCATOR_FLAG_*`) in one word. Bit 0x10 is `PARTIAL_READ_SUPPORT` here.
    #[repr(transparent)]
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct ItemFlags: u32 {
        /// The connection point can modify frames in place.
        const INPLACE_MODIFIER = ks_sys::KSALLOCATOR_REQUIREMENTF_INPLACE_MODIFIER;
        /// Frames must be system memory.
        const SYSTEM_MEMORY = ks_sys::KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY;
        /// Downstream filters must keep frame data intact.
        const FRAME_INTEGRITY = ks_sys::KSALLOCATOR_REQUIREMENTF_FRAME_INTEGRITY;
        /// The connection point must allocate every frame it sends.
        const MUST_ALLOCATE = ks_sys::KSALLOCATOR_REQUIREMENTF_MUST_ALLOCATE;
        /// Partially filled frames are accepted.
        const PARTIAL_READ_SUPPORT = ks_sys::KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT;
        /// The memory type is device specific.
        const DEVICE_SPECIFIC = ks_sys::KSALLOCATOR_FLAG_DEVICE_SPECIFIC;
        /// The filter can allocate the device-specific memory.
        const CAN_ALLOCATE = ks_sys::KSALLOCATOR_FLAG_CAN_ALLOCATE;
        /// The output compression ratio must be kept exactly.
        const INSIST_ON_FRAMESIZE_RATIO = ks_sys::KSALLOCATOR_FLAG_INSIST_ON_FRAMESIZE_RATIO;
        /// Pipe flag: at least one data modification in the pipe.
        const NO_FRAME_INTEGRITY = ks_sys::KSALLOCATOR_FLAG_NO_FRAME_INTEGRITY;
        /// Pipe flag: multiple outputs.
        const MULTIPLE_OUTPUT = ks_sys::KSALLOCATOR_FLAG_MULTIPLE_OUTPUT;
        /// Pipe flag: cycle.
        const CYCLE = ks_sys::KSALLOCATOR_FLAG_CYCLE;
        /// Pipe flag: an allocator exists.
        const ALLOCATOR_EXISTS = ks_sys::KSALLOCATOR_FLAG_ALLOCATOR_EXISTS;
        /// Pipe flag: no framing dependency between neighbouring pipes.
        const INDEPENDENT_RANGES = ks_sys::KSALLOCATOR_FLAG_INDEPENDENT_RANGES;
        /// Pipe flag: stepping must be honoured.
        const ATTENTION_STEPPING = ks_sys::KSALLOCATOR_FLAG_ATTENTION_STEPPING;
        /// Newer SDKs: MDL caching (internal).
        const ENABLE_CACHED_MDL = ks_sys::KSALLOCATOR_FLAG_ENABLE_CACHED_MDL;
        /// Newer SDKs: `FileAlignment` holds a signed 2-D pitch (`KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED`).
        const BUFFER_2D_REQUIRED = ks_sys::KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED;
        /// The requirement bits are preferences only.
        const PREFERENCES_ONLY = ks_sys::KSALLOCATOR_REQUIREMENTF_PREFERENCES_ONLY;
    }
}

impl ItemFlags {
    /// The requirement bits of the item, as a legacy `RequirementsFlags` would carry them.
    #[must_use]
    pub const fn requirements(self) -> RequirementFlags {
        let mask = RequirementFlags::INPLACE_MODIFIER.bits()
            | RequirementFlags::SYSTEM_MEMORY.bits()
            | RequirementFlags::FRAME_INTEGRITY.bits()
            | RequirementFlags::MUST_ALLOCATE.bits()
            | RequirementFlags::PREFERENCES_ONLY.bits();
        RequirementFlags::from_bits_retain(self.bits() & mask)
    }

    /// Whether the requirements are binding (`PREFERENCES_ONLY` is not set).
    #[must_use]
    pub const fn is_binding(self) -> bool {
        !self.contains(Self::PREFERENCES_ONLY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_flags_know_exactly_the_documented_bits() {
        assert_eq!(ItemFlags::all().bits(), 0x8000_FFFF);
        assert_eq!(RequirementFlags::all().bits(), 0x8000_001F);
        assert_eq!(OptionFlags::all().bits(), ks_sys::KSALLOCATOR_OPTIONF_VALID);
    }

    #[test]
    fn unknown_bits_are_retained() {
        let flags = ItemFlags::from_bits_retain(0x0001_0002);
        assert_eq!(flags.bits(), 0x0001_0002);
        assert_eq!(flags.difference(ItemFlags::all()).bits(), 0x0001_0000);
    }

    #[test]
    fn item_requirements_drop_item_only_bits() {
        let flags = ItemFlags::SYSTEM_MEMORY
            | ItemFlags::PREFERENCES_ONLY
            | ItemFlags::PARTIAL_READ_SUPPORT;
        assert_eq!(
            flags.requirements(),
            RequirementFlags::SYSTEM_MEMORY | RequirementFlags::PREFERENCES_ONLY
        );
        assert!(!flags.is_binding());
    }
}
