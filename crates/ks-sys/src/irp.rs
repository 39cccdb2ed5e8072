//! The few IRP fields a KS property handler needs, read and written through their x64 offsets.
//!
//! C header: `wdm.h` (`IoGetCurrentIrpStackLocation` is an inline function there, the fields are
//! plain structure members). The offsets are the x64 (and ARM64) layout of `IRP` and
//! `IO_STACK_LOCATION`, measured from compiled headers (`tests/abi.rs` keeps the numbers). Going
//! through offsets lets the same code serve wdk-sys's full `IRP` and the user-mode host's IRP,
//! which lays out these fields at the same places; nothing here depends on configuration.

// The fields are aligned in the IRP layout (each offset is a multiple of its field's size); the
// pointer casts only look misaligned because `IRP` is opaque in the host configuration.
#![expect(clippy::cast_ptr_alignment, reason = "see the comment above")]

use crate::{KPROCESSOR_MODE, PIRP, ULONG, ULONG_PTR};

/// Offset of `IRP.IoStatus.Status`.
pub const IRP_IO_STATUS_STATUS_OFFSET: usize = 48;
/// Offset of `IRP.RequestorMode`.
pub const IRP_REQUESTOR_MODE_OFFSET: usize = 64;
/// Offset of `IRP.IoStatus.Information`.
pub const IRP_IO_STATUS_INFORMATION_OFFSET: usize = 56;
/// Offset of `IRP.Tail.Overlay.CurrentStackLocation`.
pub const IRP_CURRENT_STACK_LOCATION_OFFSET: usize = 184;
/// `sizeof(IRP)` without extra stack locations.
pub const IRP_SIZE: usize = 208;
/// Offset of `IO_STACK_LOCATION.Parameters.DeviceIoControl.OutputBufferLength`.
pub const STACK_OUTPUT_BUFFER_LENGTH_OFFSET: usize = 8;
/// Offset of `IO_STACK_LOCATION.Parameters.DeviceIoControl.InputBufferLength`.
pub const STACK_INPUT_BUFFER_LENGTH_OFFSET: usize = 16;
/// Offset of `IO_STACK_LOCATION.FileObject`.
pub const STACK_FILE_OBJECT_OFFSET: usize = 48;
/// `sizeof(IO_STACK_LOCATION)`.
pub const IO_STACK_LOCATION_SIZE: usize = 72;

const _: () = assert!(size_of::<usize>() == 8, "the IRP offsets are those of 64-bit Windows");

/// `IoGetCurrentIrpStackLocation(Irp)`: the caller's stack location.
///
/// # Safety
///
/// `irp` points at a live IRP.
#[must_use]
pub unsafe fn IoGetCurrentIrpStackLocation(irp: PIRP) -> *mut u8 {
    let field = irp.wrapping_byte_add(IRP_CURRENT_STACK_LOCATION_OFFSET).cast::<*mut u8>();
    // SAFETY: `irp` is a live IRP (the caller's contract), whose CurrentStackLocation pointer is
    // at this offset, 8-byte aligned.
    unsafe { field.read() }
}

/// `IoGetCurrentIrpStackLocation(Irp)->Parameters.DeviceIoControl.OutputBufferLength`.
///
/// # Safety
///
/// `irp` points at a live device-control IRP.
#[must_use]
pub unsafe fn irp_output_buffer_length(irp: PIRP) -> ULONG {
    // SAFETY: the caller's contract.
    let stack = unsafe { IoGetCurrentIrpStackLocation(irp) };
    let field = stack.wrapping_add(STACK_OUTPUT_BUFFER_LENGTH_OFFSET).cast::<ULONG>();
    // SAFETY: a device-control stack location has its output length at this offset, 4-byte
    // aligned.
    unsafe { field.read() }
}

/// `IoGetCurrentIrpStackLocation(Irp)->Parameters.DeviceIoControl.InputBufferLength`.
///
/// # Safety
///
/// `irp` points at a live device-control IRP.
#[must_use]
pub unsafe fn irp_input_buffer_length(irp: PIRP) -> ULONG {
    // SAFETY: the caller's contract.
    let stack = unsafe { IoGetCurrentIrpStackLocation(irp) };
    let field = stack.wrapping_add(STACK_INPUT_BUFFER_LENGTH_OFFSET).cast::<ULONG>();
    // SAFETY: a device-control stack location has its input length at this offset, 4-byte
    // aligned.
    unsafe { field.read() }
}

/// `Irp->IoStatus.Information = information`.
///
/// # Safety
///
/// `irp` points at a live IRP the caller is processing.
pub unsafe fn irp_set_information(irp: PIRP, information: ULONG_PTR) {
    let field = irp.wrapping_byte_add(IRP_IO_STATUS_INFORMATION_OFFSET).cast::<ULONG_PTR>();
    // SAFETY: the caller's contract; Information is at this offset, 8-byte aligned.
    unsafe { field.write(information) };
}

/// `Irp->RequestorMode`: `UserMode` when the request came from a user-mode process, whose
/// handles and buffers must be checked as such.
///
/// # Safety
///
/// `irp` points at a live IRP.
#[must_use]
pub unsafe fn irp_requestor_mode(irp: PIRP) -> KPROCESSOR_MODE {
    let field = irp.wrapping_byte_add(IRP_REQUESTOR_MODE_OFFSET).cast::<KPROCESSOR_MODE>();
    // SAFETY: the caller's contract; RequestorMode is one byte at this offset.
    unsafe { field.read() }
}
