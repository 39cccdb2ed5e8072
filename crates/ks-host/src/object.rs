//! The object manager part a driver needs to resolve handles: a handle table of typed objects with
//! reference counts, `ObReferenceObjectByHandle`, `ObfDereferenceObject` and `IoFileObjectType`.
//!
//! A test opens objects with [`open`] (a file object, as a client's allocator handle is, or an
//! object of another type) and gets back the handle value a client would pass in a property
//! buffer, and closes handles with [`close`]. Every object is counted: one reference per open
//! handle and one per reference a driver took with `ObReferenceObjectByHandle` and has not yet
//! released. An object is destroyed when its count reaches zero.
//!
//! Handles follow the Windows rules the routines document:
//!
//! - user handles are small multiples of 4; kernel handles have the top bit set (they are
//!   negative as `LONG_PTR`), and a `UserMode` reference of a kernel handle fails with
//!   `STATUS_INVALID_HANDLE`, as does an unknown or closed handle;
//! - `ObjectType` not NULL and not the object's type: `STATUS_OBJECT_TYPE_MISMATCH`;
//! - `UserMode` and access beyond what the handle grants: `STATUS_ACCESS_DENIED`;
//! - IRQL: `ObReferenceObjectByHandle` at PASSIVE_LEVEL, `ObfDereferenceObject` at most
//!   DISPATCH_LEVEL; dereferencing an object nobody references is a violation.
//!
//! References a driver still holds when the session ends are reported as leaks
//! ([`Session`](crate::Session)). Every handle value `ObReferenceObjectByHandle` received is
//! recorded ([`handles_referenced`]) so a test can check how a driver widened a 32-bit handle.

use std::{collections::HashMap, sync::Mutex};

use ks_sys::{
    ACCESS_MASK, HANDLE, KPROCESSOR_MODE, KernelMode, LONG_PTR, NTSTATUS, OBJECT_TYPE,
    POBJECT_HANDLE_INFORMATION, POBJECT_TYPE, PVOID, STATUS_ACCESS_DENIED, STATUS_INVALID_HANDLE,
    STATUS_INVALID_PARAMETER, STATUS_OBJECT_TYPE_MISMATCH, STATUS_SUCCESS, UserMode,
};

use crate::irql::PASSIVE_LEVEL;

/// The kinds of object the host's handle table holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// A file object (`*IoFileObjectType`): what an allocator, pin or filter handle refers to.
    File,
    /// An event (`*ExEventObjectType`): a handle of the wrong type for most properties.
    Event,
}

/// Who owns a handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandleOwner {
    /// A user-mode process (the client of a property request).
    User,
    /// The kernel (`OBJ_KERNEL_HANDLE`): only `KernelMode` callers may use it.
    Kernel,
}

/// A type object. Its address is what `POBJECT_TYPE` points at.
#[repr(C)]
pub struct TypeObject {
    _name: [u8; 8],
}

static FILE_TYPE_OBJECT: TypeObject = TypeObject { _name: *b"File\0\0\0\0" };
static EVENT_TYPE_OBJECT: TypeObject = TypeObject { _name: *b"Event\0\0\0" };

/// A `POBJECT_TYPE` variable, as the kernel exports them (the routines take `*IoFileObjectType`).
#[repr(transparent)]
pub struct ObjectTypeVariable(POBJECT_TYPE);

// SAFETY: the variable is never written after initialisation and points at an immutable static.
unsafe impl Sync for ObjectTypeVariable {}

static FILE_TYPE: ObjectTypeVariable =
    ObjectTypeVariable((&raw const FILE_TYPE_OBJECT).cast::<OBJECT_TYPE>().cast_mut());
static EVENT_TYPE: ObjectTypeVariable =
    ObjectTypeVariable((&raw const EVENT_TYPE_OBJECT).cast::<OBJECT_TYPE>().cast_mut());

/// The variable `IoFileObjectType` points at.
#[repr(transparent)]
pub struct ObjectTypePointer(*const ObjectTypeVariable);

