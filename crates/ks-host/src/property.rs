//! Property requests as `KsPropertyHandler` dispatches them, and the routines property handlers
//! call: `KsGetPinFromIrp` and `IoIs32bitProcess`.
//!
//! [`request`] takes what a user-mode `IOCTL_KS_PROPERTY` carries (the `KSPROPERTY` request and
//! the value buffer) and a pin, finds the set and item, checks `MinProperty` and `MinData` from
//! the item, builds an IRP with the buffer lengths and calls the item's handler through its C
//! function pointer, then returns the status and `Information`, so handlers are tested the way
//! requests reach them on Windows.
//!
//! Statuses the dispatcher itself returns: `STATUS_INVALID_PARAMETER` for a request shorter than
//! a `KSPROPERTY` or than the item's `MinProperty`; `STATUS_NOT_FOUND` for an unknown set or
//! property, or a get or set the item has no handler for; `STATUS_BUFFER_TOO_SMALL` with
//! `Information = MinData` for a value buffer shorter than the item's `MinData`;
//! `STATUS_NOT_SUPPORTED` for the other request types (basic support, relations,
//! serialisation), which the host does not model.

use ks_sys::{
    BOOLEAN, KSIDENTIFIER, KSPIN, KSPROPERTY_SET, KSPROPERTY_TYPE_GET, KSPROPERTY_TYPE_SET,
    NTSTATUS, PIRP, PKSPIN, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_PARAMETER, STATUS_NOT_FOUND,
    STATUS_NOT_SUPPORTED,
};

use crate::irql::PASSIVE_LEVEL;

use crate::irp::{HostIrp, Kind};

/// What a property request returned: the status and `Irp->IoStatus.Information`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: NTSTATUS,
    /// Bytes returned, or the size needed.
    pub information: usize,
}

/// Who sends the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Client {
    /// A 64-bit user-mode process (`RequestorMode` is `UserMode`).
    #[default]
    Native,
    /// A 32-bit user-mode process under WOW64 (`IoIs32bitProcess` is true).
    Wow64,
    /// Kernel-mode code, such as another driver (`RequestorMode` is `KernelMode`).
    Kernel,
}

fn reply(status: NTSTATUS, information: usize) -> Reply {
    Reply { status, information }
}

