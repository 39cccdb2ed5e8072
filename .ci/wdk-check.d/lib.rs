//! What the `wdk` build must satisfy, checked by compiling it against the generated wdk-sys.
//!
//! Compiling this crate (with ks-sys, ks-allocator and ks-sample-core built with `wdk` as its
//! dependencies) is the check; nothing here runs.

#![no_std]
// Two glob imports naming different items are an error when used (E0659), or for some
// imports a future-incompatibility warning today; either fails this check.
#![deny(ambiguous_glob_imports, future_incompatible)]
#![allow(clippy::all, reason = "a compile-time check, not code anyone calls")]

/// A driver glob-imports both crates, as the windows-drivers-rs samples do with wdk-sys: every
/// name the two define at their roots must resolve to one item (E0659 otherwise).
pub mod glob_imports {
    // Where both globs name the same item, either may be reported as the unused one.
    #[allow(unused_imports, reason = "the names, not the paths, are what is checked")]
    use ks_sys::*;
    #[allow(unused_imports, reason = "the names, not the paths, are what is checked")]
    use wdk_sys::*;

    /// Every name ks-sys shares with wdk-sys's root, used unqualified.
    pub const SHARED_CONSTANTS: [u64; 45] = [
        FILE_BYTE_ALIGNMENT as u64,
        FILE_WORD_ALIGNMENT as u64,
        FILE_LONG_ALIGNMENT as u64,
        FILE_QUAD_ALIGNMENT as u64,
        FILE_OCTA_ALIGNMENT as u64,
        FILE_32_BYTE_ALIGNMENT as u64,
        FILE_64_BYTE_ALIGNMENT as u64,
        FILE_128_BYTE_ALIGNMENT as u64,
        FILE_256_BYTE_ALIGNMENT as u64,
        FILE_512_BYTE_ALIGNMENT as u64,
        PAGE_SIZE as u64,
        STATUS_SUCCESS as u64,
        STATUS_PENDING as u64,
        STATUS_MORE_ENTRIES as u64,
        STATUS_BUFFER_OVERFLOW as u64,
        STATUS_UNSUCCESSFUL as u64,
        STATUS_NOT_IMPLEMENTED as u64,
        STATUS_INVALID_HANDLE as u64,
        STATUS_INVALID_PARAMETER as u64,
        STATUS_INVALID_DEVICE_REQUEST as u64,
        STATUS_NO_MEMORY as u64,
        STATUS_ACCESS_DENIED as u64,
        STATUS_BUFFER_TOO_SMALL as u64,
        STATUS_OBJECT_TYPE_MISMATCH as u64,
        STATUS_INSUFFICIENT_RESOURCES as u64,
        STATUS_DEVICE_NOT_READY as u64,
        STATUS_NOT_SUPPORTED as u64,
        STATUS_INVALID_DEVICE_STATE as u64,
        STATUS_INVALID_BUFFER_SIZE as u64,
        STATUS_NOT_FOUND as u64,
        STATUS_NO_MATCH as u64,
        STATUS_DEVICE_BUSY as u64,
        POOL_FLAG_UNINITIALIZED,
        POOL_FLAG_CACHE_ALIGNED,
        POOL_FLAG_NON_PAGED,
        POOL_FLAG_PAGED,
        DEVICE_DESCRIPTION_VERSION as u64,
        DEVICE_DESCRIPTION_VERSION1 as u64,
        DEVICE_DESCRIPTION_VERSION2 as u64,
        PASSIVE_LEVEL as u64,
        APC_LEVEL as u64,
        DISPATCH_LEVEL as u64,
        DPFLTR_ERROR_LEVEL as u64 + DPFLTR_WARNING_LEVEL as u64,
        DPFLTR_TRACE_LEVEL as u64 + DPFLTR_INFO_LEVEL as u64,
        ALL_PROCESSOR_GROUPS as u64,
    ];

    /// The shared type names, used unqualified.
    pub type SharedTypes = (KIRQL, PCSTR, PDRIVER_UNLOAD);

    /// The IRQL constants compare with an IRQL the way wdk-sys's users compare them.
    pub fn at_most_dispatch(irql: KIRQL) -> bool {
        u32::from(irql) <= DISPATCH_LEVEL
    }
}

/// ks-sys's NT types are wdk-sys's types, so that KS structures and the WDK's interoperate.
pub mod same_types {
    /// Compiles only if each pair is one type.
    pub fn identity(
        a: wdk_sys::PIRP,
        b: wdk_sys::PDEVICE_OBJECT,
        c: wdk_sys::PDRIVER_OBJECT,
        d: wdk_sys::PFILE_OBJECT,
        e: wdk_sys::UNICODE_STRING,
        f: wdk_sys::KDPC,
        g: wdk_sys::KTIMER,
        h: wdk_sys::POOL_TYPE,
        i: wdk_sys::SIZE_T,
        j: wdk_sys::ULONG_PTR,
        k: wdk_sys::GUID,
        l: wdk_sys::LARGE_INTEGER,
        m: wdk_sys::PDMA_ADAPTER,
        n: wdk_sys::DEVICE_DESCRIPTION,
        o: wdk_sys::_DMA_OPERATIONS,
        p: wdk_sys::PHYSICAL_ADDRESS,
        q: wdk_sys::PROCESSOR_NUMBER,
    ) -> (
        ks_sys::PIRP,
        ks_sys::PDEVICE_OBJECT,
        ks_sys::PDRIVER_OBJECT,
        ks_sys::PFILE_OBJECT,
        ks_sys::UNICODE_STRING,
        ks_sys::KDPC,
        ks_sys::KTIMER,
        ks_sys::POOL_TYPE,
        ks_sys::SIZE_T,
        ks_sys::ULONG_PTR,
        ks_sys::GUID,
        ks_sys::LARGE_INTEGER,
        ks_sys::PDMA_ADAPTER,
        ks_sys::DEVICE_DESCRIPTION,
        ks_sys::DMA_OPERATIONS,
        ks_sys::PHYSICAL_ADDRESS,
        ks_sys::PROCESSOR_NUMBER,
    ) {
        (a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q)
    }
}

/// The ntoskrnl routines ks-sys declares itself have wdk-sys's signatures: two function items
/// in one array coerce to one function pointer type only if their ABI, unsafety, parameter and
/// return types agree.
pub mod same_signatures {
    macro_rules! agree {
        ($($routine:ident),* $(,)?) => {
            /// One array per routine: ks-sys's declaration beside wdk-sys's.
            pub fn all() {
                $(let _ = [ks_sys::$routine, wdk_sys::ntddk::$routine];)*
            }
        };
    }

    agree!(
        DbgPrintEx,
        ExFreePoolWithTag,
        IoIs32bitProcess,
        KdRefreshDebuggerNotPresent,
        KeCancelTimer,
        KeFlushQueuedDpcs,
        KeGetCurrentProcessorNumberEx,
        KeInitializeDpc,
        KeInitializeTimerEx,
        KeQueryActiveProcessorCountEx,
        KeSetTimerEx,
        MmGetSystemRoutineAddress,
        ObReferenceObjectByHandle,
        ObfDereferenceObject,
    );
}
