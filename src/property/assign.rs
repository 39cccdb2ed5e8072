//! The allocator assigned to a pin with `KSPROPERTY_STREAM_ALLOCATOR`, held by reference.

use core::{
    ffi::c_void,
    ptr::NonNull,
    sync::atomic::{AtomicPtr, Ordering},
};

use ks_sys::{KPROCESSOR_MODE, KSSTATE, KernelMode, UserMode};

use super::Reply;
use crate::Error;

/// The allocator assigned to a pin with `KSPROPERTY_STREAM_ALLOCATOR` (set): the allocator's
/// file object, referenced, or none. A driver keeps one per pin (in its pin context, see
/// [`AllocatorAssignment`](super::AllocatorAssignment)).
///
/// The handle a client passes is resolved when the property is set, in the client's context and
/// with its requestor mode, so a user-mode caller can only name objects in its own handle table,
/// and only file objects are accepted. The reference is released when another allocator (or
/// NULL) is assigned, by [`release`](Self::release) (call it from the pin's `Close` dispatch),
/// or when the value is dropped.
#[derive(Debug, Default)]
pub struct AssignedAllocator {
    file_object: AtomicPtr<c_void>,
}

impl AssignedAllocator {
    /// No allocator assigned.
    #[must_use]
    pub const fn new() -> Self {
        Self { file_object: AtomicPtr::new(core::ptr::null_mut()) }
    }

    /// The assigned allocator's file object (`PFILE_OBJECT`), referenced by this value, or
    /// `None`. The pointer stays valid until the assignment changes, which happens only while the
    /// pin is stopped, or until [`release`](Self::release).
    ///
    /// # IRQL
    ///
    /// Any.
    #[must_use]
    pub fn file_object(&self) -> Option<NonNull<c_void>> {
        // ORDERING: Acquire pairs with the Release swap in `replace`.
        NonNull::new(self.file_object.load(Ordering::Acquire))
    }

    /// `KSPROPERTY_STREAM_ALLOCATOR` (set) for a handle already read from the buffer
    /// ([`read_handle`](super::read_handle)): only while the pin is stopped
    /// (`STATUS_INVALID_DEVICE_STATE` otherwise, nothing changed); NULL releases the current
    /// allocator; any other handle is resolved with `ObReferenceObjectByHandle` as a file object
    /// with the requestor's mode, and its status returned if that fails (`STATUS_INVALID_HANDLE`,
    /// `STATUS_OBJECT_TYPE_MISMATCH`, ...), nothing changed. On success the previous allocator's
    /// reference is released.
    ///
    /// `mode` is the request's `RequestorMode`; anything but `KernelMode` is treated as
    /// `UserMode`. `state` must be the pin's state read under the lock its state changes take
    /// (the filter control mutex for an AVStream pin, the filter's own lock otherwise), held
    /// until this returns. The object is referenced as a file object; whether it is an allocator
    /// is for its user to find out (the [`property`](super) module documentation says how).
    ///
    /// # IRQL
    ///
    /// PASSIVE_LEVEL, in the context of the process that sent the request (where its handle
    /// means something): what a property handler of an `IOCTL_KS_PROPERTY` runs in.
    #[must_use]
    pub fn set(&self, handle: u64, mode: KPROCESSOR_MODE, state: KSSTATE) -> Reply {
        if state != ks_sys::KSSTATE_STOP {
            return Reply::error(Error::INVALID_DEVICE_STATE, 0);
        }
        if handle == 0 {
            self.release();
            return Reply::success(0);
        }
        let mode = if mode == KernelMode { KernelMode } else { UserMode };
        let Ok(handle) = usize::try_from(handle) else {
            return Reply::error(Error::INVALID_PARAMETER, 0);
        };
        // SAFETY: `IoFileObjectType` is a data export of ntoskrnl, set before drivers load.
        let file_type_variable = unsafe { ks_sys::IoFileObjectType };
        // SAFETY: it points at the kernel's `POBJECT_TYPE` variable for file objects.
        let file_type = unsafe { file_type_variable.read() };
        let mut object: ks_sys::PVOID = core::ptr::null_mut();
        // SAFETY: `object` is a writable local; a handle value of any kind is validated by the
        // routine itself in the current (the requestor's) context; no access is asked for beyond
        // the object's type (see the module documentation of `property`).
        let status = unsafe {
            ks_sys::ObReferenceObjectByHandle(
                core::ptr::without_provenance_mut(handle),
                0,
                file_type,
                mode,
                &raw mut object,
                core::ptr::null_mut(),
            )
        };
        if let Some(error) = Error::from_status(status) {
            return Reply::error(error, 0);
        }
        self.replace(object);
        Reply::success(0)
    }

    /// Releases the assigned allocator's reference, if any.
    ///
    /// # IRQL
    ///
    /// <= DISPATCH_LEVEL.
    pub fn release(&self) {
        self.replace(core::ptr::null_mut());
    }

    /// Stores `object` (already referenced) and releases the one it replaces.
    fn replace(&self, object: *mut c_void) {
        // ORDERING: AcqRel: Release publishes the new object to `file_object`, Acquire sees the
        // old one's publication before releasing it.
        let previous = self.file_object.swap(object, Ordering::AcqRel);
        if !previous.is_null() {
            // SAFETY: `previous` was referenced by `set` and its reference is owned by this
            // value; the swap took it out, so it is released exactly once.
            unsafe { ks_sys::ObfDereferenceObject(previous) };
        }
    }
}

impl Drop for AssignedAllocator {
    /// Releases the assigned allocator's reference. IRQL <= DISPATCH_LEVEL.
    fn drop(&mut self) {
        self.release();
    }
}
