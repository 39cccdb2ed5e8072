//! Property requests through ks-host's `KsPropertyHandler` stand-in to the library's allocator
//! property sets, with arbitrary set, id, flags, request and value lengths and contents, from
//! native, 32-bit and kernel clients, for pins declaring 0 to 3 framing items, stopped or
//! running.
//!
//! Nothing may panic, nothing may be written outside the value buffer (guard bytes on both
//! sides), a success may not report more bytes than the buffer holds, and the session ends with
//! no leak, no dangling reference and no broken rule.

#![no_main]

use arbitrary::Arbitrary;
use ks_allocator::{
    framing::{Compression, FramingExView, FramingItem, MemoryType},
    property::{AllocatorAssignment, AssignedAllocator, CONNECTION_PROPERTY_SET, stream_property_set},
};
use ks_host::{
    Session,
    avstream::DetachedPin,
    property::{Client, request},
};
use ks_sys::{KSPIN_DESCRIPTOR_EX, KSSTATE_RUN, STATUS_SUCCESS};
use libfuzzer_sys::fuzz_target;

struct PinState {
    allocator: AssignedAllocator,
}

// SAFETY: the pin's Context always points at a live `PinState`.
unsafe impl AllocatorAssignment for PinState {
    fn assigned_allocator(&self) -> &AssignedAllocator {
        &self.allocator
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    items: u8,
    set: u8,
    id: u32,
    flags: u32,
    request_tail: Vec<u8>,
    value: Vec<u8>,
    client: u8,
    running: bool,
}

const GUARD: usize = 32;
const CANARY: u8 = 0x5C;

fuzz_target!(|input: Input| {
    let _host = Session::begin();
    let items = usize::from(input.items % 4);
    let item = FramingItem::new(MemoryType::KERNEL_NONPAGED).with_frames(3).with_exact_size(230_400);
    let list = vec![item; items.max(1)];
    let view = FramingExView::from_parts(Compression::IDENTITY, &list).expect("a valid framing");
    let mut framing = vec![0_u32; view.byte_len().div_ceil(4)];
    // SAFETY: the u32 storage is byte_len() bytes or more, 4-byte aligned as a driver's is.
    let bytes = unsafe { std::slice::from_raw_parts_mut(framing.as_mut_ptr().cast::<u8>(), view.byte_len()) };
    view.encode(bytes).expect("room for the framing");
    // SAFETY: plain-data C structures; zero is a valid value for every field.
    let mut descriptor: Box<KSPIN_DESCRIPTOR_EX> = Box::new(unsafe { std::mem::zeroed() });
    descriptor.AllocatorFraming = if items == 0 { std::ptr::null() } else { framing.as_ptr().cast() };
    let mut state = Box::new(PinState { allocator: AssignedAllocator::new() });
    // An AVStream pin as far as the handlers go (its control mutex, which the stream
    // allocator's set takes), with the descriptor and context above.
    // SAFETY: the descriptor outlives the pin (dropped after it below).
    let pin = unsafe { DetachedPin::new(&raw const *descriptor, (&raw mut *state).cast()) };
    if input.running {
        pin.set_state(KSSTATE_RUN);
    }

    let guid = match input.set % 4 {
        0 => ks_sys::KSPROPSETID_Connection,
        1 => ks_sys::KSPROPSETID_Stream,
        2 => ks_sys::KSPROPSETID_StreamAllocator,
        _ => ks_sys::KSPROPSETID_Pin,
    };
    let mut request_bytes = Vec::new();
    request_bytes.extend_from_slice(&guid.Data1.to_le_bytes());
    request_bytes.extend_from_slice(&guid.Data2.to_le_bytes());
    request_bytes.extend_from_slice(&guid.Data3.to_le_bytes());
    request_bytes.extend_from_slice(&guid.Data4);
    request_bytes.extend_from_slice(&(input.id % 16).to_le_bytes());
    let flags = match input.flags % 4 {
        0 => ks_sys::KSPROPERTY_TYPE_GET,
        1 => ks_sys::KSPROPERTY_TYPE_SET,
        _ => input.flags,
    };
    request_bytes.extend_from_slice(&flags.to_le_bytes());
    request_bytes.extend_from_slice(&input.request_tail);
    if input.request_tail.len() % 3 == 1 {
        request_bytes.truncate(input.request_tail.len() % 24);
    }
    let client = match input.client % 3 {
        0 => Client::Native,
        1 => Client::Wow64,
        _ => Client::Kernel,
    };

    let len = input.value.len().min(512);
    let mut memory = vec![CANARY; len + 2 * GUARD];
    memory[GUARD..GUARD + len].copy_from_slice(&input.value[..len]);
    let sets = [CONNECTION_PROPERTY_SET, stream_property_set::<PinState>()];
    // SAFETY: the library's tables; a live pin whose context is a PinState.
    let reply = unsafe {
        request(pin.as_ptr(), &sets, &request_bytes, &mut memory[GUARD..GUARD + len], client)
    };
    assert!(memory[..GUARD].iter().all(|b| *b == CANARY), "written before the value buffer");
    assert!(memory[GUARD + len..].iter().all(|b| *b == CANARY), "written after the value buffer");
    if reply.status == STATUS_SUCCESS {
        assert!(reply.information <= len, "{reply:?} for {len} bytes");
    }
    // The pin goes away: whatever allocator it was assigned is released with it.
    drop(pin);
    drop(state);
    drop(descriptor);
});
