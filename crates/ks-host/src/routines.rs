//! `MmGetSystemRoutineAddress` over the routines the host defines, and a switch that makes a
//! routine look absent, to exercise a driver's fallback for older Windows versions.

use std::{collections::BTreeSet, sync::Mutex};

use ks_sys::{PUNICODE_STRING, PVOID};

use crate::irql::PASSIVE_LEVEL;

static HIDDEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Makes `MmGetSystemRoutineAddress` return NULL for `name`, as a kernel that lacks the routine
/// would.
pub fn hide(name: &str) {
    crate::lock(&HIDDEN).insert(name.to_owned());
}

/// Undoes every [`hide`].
pub fn unhide_all() {
    crate::lock(&HIDDEN).clear();
}

fn address_of(name: &str) -> PVOID {
    let address: *const () = match name {
        "ExAllocatePool2" => crate::pool::ExAllocatePool2 as *const (),
        "ExAllocatePoolWithTag" => crate::pool::ExAllocatePoolWithTag as *const (),
        "ExFreePoolWithTag" => crate::pool::ExFreePoolWithTag as *const (),
        _ => std::ptr::null(),
    };
    address.cast_mut().cast()
}

/// `MmGetSystemRoutineAddress`: the address of a routine the host defines, or NULL.
/// PASSIVE_LEVEL.
///
/// # Safety
///
/// `SystemRoutineName` is NULL or points at a valid `UNICODE_STRING` whose `Buffer` holds
/// `Length` readable bytes.
// SAFETY: no other symbol of a host process is named `MmGetSystemRoutineAddress`; ks-sys declares
// it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn MmGetSystemRoutineAddress(
    SystemRoutineName: PUNICODE_STRING,
) -> PVOID {
    const ROUTINE: &str = "MmGetSystemRoutineAddress";
    crate::verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    if SystemRoutineName.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the caller passes a valid UNICODE_STRING (this function's contract).
    let name = unsafe { &*SystemRoutineName };
    if name.Buffer.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: `Buffer` holds `Length` bytes, i.e. `Length / 2` UTF-16 code units.
    let units = unsafe { std::slice::from_raw_parts(name.Buffer, usize::from(name.Length) / 2) };
    let name = String::from_utf16_lossy(units);
    if crate::lock(&HIDDEN).contains(&name) {
        return std::ptr::null_mut();
    }
    address_of(&name)
}
