//! System pool allocation and debug output, the kernel services the library calls directly.
//!
//! C header: `wdm.h`. `ExAllocatePool2` exists from Windows 10 version 2004; a driver that
//! imported it would not load on older versions. As Microsoft documents for such drivers, the
//! routine is looked up with `MmGetSystemRoutineAddress` at PASSIVE_LEVEL and, where it is
//! missing, `ExAllocatePoolWithTag` is used instead and the memory zeroed, so both paths hand
//! out the same thing.

use core::{fmt, ptr::NonNull};

use ks_sys::{PFN_EX_ALLOCATE_POOL2, POOL_FLAG_NON_PAGED, POOL_FLAG_PAGED, UNICODE_STRING};

/// Paged or non-paged system pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoolKind {
    /// `POOL_FLAG_NON_PAGED` / `NonPagedPoolNx`: usable at DISPATCH_LEVEL.
    NonPaged,
    /// `POOL_FLAG_PAGED` / `PagedPool`: PASSIVE_LEVEL and APC_LEVEL only.
    Paged,
}

const fn utf16<const N: usize>(ascii: &[u8; N]) -> [u16; N] {
    let mut out = [0u16; N];
    let mut i = 0;
    while i < N {
        out[i] = ascii[i] as u16;
        i += 1;
    }
    out
}

static EX_ALLOCATE_POOL2: [u16; 15] = utf16(b"ExAllocatePool2");

/// How this driver allocates system pool.
///
/// # Invariants
///
/// `allocate2`, when set, is the address `MmGetSystemRoutineAddress` returned for
/// `ExAllocatePool2`, so it has that routine's prototype.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SystemPool {
    allocate2: PFN_EX_ALLOCATE_POOL2,
}

impl SystemPool {
    /// Looks up `ExAllocatePool2`. PASSIVE_LEVEL.
    pub(crate) fn resolve() -> Self {
        #[allow(clippy::cast_possible_truncation, reason = "30 bytes")]
        let length = (EX_ALLOCATE_POOL2.len() * 2) as u16;
        let mut name = UNICODE_STRING {
            Length: length,
            MaximumLength: length,
            Buffer: EX_ALLOCATE_POOL2.as_ptr().cast_mut(),
        };
        // SAFETY: `name` is a valid UNICODE_STRING over a static buffer of `Length` bytes; the
        // routine only reads it. The caller runs at PASSIVE_LEVEL (this function's contract).
        let address = unsafe { ks_sys::MmGetSystemRoutineAddress(&raw mut name) };
        let allocate2 = if address.is_null() {
            None
        } else {
            // SAFETY: the kernel returned the address of its `ExAllocatePool2` export, whose
            // prototype is `PFN_EX_ALLOCATE_POOL2`'s.
            // INVARIANT: set only from that lookup.
            Some(unsafe {
                core::mem::transmute::<
                    ks_sys::PVOID,
                    unsafe extern "system" fn(
                        ks_sys::POOL_FLAGS,
                        ks_sys::SIZE_T,
                        ks_sys::ULONG,
                    ) -> ks_sys::PVOID,
                >(address)
            })
        };
        Self { allocate2 }
    }

    /// Whether `ExAllocatePool2` is in use (rather than the `ExAllocatePoolWithTag` fallback).
    pub(crate) const fn has_allocate_pool2(self) -> bool {
        self.allocate2.is_some()
    }

    /// `bytes` zeroed bytes of pool memory with `tag`, or `None`. IRQL <= DISPATCH_LEVEL for
    /// non-paged pool, <= APC_LEVEL for paged pool. Allocations of `PAGE_SIZE` bytes or more are
    /// page aligned, smaller ones 16-byte aligned on 64-bit Windows.
    pub(crate) fn allocate(self, kind: PoolKind, bytes: usize, tag: u32) -> Option<NonNull<u8>> {
        if let Some(allocate2) = self.allocate2 {
            let flags = match kind {
                PoolKind::NonPaged => POOL_FLAG_NON_PAGED,
                PoolKind::Paged => POOL_FLAG_PAGED,
            };
            // SAFETY: `allocate2` is ExAllocatePool2 (type invariant); the arguments are plain
            // values.
            return NonNull::new(unsafe { allocate2(flags, bytes, tag) }.cast::<u8>());
        }
        let pool_type = match kind {
            PoolKind::NonPaged => ks_sys::NonPagedPoolNx,
            PoolKind::Paged => ks_sys::PagedPool,
        };
        // SAFETY: plain-value arguments; the caller's IRQL suits `kind`.
        let memory = NonNull::new(
            unsafe { ks_sys::ExAllocatePoolWithTag(pool_type, bytes, tag) }.cast::<u8>(),
        )?;
        // SAFETY: `memory` is a fresh allocation of `bytes` bytes.
        unsafe { memory.as_ptr().write_bytes(0, bytes) };
        Some(memory)
    }

    /// Frees what [`SystemPool::allocate`] returned (the same routine serves both allocation
    /// paths).
    ///
    /// # Safety
    ///
    /// `memory` came from `allocate` with `tag` and is freed once; IRQL as for `allocate`.
    pub(crate) unsafe fn free(memory: NonNull<u8>, tag: u32) {
        // SAFETY: the caller's contract.
        unsafe { ks_sys::ExFreePoolWithTag(memory.as_ptr().cast(), tag) };
    }
}

/// A NUL-terminated message of at most `N - 1` bytes; longer text is cut.
struct Message<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> fmt::Write for Message<N> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for &byte in text.as_bytes() {
            // Keep the last byte for the terminator.
            let Some(slot) = self.bytes.get_mut(self.len).filter(|_| self.len + 1 < N) else {
                break;
            };
            *slot = byte;
            self.len += 1;
        }
        Ok(())
    }
}

/// Sends `ks-allocator: <message>\n` to the kernel debugger (`DbgPrintEx` with the streaming
/// component id). IRQL <= DIRQL. At most 255 bytes are sent.
pub(crate) fn debug_print(level: u32, message: fmt::Arguments<'_>) {
    let mut text = Message::<256> { bytes: [0; 256], len: 0 };
    let _ = fmt::write(&mut text, format_args!("ks-allocator: {message}\n"));
    // SAFETY: "%s" consumes one pointer to a NUL-terminated string: `text.bytes` is zeroed past
    // `len` and `len <= 255`, so it is terminated; it lives until the call returns.
    unsafe {
        ks_sys::DbgPrintEx(
            ks_sys::DPFLTR_IHVSTREAMING_ID,
            level,
            c"%s".as_ptr(),
            text.bytes.as_ptr(),
        );
    }
}
