//! Allocator objects: the part of ks.sys that drives a `KSALLOCATOR_DISPATCH`-style allocator.
//!
//! [`AllocatorCreateRequest`] stands for the `IRP_MJ_CREATE` of an allocator (what
//! `KsCreateAllocator` sends to a pin): its parameters are the 24-byte `KSALLOCATOR_FRAMING`.
//! A driver hands its IRP to `KsCreateDefaultAllocatorEx` with its callbacks, exactly as it
//! would on Windows; the host validates the request, calls `InitializeAllocator` at
//! PASSIVE_LEVEL and, on success, attaches an [`AllocatorObject`] to the request. The object
//! offers what the allocator's clients use: the function-table `AllocateFrame`/`FreeFrame`
//! (with the `Frames` cap enforced by the wrapper, NULL beyond it), the status property, and
//! close, which calls `DeleteAllocator`.
//!
//! The default pool allocator of ks.sys (all callbacks NULL) is not modelled:
//! `KsCreateDefaultAllocatorEx` returns `STATUS_NOT_IMPLEMENTED` for it.
//!
//! [`DispatchAllocator`] drives a pin's `KSALLOCATOR_DISPATCH` directly, as AVStream does.

use std::ptr::NonNull;

use crate::irp::{HostIrp, Kind};

use ks_sys::{
    KSALLOCATOR_DISPATCH, KSALLOCATOR_FRAMING, KSSTREAMALLOCATOR_STATUS, NTSTATUS, PAGE_SIZE,
    PFNKSDEFAULTALLOCATE, PFNKSDEFAULTFREE, PFNKSDELETEALLOCATOR, PFNKSINITIALIZEALLOCATOR, PIRP,
    PVOID, STATUS_INVALID_PARAMETER, STATUS_NOT_IMPLEMENTED, STATUS_SUCCESS,
};

use crate::irql::PASSIVE_LEVEL;

/// An allocator create request (`IRP_MJ_CREATE` on a pin with the allocator object class).
pub struct AllocatorCreateRequest {
    irp: Box<HostIrp>,
}

impl AllocatorCreateRequest {
    /// A request carrying `framing` as its parameters, as `KsCreateAllocator` builds it.
    #[must_use]
    pub fn new(framing: &KSALLOCATOR_FRAMING) -> Self {
        let mut parameters = Vec::with_capacity(24);
        for word in [
            framing.OptionsFlags,
            framing.PoolType.cast_unsigned(),
            framing.Frames,
            framing.FrameSize,
            framing.FileAlignment,
            framing.Reserved,
        ] {
            parameters.extend_from_slice(&word.to_le_bytes());
        }
        Self::with_parameters(&parameters)
    }

    /// A request with arbitrary parameter bytes (to test malformed requests).
    #[must_use]
    pub fn with_parameters(parameters: &[u8]) -> Self {
        let kind = Kind::CreateAllocator { parameters: parameters.to_vec(), object: None };
        // Allocators are created by kernel-mode clients (AVStream, the KS proxy's kernel side).
        Self { irp: HostIrp::new(kind, ks_sys::KernelMode, 0, 0) }
    }

    /// The IRP to hand to the driver's create handler.
    pub fn irp(&mut self) -> PIRP {
        self.irp.as_irp()
    }

    /// The allocator object created for this request, if `KsCreateDefaultAllocatorEx` succeeded.
    pub fn allocator(&mut self) -> Option<&mut AllocatorObject> {
        match &mut self.irp.kind {
            Kind::CreateAllocator { object, .. } => object.as_mut(),
            Kind::Property { .. } | Kind::Bare => None,
        }
    }
}

/// An allocator object created by `KsCreateDefaultAllocatorEx`.
pub struct AllocatorObject {
    context: PVOID,
    allocate: PFNKSDEFAULTALLOCATE,
    free: PFNKSDEFAULTFREE,
    delete: PFNKSDELETEALLOCATOR,
    framing: KSALLOCATOR_FRAMING,
    allocated: u32,
    closed: bool,
}

