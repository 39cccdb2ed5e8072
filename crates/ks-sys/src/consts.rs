//! Constants from the NT headers that KS code needs: alignment masks (`wdm.h`), pool types
//! (`wdm.h`), the page size and status codes (`ntstatus.h`).

use crate::{NTSTATUS, POOL_TYPE, ULONG};

ks_consts! {
    ALIGNMENTS, "A `FILE_*_ALIGNMENT` mask (alignment minus one), as stored in `FileAlignment`.";
    /// 1-byte alignment.
    FILE_BYTE_ALIGNMENT: ULONG = 0x0000_0000;
    /// 2-byte alignment.
    FILE_WORD_ALIGNMENT: ULONG = 0x0000_0001;
    /// 4-byte alignment.
    FILE_LONG_ALIGNMENT: ULONG = 0x0000_0003;
    /// 8-byte alignment.
    FILE_QUAD_ALIGNMENT: ULONG = 0x0000_0007;
    /// 16-byte alignment.
    FILE_OCTA_ALIGNMENT: ULONG = 0x0000_000F;
    /// 32-byte alignment.
    FILE_32_BYTE_ALIGNMENT: ULONG = 0x0000_001F;
    /// 64-byte alignment.
    FILE_64_BYTE_ALIGNMENT: ULONG = 0x0000_003F;
    /// 128-byte alignment.
    FILE_128_BYTE_ALIGNMENT: ULONG = 0x0000_007F;
    /// 256-byte alignment.
    FILE_256_BYTE_ALIGNMENT: ULONG = 0x0000_00FF;
    /// 512-byte alignment.
    FILE_512_BYTE_ALIGNMENT: ULONG = 0x0000_01FF;
}

ks_consts! {
    NT_CONSTANTS, "A `POOL_TYPE` value, the page size, or an NTSTATUS code.";
    /// Size of a page on x64 and ARM64.
    PAGE_SIZE: ULONG = 0x1000;
    /// Non-paged pool.
    NonPagedPool: POOL_TYPE = 0;
    /// Paged pool.
    PagedPool: POOL_TYPE = 1;
    /// Non-paged pool that must succeed (obsolete).
    NonPagedPoolMustSucceed: POOL_TYPE = 2;
    /// Non-paged, cache-aligned pool.
    NonPagedPoolCacheAligned: POOL_TYPE = 4;
    /// Paged, cache-aligned pool.
    PagedPoolCacheAligned: POOL_TYPE = 5;
    /// Non-paged, no-execute pool.
    NonPagedPoolNx: POOL_TYPE = 512;
    /// Non-paged, no-execute, cache-aligned pool.
    NonPagedPoolNxCacheAligned: POOL_TYPE = 516;
    /// Success.
    STATUS_SUCCESS: NTSTATUS = 0;
    /// The operation completes later.
    STATUS_PENDING: NTSTATUS = 0x0000_0103;
    /// More entries are available (a success code).
    STATUS_MORE_ENTRIES: NTSTATUS = 0x0000_0105;
    /// The output buffer is too small; the size needed is reported (a warning).
    STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x8000_0005_u32.cast_signed();
    /// Unspecified failure.
    STATUS_UNSUCCESSFUL: NTSTATUS = 0xC000_0001_u32.cast_signed();
    /// Not implemented.
    STATUS_NOT_IMPLEMENTED: NTSTATUS = 0xC000_0002_u32.cast_signed();
    /// The handle is not valid in the caller's handle table.
    STATUS_INVALID_HANDLE: NTSTATUS = 0xC000_0008_u32.cast_signed();
    /// An invalid parameter.
    STATUS_INVALID_PARAMETER: NTSTATUS = 0xC000_000D_u32.cast_signed();
    /// The request is not valid for this device.
    STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = 0xC000_0010_u32.cast_signed();
    /// Not enough virtual memory.
    STATUS_NO_MEMORY: NTSTATUS = 0xC000_0017_u32.cast_signed();
    /// The handle does not grant the access asked for.
    STATUS_ACCESS_DENIED: NTSTATUS = 0xC000_0022_u32.cast_signed();
    /// The buffer is too small.
    STATUS_BUFFER_TOO_SMALL: NTSTATUS = 0xC000_0023_u32.cast_signed();
    /// The handle's object is not of the type asked for.
    STATUS_OBJECT_TYPE_MISMATCH: NTSTATUS = 0xC000_0024_u32.cast_signed();
    /// Not enough resources (pool) to complete the request.
    STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xC000_009A_u32.cast_signed();
    /// The device is not ready.
    STATUS_DEVICE_NOT_READY: NTSTATUS = 0xC000_00A3_u32.cast_signed();
    /// Not supported.
    STATUS_NOT_SUPPORTED: NTSTATUS = 0xC000_00BB_u32.cast_signed();
    /// The device is in the wrong state for the request.
    STATUS_INVALID_DEVICE_STATE: NTSTATUS = 0xC000_0184_u32.cast_signed();
    /// The buffer size is not valid.
    STATUS_INVALID_BUFFER_SIZE: NTSTATUS = 0xC000_0206_u32.cast_signed();
    /// Not found.
    STATUS_NOT_FOUND: NTSTATUS = 0xC000_0225_u32.cast_signed();
    /// No match (a data range intersection found nothing).
    STATUS_NO_MATCH: NTSTATUS = 0xC000_0272_u32.cast_signed();
    /// The device is busy (a warning, not a success: a PnP query it answers is vetoed).
    STATUS_DEVICE_BUSY: NTSTATUS = 0x8000_0011_u32.cast_signed();
}