// SAFETY: as for `ObjectTypeVariable`: immutable, pointing at an immutable static.
unsafe impl Sync for ObjectTypePointer {}

/// `IoFileObjectType`: a pointer to the variable holding the file object type.
// SAFETY: no other symbol of a host process is named `IoFileObjectType`; ks-sys declares it as a
// `*const POBJECT_TYPE`, which is this static's layout.
#[unsafe(no_mangle)]
pub static IoFileObjectType: ObjectTypePointer = ObjectTypePointer(&raw const FILE_TYPE);

fn type_of(kind: ObjectKind) -> POBJECT_TYPE {
    match kind {
        ObjectKind::File => FILE_TYPE.0,
        ObjectKind::Event => EVENT_TYPE.0,
    }
}

/// One object: its body (what the object pointer addresses), type and reference counts.
struct Object {
    /// The body, the size of an x64 `FILE_OBJECT`; only its address is used.
    _body: Box<[u64; 27]>,
    kind: ObjectKind,
    handles: usize,
    driver_references: usize,
}

struct Entry {
    object: usize,
    owner: HandleOwner,
    granted: ACCESS_MASK,
}

#[derive(Default)]
struct Table {
    next: u64,
    handles: HashMap<u64, Entry>,
    objects: HashMap<usize, Object>,
    referenced: Vec<u64>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

fn with_table<R>(f: impl FnOnce(&mut Table) -> R) -> R {
    f(crate::lock(&TABLE).get_or_insert_with(Table::default))
}

/// The top bit of kernel handles (`KERNEL_HANDLE_MASK` on 64-bit Windows, sign-extended).
const KERNEL_HANDLE_BITS: u64 = 0xFFFF_FFFF_8000_0000;

/// Opens a new object of `kind` with one handle owned by `owner` that grants `granted` access,
/// and returns the handle value (what a client passes in a property buffer).
#[must_use]
pub fn open(kind: ObjectKind, owner: HandleOwner, granted: ACCESS_MASK) -> u64 {
    with_table(|table| {
        table.next += 4;
        let handle = match owner {
            HandleOwner::User => table.next,
            HandleOwner::Kernel => KERNEL_HANDLE_BITS | table.next,
        };
        let body = Box::new([0u64; 27]);
        let object = std::ptr::from_ref(&*body) as usize;
        table
            .objects
            .insert(object, Object { _body: body, kind, handles: 1, driver_references: 0 });
        table.handles.insert(handle, Entry { object, owner, granted });
        handle
    })
}

/// Opens a file object with a user handle that grants every access: a client's allocator handle.
#[must_use]
pub fn open_file() -> u64 {
    open(ObjectKind::File, HandleOwner::User, u32::MAX)
}

/// Closes a handle (`ZwClose` by its owner).
///
/// # Panics
///
/// If the handle is not open: a test that closes a handle twice is wrong.
pub fn close(handle: u64) {
    with_table(|table| {
        let Some(entry) = table.handles.remove(&handle) else {
            panic!("handle {handle:#x} is not open");
        };
        if let Some(object) = table.objects.get_mut(&entry.object) {
            object.handles -= 1;
            if object.handles == 0 && object.driver_references == 0 {
                table.objects.remove(&entry.object);
            }
        }
    });
}

/// The object a handle refers to (its body's address), if the handle is open.
#[must_use]
pub fn object_of(handle: u64) -> Option<PVOID> {
    with_table(|table| table.handles.get(&handle).map(|entry| entry.object as PVOID))
}

/// References drivers hold on `object` (taken with `ObReferenceObjectByHandle`, not yet
/// released); `None` if the object no longer exists.
#[must_use]
pub fn driver_references(object: PVOID) -> Option<usize> {
    with_table(|table| table.objects.get(&(object as usize)).map(|o| o.driver_references))
}

/// Every handle value `ObReferenceObjectByHandle` received so far, in order.
#[must_use]
pub fn handles_referenced() -> Vec<u64> {
    with_table(|table| table.referenced.clone())
}

/// Objects on which drivers still hold references: `(kind, references)` for each.
#[must_use]
pub fn driver_held() -> Vec<(ObjectKind, usize)> {
    with_table(|table| {
        table
            .objects
            .values()
            .filter(|o| o.driver_references > 0)
            .map(|o| (o.kind, o.driver_references))
            .collect()
    })
}

/// Empties the table (session start and end) and returns what drivers still held.
pub(crate) fn reset() -> Vec<(ObjectKind, usize)> {
    let held = driver_held();
    *crate::lock(&TABLE) = None;
    held
}

/// `ObReferenceObjectByHandle`: the object a handle refers to, with a reference taken for the
/// caller. PASSIVE_LEVEL.
///
/// # Safety
///
/// `Object` is writable; `ObjectType` is NULL or a type variable's value (`*IoFileObjectType`).
// SAFETY: no other symbol of a host process is named `ObReferenceObjectByHandle`; ks-sys declares
// it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn ObReferenceObjectByHandle(
    Handle: HANDLE,
    DesiredAccess: ACCESS_MASK,
    ObjectType: POBJECT_TYPE,
    AccessMode: KPROCESSOR_MODE,
    Object: *mut PVOID,
    HandleInformation: POBJECT_HANDLE_INFORMATION,
) -> NTSTATUS {
    const ROUTINE: &str = "ObReferenceObjectByHandle";
    crate::verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    if Object.is_null() || (AccessMode != KernelMode && AccessMode != UserMode) {
        crate::verifier::report(ROUTINE, format!("Object {Object:p}, AccessMode {AccessMode}"));
        return STATUS_INVALID_PARAMETER;
    }
    if !HandleInformation.is_null() {
        crate::verifier::report(ROUTINE, "drivers pass NULL for HandleInformation".to_owned());
    }
    let handle = Handle as u64;
    let result = with_table(|table| {
        table.referenced.push(handle);
        let entry = table.handles.get(&handle).ok_or(STATUS_INVALID_HANDLE)?;
        if AccessMode == UserMode && entry.owner == HandleOwner::Kernel {
            return Err(STATUS_INVALID_HANDLE);
        }
        let address = entry.object;
        let granted = entry.granted;
        let object = table.objects.get_mut(&address).ok_or(STATUS_INVALID_HANDLE)?;
        if !ObjectType.is_null() && ObjectType != type_of(object.kind) {
            return Err(STATUS_OBJECT_TYPE_MISMATCH);
        }
        if AccessMode == UserMode && DesiredAccess & !granted != 0 {
            return Err(STATUS_ACCESS_DENIED);
        }
        object.driver_references += 1;
        Ok(address)
    });
    match result {
        Ok(address) => {
            // SAFETY: `Object` is writable (this function's contract), checked non-NULL above.
            unsafe { Object.write(address as PVOID) };
            STATUS_SUCCESS
        }
        Err(status) => status,
    }
}

/// `ObfDereferenceObject`: releases a reference a driver took; returns the references left.
/// IRQL <= DISPATCH_LEVEL.
// SAFETY: no other symbol of a host process is named `ObfDereferenceObject`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn ObfDereferenceObject(Object: PVOID) -> LONG_PTR {
    const ROUTINE: &str = "ObfDereferenceObject";
    crate::verifier::require_irql_at_most(ROUTINE, crate::irql::DISPATCH_LEVEL);
    let left = with_table(|table| {
        let object = table.objects.get_mut(&(Object as usize))?;
        if object.driver_references == 0 {
            return None;
        }
        object.driver_references -= 1;
        let left = object.handles + object.driver_references;
        if left == 0 {
            table.objects.remove(&(Object as usize));
        }
        Some(left)
    });
    if let Some(left) = left {
        LONG_PTR::try_from(left).unwrap_or(LONG_PTR::MAX)
    } else {
        crate::verifier::report(
            ROUTINE,
            format!("{Object:p} is not an object this driver holds a reference on"),
        );
        0
    }
}