impl AllocatorObject {
    /// The function-table `AllocateFrame`: a frame from `DefaultAllocate`, or `None` when the
    /// allocator returns NULL or `Frames` frames are already out (the wrapper's cap).
    pub fn allocate_frame(&mut self) -> Option<NonNull<u8>> {
        if self.closed || (self.framing.Frames != 0 && self.allocated >= self.framing.Frames) {
            return None;
        }
        let allocate = self.allocate?;
        // SAFETY: `allocate` and `context` come from a successful KsCreateDefaultAllocatorEx and
        // the object is not closed, so the context is live.
        let frame = NonNull::new(unsafe { allocate(self.context) }.cast::<u8>())?;
        self.allocated += 1;
        Some(frame)
    }

    /// The function-table `FreeFrame`: hands `frame` to `DefaultFree`.
    pub fn free_frame(&mut self, frame: NonNull<u8>) {
        if self.closed {
            crate::verifier::report(
                "FreeFrame",
                "frame freed after the allocator was closed".to_owned(),
            );
            return;
        }
        if let Some(free) = self.free {
            // SAFETY: as in `allocate_frame`; the callback validates the frame itself.
            unsafe { free(self.context, frame.as_ptr().cast()) };
        }
        self.allocated = self.allocated.saturating_sub(1);
    }

    /// `KSPROPERTY_STREAMALLOCATOR_STATUS`: the creation framing and the frames out.
    #[must_use]
    pub fn status(&self) -> KSSTREAMALLOCATOR_STATUS {
        KSSTREAMALLOCATOR_STATUS {
            Framing: self.framing,
            AllocatedFrames: self.allocated,
            Reserved: 0,
        }
    }

    /// `IRP_MJ_CLOSE` of the allocator: calls `DeleteAllocator` (PASSIVE_LEVEL). Later calls do
    /// nothing; no Allocate or Free reaches the callbacks after it.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        crate::verifier::require_irql_at_most("DeleteAllocator", PASSIVE_LEVEL);
        if let Some(delete) = self.delete {
            // SAFETY: the context came from InitializeAllocator and is deleted exactly once.
            unsafe { delete(self.context) };
        }
    }
}

impl Drop for AllocatorObject {
    fn drop(&mut self) {
        self.close();
    }
}

/// Reads the 24-byte framing from the request parameters and checks it as ks.sys does:
/// at least 24 bytes, `FrameSize` not 0, only `KSALLOCATOR_OPTIONF_VALID` option bits,
/// `FileAlignment` at most `PAGE_SIZE - 1`.
fn validate(parameters: &[u8]) -> Result<KSALLOCATOR_FRAMING, NTSTATUS> {
    let words: Vec<u32> = parameters
        .chunks_exact(4)
        .take(6)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let [options, pool_type, frames, frame_size, alignment, reserved] = words[..] else {
        return Err(STATUS_INVALID_PARAMETER);
    };
    let framing = KSALLOCATOR_FRAMING {
        OptionsFlags: options,
        PoolType: pool_type.cast_signed(),
        Frames: frames,
        FrameSize: frame_size,
        FileAlignment: alignment,
        Reserved: reserved,
    };
    if frame_size == 0
        || options & !ks_sys::KSALLOCATOR_OPTIONF_VALID != 0
        || alignment > PAGE_SIZE - 1
    {
        return Err(STATUS_INVALID_PARAMETER);
    }
    Ok(framing)
}

