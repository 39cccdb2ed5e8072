//! The host's IRP: the x64 layout for the fields drivers read through `ks_sys::irp`, followed
//! by the host's own bookkeeping for the request.

use ks_sys::{
    KSPIN, PIRP,
    irp::{
        IO_STACK_LOCATION_SIZE, IRP_CURRENT_STACK_LOCATION_OFFSET,
        IRP_IO_STATUS_INFORMATION_OFFSET, IRP_IO_STATUS_STATUS_OFFSET, IRP_REQUESTOR_MODE_OFFSET,
        IRP_SIZE, STACK_INPUT_BUFFER_LENGTH_OFFSET, STACK_OUTPUT_BUFFER_LENGTH_OFFSET,
    },
};

/// `IRP` with the fields the library uses at their x64 offsets.
#[repr(C)]
pub(crate) struct IrpLayout {
    _head: [u8; 48],
    pub(crate) status: i32,
    _status_padding: u32,
    pub(crate) information: usize,
    pub(crate) requestor_mode: i8,
    _middle: [u8; 119],
    pub(crate) current_stack_location: *mut StackLayout,
    _tail: [u8; 16],
}

/// `IO_STACK_LOCATION` with the device-control parameters at their x64 offsets.
#[repr(C)]
pub(crate) struct StackLayout {
    _head: [u8; 8],
    pub(crate) output_buffer_length: u32,
    _output_padding: u32,
    pub(crate) input_buffer_length: u32,
    _rest: [u8; 52],
}

const _: () = {
    use core::mem::offset_of;
    assert!(size_of::<IrpLayout>() == IRP_SIZE);
    assert!(offset_of!(IrpLayout, status) == IRP_IO_STATUS_STATUS_OFFSET);
    assert!(offset_of!(IrpLayout, information) == IRP_IO_STATUS_INFORMATION_OFFSET);
    assert!(offset_of!(IrpLayout, requestor_mode) == IRP_REQUESTOR_MODE_OFFSET);
    assert!(offset_of!(IrpLayout, current_stack_location) == IRP_CURRENT_STACK_LOCATION_OFFSET);
    assert!(size_of::<StackLayout>() == IO_STACK_LOCATION_SIZE);
    assert!(offset_of!(StackLayout, output_buffer_length) == STACK_OUTPUT_BUFFER_LENGTH_OFFSET);
    assert!(offset_of!(StackLayout, input_buffer_length) == STACK_INPUT_BUFFER_LENGTH_OFFSET);
};

const MAGIC: u64 = u64::from_le_bytes(*b"KsHostIr");

/// What the request is.
pub(crate) enum Kind {
    /// An allocator create request with its parameter bytes and, once created, the object.
    CreateAllocator { parameters: Vec<u8>, object: Option<crate::ks::AllocatorObject> },
    /// A property request on a pin.
    Property { pin: *mut KSPIN, wow64: bool },
    /// A request whose buffers the host does not model: the create and close of an AVStream
    /// object, the data-intersection request (its buffers are passed to the handler directly).
    Bare,
}

/// A host IRP: the IRP layout first, so a `PIRP` to it is a pointer to the whole.
#[repr(C)]
pub(crate) struct HostIrp {
    irp: IrpLayout,
    stack: StackLayout,
    magic: u64,
    pub(crate) kind: Kind,
}

impl HostIrp {
    /// A boxed IRP whose current stack location is its own, with these buffer lengths, from a
    /// requestor in `mode` (`KernelMode` or `UserMode`).
    pub(crate) fn new(
        kind: Kind,
        mode: ks_sys::KPROCESSOR_MODE,
        input_length: u32,
        output_length: u32,
    ) -> Box<Self> {
        let mut irp = Box::new(Self {
            irp: IrpLayout {
                _head: [0; 48],
                status: 0,
                _status_padding: 0,
                information: 0,
                requestor_mode: mode,
                _middle: [0; 119],
                current_stack_location: std::ptr::null_mut(),
                _tail: [0; 16],
            },
            stack: StackLayout {
                _head: [0; 8],
                output_buffer_length: output_length,
                _output_padding: 0,
                input_buffer_length: input_length,
                _rest: [0; 52],
            },
            magic: MAGIC,
            kind,
        });
        irp.irp.current_stack_location = &raw mut irp.stack;
        irp
    }

    /// The `PIRP` drivers receive.
    pub(crate) fn as_irp(&mut self) -> PIRP {
        std::ptr::from_mut(self).cast()
    }

    /// `Irp->IoStatus.Information`.
    pub(crate) fn information(&self) -> usize {
        self.irp.information
    }

    /// The host IRP behind a `PIRP`, if it is one.
    ///
    /// # Safety
    ///
    /// `irp` is NULL or points at memory at least as large as a `HostIrp` (the host only hands
    /// out its own IRPs; a foreign pointer is caught by the magic in tests).
    pub(crate) unsafe fn from_irp<'a>(irp: PIRP) -> Option<&'a mut Self> {
        // SAFETY: the caller's contract.
        let host = unsafe { irp.cast::<Self>().as_mut() }?;
        (host.magic == MAGIC).then_some(host)
    }
}