/// Dispatches one property request on `pin` through `sets`, as `KsPropertyHandler` does for an
/// `IOCTL_KS_PROPERTY`. PASSIVE_LEVEL.
///
/// # Safety
///
/// The sets' item arrays and handlers are valid; `pin` is NULL or a live pin the handlers may
/// read (its descriptor and context included).
pub unsafe fn request(
    pin: *mut KSPIN,
    sets: &[KSPROPERTY_SET],
    request: &[u8],
    value: &mut [u8],
    client: Client,
) -> Reply {
    crate::verifier::require_irql_at_most("KsPropertyHandler", PASSIVE_LEVEL);
    let Some(header) = request.first_chunk::<24>() else {
        return reply(STATUS_INVALID_PARAMETER, 0);
    };
    let set_guid = &header[..16];
    let id = u32::from_le_bytes([header[16], header[17], header[18], header[19]]);
    let flags = u32::from_le_bytes([header[20], header[21], header[22], header[23]]);
    let Some(set) = sets.iter().find(|set| {
        // SAFETY: the sets' GUID pointers are valid (this function's contract).
        let guid = unsafe { set.Set.as_ref() };
        guid.is_some_and(|g| guid_bytes(g) == set_guid)
    }) else {
        return reply(STATUS_NOT_FOUND, 0);
    };
    let items = if set.PropertyItem.is_null() {
        &[][..]
    } else {
        // SAFETY: the set's item array holds `PropertiesCount` items (this function's contract).
        unsafe { std::slice::from_raw_parts(set.PropertyItem, set.PropertiesCount as usize) }
    };
    let Some(item) = items.iter().find(|item| item.PropertyId == id) else {
        return reply(STATUS_NOT_FOUND, 0);
    };
    let handler = match flags {
        KSPROPERTY_TYPE_GET => item.GetPropertyHandler,
        KSPROPERTY_TYPE_SET => item.SetPropertyHandler,
        _ => return reply(STATUS_NOT_SUPPORTED, 0),
    };
    let Some(handler) = handler else {
        return reply(STATUS_NOT_FOUND, 0);
    };
    if request.len() < item.MinProperty as usize {
        return reply(STATUS_INVALID_PARAMETER, item.MinProperty as usize);
    }
    if value.len() < item.MinData as usize {
        return reply(STATUS_BUFFER_TOO_SMALL, item.MinData as usize);
    }
    let (Ok(input_length), Ok(output_length)) =
        (u32::try_from(request.len()), u32::try_from(value.len()))
    else {
        return reply(STATUS_INVALID_PARAMETER, 0);
    };
    let mode = if client == Client::Kernel { ks_sys::KernelMode } else { ks_sys::UserMode };
    let mut irp = HostIrp::new(
        Kind::Property { pin, wow64: client == Client::Wow64 },
        mode,
        input_length,
        output_length,
    );
    // The request as KS passes it: an aligned copy of the KSPROPERTY.
    let mut identifier = KSIDENTIFIER { Set: ks_sys::GUID_NULL, Id: id, Flags: flags };
    // SAFETY: `header` holds the 16 GUID bytes in memory order, which is GUID's layout.
    identifier.Set = unsafe { std::ptr::read_unaligned(header.as_ptr().cast()) };
    let data = if value.is_empty() { std::ptr::null_mut() } else { value.as_mut_ptr().cast() };
    // SAFETY: the handler's contract: a live IRP with these lengths, the request, the value
    // buffer of `output_length` bytes.
    let status = unsafe { handler(irp.as_irp(), &raw mut identifier, data) };
    reply(status, irp.information())
}

/// The bytes of a `KSPROPERTY` request as a client sends them: the set's GUID, the property id
/// and the request type (`KSPROPERTY_TYPE_GET`, `..._SET`).
#[must_use]
pub fn request_bytes(set: &ks_sys::GUID, id: u32, flags: u32) -> Vec<u8> {
    let mut bytes = guid_bytes(set).to_vec();
    bytes.extend_from_slice(&id.to_le_bytes());
    bytes.extend_from_slice(&flags.to_le_bytes());
    bytes
}

fn guid_bytes(guid: &ks_sys::GUID) -> [u8; 16] {
    let mut out = [0; 16];
    out[..4].copy_from_slice(&guid.Data1.to_le_bytes());
    out[4..6].copy_from_slice(&guid.Data2.to_le_bytes());
    out[6..8].copy_from_slice(&guid.Data3.to_le_bytes());
    out[8..].copy_from_slice(&guid.Data4);
    out
}

/// `KsGetPinFromIrp`: the pin a host property IRP addresses, or NULL.
///
/// # Safety
///
/// `Irp` is an IRP the host handed out.
// SAFETY: no other symbol of a host process is named `KsGetPinFromIrp`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsGetPinFromIrp(Irp: PIRP) -> PKSPIN {
    // SAFETY: the caller's contract.
    let host = unsafe { HostIrp::from_irp(Irp) };
    if let Some(HostIrp { kind: Kind::Property { pin, .. }, .. }) = host {
        return *pin;
    }
    crate::verifier::report("KsGetPinFromIrp", "not a property IRP on a pin".to_owned());
    std::ptr::null_mut()
}

/// `IoIs32bitProcess`: whether the request comes from a 32-bit process.
///
/// # Safety
///
/// `Irp` is an IRP the host handed out.
// SAFETY: no other symbol of a host process is named `IoIs32bitProcess`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoIs32bitProcess(Irp: PIRP) -> BOOLEAN {
    // SAFETY: the caller's contract.
    match unsafe { HostIrp::from_irp(Irp) } {
        Some(HostIrp { kind: Kind::Property { wow64: true, .. }, .. }) => 1,
        _ => 0,
    }
}