/// `KsCreateDefaultAllocatorEx`: creates an allocator object for an allocator create request,
/// with frames from the given callbacks. PASSIVE_LEVEL.
///
/// Validates the request, calls `InitializeAllocator(InitializeContext, &framing, &context)` and
/// returns its status; on success the object is attached to the request. Neither completes the
/// IRP.
///
/// # Safety
///
/// `Irp` comes from [`AllocatorCreateRequest::irp`] and the request outlives the call; the
/// callbacks follow their `KSALLOCATOR_DISPATCH` contracts.
// SAFETY: no other symbol of a host process is named `KsCreateDefaultAllocatorEx`; ks-sys declares
// it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsCreateDefaultAllocatorEx(
    Irp: PIRP,
    InitializeContext: PVOID,
    DefaultAllocate: PFNKSDEFAULTALLOCATE,
    DefaultFree: PFNKSDEFAULTFREE,
    InitializeAllocator: PFNKSINITIALIZEALLOCATOR,
    DeleteAllocator: PFNKSDELETEALLOCATOR,
) -> NTSTATUS {
    const ROUTINE: &str = "KsCreateDefaultAllocatorEx";
    crate::verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    // SAFETY: the caller passes the IRP of a live AllocatorCreateRequest (this function's
    // contract); the magic check catches a foreign pointer in tests.
    let Some(HostIrp { kind: Kind::CreateAllocator { parameters, object }, .. }) =
        (unsafe { HostIrp::from_irp(Irp) })
    else {
        crate::verifier::report(ROUTINE, "not an allocator create request IRP".to_owned());
        return STATUS_INVALID_PARAMETER;
    };
    let mut framing = match validate(parameters) {
        Ok(framing) => framing,
        Err(status) => return status,
    };
    let Some(initialize) = InitializeAllocator else {
        return STATUS_NOT_IMPLEMENTED;
    };
    if DefaultAllocate.is_none() {
        return STATUS_NOT_IMPLEMENTED;
    }
    let mut context: PVOID = std::ptr::null_mut();
    // SAFETY: `framing` is a live local copy; `context` is a live local out-parameter.
    let status = unsafe { initialize(InitializeContext, &raw mut framing, &raw mut context) };
    if status != STATUS_SUCCESS {
        return status;
    }
    *object = Some(AllocatorObject {
        context,
        allocate: DefaultAllocate,
        free: DefaultFree,
        delete: DeleteAllocator,
        framing,
        allocated: 0,
        closed: false,
    });
    STATUS_SUCCESS
}

/// A `KSALLOCATOR_DISPATCH` driven as AVStream drives a pin's allocator: `InitializeAllocator`
/// at PASSIVE_LEVEL with a copy of the create request's framing, `Allocate` and `Free` at
/// DISPATCH_LEVEL (as from a DPC or the pin's process callback), `DeleteAllocator` at
/// PASSIVE_LEVEL when the value is dropped (the allocator's file object closing).
///
/// Contract checks: `InitializeAllocator` must leave `*Context` untouched when it fails and
/// must not return a NULL context when it succeeds; each breach is recorded as a
/// [violation](crate::verifier).
pub struct DispatchAllocator {
    table: &'static KSALLOCATOR_DISPATCH,
    context: PVOID,
    /// Whether a frame handed out at DISPATCH_LEVEL has been checked for paged pool: an
    /// allocator's frames come from one kind of memory, so the first one tells, and later calls
    /// pay one atomic load instead of the pool's lock.
    dispatch_checked: std::sync::atomic::AtomicBool,
}

// SAFETY: the KSALLOCATOR_DISPATCH contract makes Allocate and Free callable from any CPU,
// concurrently; the context is only passed back to the table's callbacks.
unsafe impl Send for DispatchAllocator {}
// SAFETY: as above.
unsafe impl Sync for DispatchAllocator {}

const CONTEXT_SENTINEL: usize = 0x5EED_C0DE;

impl DispatchAllocator {
    /// `InitializeAllocator(pin, &copy_of_framing, &context)` at PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// The status `InitializeAllocator` returned.
    ///
    /// # Safety
    ///
    /// `pin` is NULL or a pin the callbacks may read (its descriptor and framing included), live
    /// until the allocator is dropped; the table's callbacks follow their contracts.
    pub unsafe fn initialize(
        table: &'static KSALLOCATOR_DISPATCH,
        pin: *mut ks_sys::KSPIN,
        framing: &KSALLOCATOR_FRAMING,
    ) -> Result<Self, NTSTATUS> {
        let Some(initialize) = table.InitializeAllocator else {
            crate::verifier::report("InitializeAllocator", "the table has none".to_owned());
            return Err(STATUS_NOT_IMPLEMENTED);
        };
        crate::verifier::require_irql_at_most("InitializeAllocator", PASSIVE_LEVEL);
        let mut copy = *framing;
        let mut context = std::ptr::without_provenance_mut(CONTEXT_SENTINEL);
        // SAFETY: what ks.sys passes: the pin, a framing it owns for the call, an out-pointer.
        let status = unsafe { initialize(pin, &raw mut copy, &raw mut context) };
        if status != STATUS_SUCCESS {
            if context.addr() != CONTEXT_SENTINEL {
                crate::verifier::report(
                    "InitializeAllocator",
                    format!("failed with {status:#010X} but wrote *Context"),
                );
            }
            return Err(status);
        }
        if context.is_null() || context.addr() == CONTEXT_SENTINEL {
            crate::verifier::report(
                "InitializeAllocator",
                "succeeded without storing a context".to_owned(),
            );
        }
        Ok(Self { table, context, dispatch_checked: std::sync::atomic::AtomicBool::new(false) })
    }

    /// The context `InitializeAllocator` stored.
    #[must_use]
    pub fn context(&self) -> PVOID {
        self.context
    }

    /// `Allocate(context)` at DISPATCH_LEVEL (or at the caller's IRQL if already higher). A
    /// frame in paged pool asked for at DISPATCH_LEVEL is a violation: it is touched there (the
    /// first such frame of the allocator is checked).
    #[must_use]
    #[inline]
    pub fn allocate(&self) -> Option<NonNull<u8>> {
        let allocate = self.table.Allocate?;
        let caller = crate::irql::current();
        let frame = at_least_dispatch(|| {
            // SAFETY: a live context from InitializeAllocator, not yet deleted.
            NonNull::new(unsafe { allocate(self.context) }.cast::<u8>())
        })?;
        // A frame asked for at DISPATCH_LEVEL (from a DPC, or a pin that processes there) is
        // touched at DISPATCH_LEVEL: paged pool would page-fault there (IRQL_NOT_LESS_OR_EQUAL on
        // Windows).
        if caller >= crate::irql::DISPATCH_LEVEL
            && !self.dispatch_checked.swap(true, std::sync::atomic::Ordering::Relaxed)
            && crate::pool::kind_containing(frame.as_ptr() as usize)
                == Some(crate::pool::PoolKind::Paged)
        {
            crate::verifier::report(
                "Allocate",
                format!("returned {frame:p}, paged pool, at DISPATCH_LEVEL"),
            );
        }
        Some(frame)
    }

    /// `Free(context, frame)` at DISPATCH_LEVEL (or at the caller's IRQL if already higher).
    #[inline]
    pub fn free(&self, frame: NonNull<u8>) {
        self.free_raw(frame.as_ptr().cast());
    }

    /// `Free(context, pointer)` with any pointer, NULL included: what a buggy client may pass.
    #[expect(
        clippy::not_unsafe_ptr_arg_deref,
        reason = "the pointer only goes to the allocator's Free, whose contract is to validate it"
    )]
    #[inline]
    pub fn free_raw(&self, pointer: PVOID) {
        if let Some(free) = self.table.Free {
            at_least_dispatch(|| {
                // SAFETY: a live context; the callback must cope with any pointer.
                unsafe { free(self.context, pointer) };
            });
        }
    }
}

impl Drop for DispatchAllocator {
    /// `DeleteAllocator(context)` at PASSIVE_LEVEL.
    fn drop(&mut self) {
        crate::verifier::require_irql_at_most("DeleteAllocator", PASSIVE_LEVEL);
        if let Some(delete) = self.table.DeleteAllocator {
            // SAFETY: the context came from InitializeAllocator and is deleted exactly once.
            unsafe { delete(self.context) };
        }
    }
}

#[inline]
fn at_least_dispatch<R>(f: impl FnOnce() -> R) -> R {
    if crate::irql::current() >= crate::irql::DISPATCH_LEVEL {
        f()
    } else {
        crate::irql::at_dispatch(f)
    }
}
