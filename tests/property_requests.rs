//! The allocator property handlers in a pin's automation table, reached the way a user-mode
//! client's `IOCTL_KS_PROPERTY` reaches them: through ks-host's `KsPropertyHandler` stand-in,
//! which checks `MinProperty`/`MinData` and calls the handlers through their C pointers.

extern crate ks_host;

use std::ptr::NonNull;

use ks_allocator::{
    framing::{Compression, FramingExView, FramingItem, MemoryType},
    property::{
        AllocatorAssignment, AssignedAllocator, CONNECTION_PROPERTY_SET, stream_property_set,
    },
};
use ks_host::{
    Session,
    object::{self, HandleOwner, ObjectKind},
    property::{Client, Reply, request},
};
use ks_sys::{
    GUID, KSPIN_DESCRIPTOR_EX, KSPROPERTY_SET, KSPROPERTY_TYPE_GET, KSPROPERTY_TYPE_SET,
    KSSTATE_RUN, KSSTATE_STOP, NTSTATUS, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, STATUS_NOT_FOUND,
    STATUS_NOT_SUPPORTED, STATUS_OBJECT_TYPE_MISMATCH, STATUS_SUCCESS,
};
use proptest::prelude::*;

mod common;
use common::guarded;

/// What the driver keeps in `KSPIN.Context`.
struct PinState {
    allocator: AssignedAllocator,
}

// SAFETY: the test pins' Context always points at a live `PinState`.
unsafe impl AllocatorAssignment for PinState {
    fn assigned_allocator(&self) -> &AssignedAllocator {
        &self.allocator
    }
}

/// A pin with a descriptor whose `AllocatorFraming` has `items` items (or none), and a context.
/// The pin is a host object (the stream allocator handler takes its control mutex).
struct TestPin {
    pin: ks_host::avstream::DetachedPin,
    _descriptor: Box<KSPIN_DESCRIPTOR_EX>,
    _framing: Vec<u32>,
    state: Box<PinState>,
    framing_bytes: Vec<u8>,
}

impl TestPin {
    fn new(items: usize) -> Self {
        let item =
            FramingItem::new(MemoryType::KERNEL_NONPAGED).with_frames(3).with_exact_size(230_400);
        let list = vec![item; items.max(1)];
        let view = FramingExView::from_parts(Compression::IDENTITY, &list).unwrap();
        let mut framing_bytes = vec![0u8; view.byte_len()];
        view.encode(&mut framing_bytes).unwrap();
        // 4-byte aligned storage, as a driver's static framing is.
        let framing: Vec<u32> =
            framing_bytes.chunks(4).map(|w| u32::from_le_bytes(w.try_into().unwrap())).collect();
        // SAFETY: plain-data C structures; zero is a valid value for each field.
        let mut descriptor: Box<KSPIN_DESCRIPTOR_EX> = Box::new(unsafe { std::mem::zeroed() });
        descriptor.AllocatorFraming =
            if items == 0 { std::ptr::null() } else { framing.as_ptr().cast() };
        let mut state = Box::new(PinState { allocator: AssignedAllocator::new() });
        // SAFETY: the descriptor lives in the test pin, as long as the pin.
        let pin = unsafe {
            ks_host::avstream::DetachedPin::new(&raw const *descriptor, (&raw mut *state).cast())
        };
        Self { pin, _descriptor: descriptor, _framing: framing, state, framing_bytes }
    }

    fn sets() -> [KSPROPERTY_SET; 2] {
        [CONNECTION_PROPERTY_SET, stream_property_set::<PinState>()]
    }

    fn call(&mut self, request_bytes: &[u8], value: &mut [u8], client: Client) -> Reply {
        // SAFETY: the library's tables, and a live pin whose context is a PinState.
        unsafe { request(self.pin.as_ptr(), &Self::sets(), request_bytes, value, client) }
    }
}

fn property(set: &GUID, id: u32, flags: u32) -> Vec<u8> {
    ks_host::property::request_bytes(set, id, flags)
}

fn framing_ex() -> Vec<u8> {
    property(
        &ks_sys::KSPROPSETID_Connection,
        ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
        KSPROPERTY_TYPE_GET,
    )
}

#[test]
fn allocator_framing_ex_size_and_status_matrix() {
    let _host = Session::begin();
    for n in [1usize, 2, 3] {
        let mut pin = TestPin::new(n);
        let size = 24 + 88 * n;
        for len in [0usize, 1, 111, 112, 199, 200, 288] {
            let (reply, written) =
                guarded(len, |value| pin.call(&framing_ex(), value, Client::Native));
            let (status, information): (NTSTATUS, usize) = match len {
                0 => (STATUS_BUFFER_OVERFLOW, size),
                l if l < size => (STATUS_BUFFER_TOO_SMALL, size),
                _ => (STATUS_SUCCESS, size),
            };
            assert_eq!(reply, Reply { status, information }, "N = {n}, length {len}");
            if status == STATUS_SUCCESS {
                assert_eq!(
                    written[..size],
                    pin.framing_bytes[..],
                    "the whole array from the descriptor"
                );
            }
        }
    }
    let mut none = TestPin::new(0);
    let (reply, _) = guarded(200, |value| none.call(&framing_ex(), value, Client::Native));
    assert_eq!(reply, Reply { status: STATUS_NOT_FOUND, information: 0 });
}

#[test]
fn legacy_framing_from_the_preferred_item() {
    let _host = Session::begin();
    let mut pin = TestPin::new(2);
    let request_bytes = property(
        &ks_sys::KSPROPSETID_Connection,
        ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING,
        KSPROPERTY_TYPE_GET,
    );
    let (reply, written) = guarded(24, |value| pin.call(&request_bytes, value, Client::Native));
    assert_eq!(reply, Reply { status: STATUS_SUCCESS, information: 24 });
    let words: Vec<u32> =
        written.chunks(4).map(|w| u32::from_le_bytes(w.try_into().unwrap())).collect();
    assert_eq!(
        words,
        [0, 0, 3, 230_400, 0, 0],
        "requirements, NonPagedPool, frames, size, alignment, reserved"
    );
    // MinData 24: the dispatcher rejects a short buffer before the handler runs.
    let (reply, _) = guarded(23, |value| pin.call(&request_bytes, value, Client::Native));
    assert_eq!(reply, Reply { status: STATUS_BUFFER_TOO_SMALL, information: 24 });
}

fn stream_allocator(flags: u32) -> Vec<u8> {
    property(&ks_sys::KSPROPSETID_Stream, ks_sys::KSPROPERTY_STREAM_ALLOCATOR, flags)
}

#[test]
fn stream_allocator_get_returns_a_null_handle_of_the_callers_width() {
    let _host = Session::begin();
    let mut pin = TestPin::new(1);
    let get = stream_allocator(KSPROPERTY_TYPE_GET);
    let (reply, written) = guarded(8, |value| pin.call(&get, value, Client::Native));
    assert_eq!((reply, written), (Reply { status: STATUS_SUCCESS, information: 8 }, vec![0; 8]));
    let (reply, written) = guarded(4, |value| pin.call(&get, value, Client::Wow64));
    assert_eq!((reply, written), (Reply { status: STATUS_SUCCESS, information: 4 }, vec![0; 4]));
}

#[test]
fn stream_allocator_set_references_the_file_object_and_releases_it() {
    let host = Session::begin();
    let mut pin = TestPin::new(1);
    let set = stream_allocator(KSPROPERTY_TYPE_SET);
    let first = object::open_file();
    let first_object = object::object_of(first).unwrap();
    let mut value = first.to_le_bytes();
    assert_eq!(pin.call(&set, &mut value, Client::Native).status, STATUS_SUCCESS);
    assert_eq!(pin.state.allocator.file_object().map(NonNull::as_ptr), Some(first_object));
    assert_eq!(object::driver_references(first_object), Some(1));
    // The client closes its handle: the pin's reference keeps the object alive.
    object::close(first);
    assert_eq!(object::driver_references(first_object), Some(1));

    // A second allocator replaces the first, whose reference is released (and so the object
    // destroyed, no handle being left).
    let second = object::open_file();
    let second_object = object::object_of(second).unwrap();
    let mut value = second.to_le_bytes();
    assert_eq!(pin.call(&set, &mut value, Client::Native).status, STATUS_SUCCESS);
    assert_eq!(pin.state.allocator.file_object().map(NonNull::as_ptr), Some(second_object));
    assert_eq!(object::driver_references(first_object), None, "the first object is gone");

    // Not while streaming: nothing changes.
    pin.pin.set_state(KSSTATE_RUN);
    let mut null = [0u8; 8];
    assert_eq!(pin.call(&set, &mut null, Client::Native).status, STATUS_INVALID_DEVICE_STATE);
    assert_eq!(object::driver_references(second_object), Some(1));
    pin.pin.set_state(KSSTATE_STOP);

    // NULL releases the allocator.
    assert_eq!(pin.call(&set, &mut null, Client::Native).status, STATUS_SUCCESS);
    assert_eq!(pin.state.allocator.file_object(), None);
    assert_eq!(object::driver_references(second_object), Some(0));
    object::close(second);
    assert!(object::driver_held().is_empty());
    drop(pin);
    drop(host);
}

#[test]
fn stream_allocator_refuses_handles_that_are_not_the_callers_file_objects() {
    let _host = Session::begin();
    let mut pin = TestPin::new(1);
    let set = stream_allocator(KSPROPERTY_TYPE_SET);
    let current = object::open_file();
    let mut value = current.to_le_bytes();
    assert_eq!(pin.call(&set, &mut value, Client::Native).status, STATUS_SUCCESS);
    let current_object = pin.state.allocator.file_object();

    let closed = object::open_file();
    object::close(closed);
    let event = object::open(ObjectKind::Event, HandleOwner::User, u32::MAX);
    let kernel = object::open(ObjectKind::File, HandleOwner::Kernel, u32::MAX);
    let cases = [
        (closed, Client::Native, STATUS_INVALID_HANDLE),
        (0x7FFF_0000_1234_5678, Client::Native, STATUS_INVALID_HANDLE),
        (event, Client::Native, STATUS_OBJECT_TYPE_MISMATCH),
        // A kernel handle from a user-mode client: refused, as UserMode resolution does.
        (kernel, Client::Native, STATUS_INVALID_HANDLE),
    ];
    for (handle, client, status) in cases {
        let mut value = handle.to_le_bytes();
        assert_eq!(
            pin.call(&set, &mut value, client),
            Reply { status, information: 0 },
            "handle {handle:#x}"
        );
        assert_eq!(pin.state.allocator.file_object(), current_object, "unchanged");
    }
    // The same kernel handle from kernel mode is accepted.
    let mut value = kernel.to_le_bytes();
    assert_eq!(pin.call(&set, &mut value, Client::Kernel).status, STATUS_SUCCESS);
    assert_eq!(pin.state.allocator.file_object().map(NonNull::as_ptr), object::object_of(kernel));
    assert_eq!(
        object::driver_held(),
        [(ObjectKind::File, 1)],
        "only the kernel file object is referenced now"
    );
    for handle in [current, event, kernel] {
        object::close(handle);
    }
}

#[test]
fn stream_allocator_from_32_bit_clients_sign_extends_the_handle() {
    let _host = Session::begin();
    let mut pin = TestPin::new(1);
    let set = stream_allocator(KSPROPERTY_TYPE_SET);
    // A 32-bit client sends 4 bytes although MinData is 8 on x64...
    let file = object::open_file();
    let mut value = u32::try_from(file).unwrap().to_le_bytes();
    assert_eq!(pin.call(&set, &mut value, Client::Wow64).status, STATUS_SUCCESS);
    assert_eq!(pin.state.allocator.file_object().map(NonNull::as_ptr), object::object_of(file));
    // ... a native client must send 8.
    assert_eq!(
        pin.call(&set, &mut value, Client::Native),
        Reply { status: STATUS_BUFFER_TOO_SMALL, information: 8 }
    );
    // Handle32ToHandle sign-extends: (HANDLE)-2 (the current thread) stays -2, and a 32-bit
    // value with its top bit set becomes the kernel-handle range.
    for (bytes, widened) in [
        (0xFFFF_FFFEu32, 0xFFFF_FFFF_FFFF_FFFEu64),
        (0x8000_0004, 0xFFFF_FFFF_8000_0004),
        (0x7FFF_FFFC, 0x0000_0000_7FFF_FFFC),
    ] {
        let mut value = bytes.to_le_bytes();
        assert_eq!(pin.call(&set, &mut value, Client::Wow64).status, STATUS_INVALID_HANDLE);
        assert_eq!(object::handles_referenced().last(), Some(&widened), "{bytes:#x}");
    }
    object::close(file);
    // The pin still holds the reference; dropping its context releases it.
    assert_eq!(object::driver_held(), [(ObjectKind::File, 1)]);
    drop(pin);
    assert!(object::driver_held().is_empty());
}

#[test]
fn a_reference_still_held_at_the_end_of_a_session_is_reported() {
    let result = std::panic::catch_unwind(|| {
        let _host = Session::begin();
        let mut pin = TestPin::new(1);
        let set = stream_allocator(KSPROPERTY_TYPE_SET);
        let mut value = object::open_file().to_le_bytes();
        assert_eq!(pin.call(&set, &mut value, Client::Native).status, STATUS_SUCCESS);
        // The driver "forgets" to release: its slot is overwritten, the reference never
        // released (only the reference: no memory of the process is leaked).
        std::mem::forget(std::mem::replace(&mut pin.state.allocator, AssignedAllocator::new()));
    });
    let message = result.expect_err("the session reports the leak");
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("object reference leaked: 1 on a File object"), "{text}");
}

#[test]
fn the_dispatcher_checks_the_request() {
    let _host = Session::begin();
    let mut pin = TestPin::new(1);
    let cases: [(Vec<u8>, NTSTATUS); 5] = [
        (framing_ex()[..20].to_vec(), STATUS_INVALID_PARAMETER),
        (property(&ks_sys::KSPROPSETID_StreamAllocator, 0, KSPROPERTY_TYPE_GET), STATUS_NOT_FOUND),
        (
            property(
                &ks_sys::KSPROPSETID_Connection,
                ks_sys::KSPROPERTY_CONNECTION_STATE,
                KSPROPERTY_TYPE_GET,
            ),
            STATUS_NOT_FOUND,
        ),
        (
            property(
                &ks_sys::KSPROPSETID_Connection,
                ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
                KSPROPERTY_TYPE_SET,
            ),
            STATUS_NOT_FOUND,
        ),
        (
            property(
                &ks_sys::KSPROPSETID_Connection,
                ks_sys::KSPROPERTY_CONNECTION_ALLOCATORFRAMING_EX,
                ks_sys::KSPROPERTY_TYPE_BASICSUPPORT,
            ),
            STATUS_NOT_SUPPORTED,
        ),
    ];
    for (request_bytes, status) in cases {
        let (reply, _) = guarded(200, |value| pin.call(&request_bytes, value, Client::Native));
        assert_eq!(reply.status, status, "{request_bytes:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 100_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random request and value lengths, ids, flags and clients through the dispatcher: no
    /// panic, nothing written outside the value buffer, and only documented statuses.
    #[test]
    fn random_requests(
        items in 0usize..=3,
        set in 0u8..3,
        id in prop_oneof![0u32..8, any::<u32>()],
        flags in prop_oneof![Just(KSPROPERTY_TYPE_GET), Just(KSPROPERTY_TYPE_SET), any::<u32>()],
        request_len in prop_oneof![Just(24usize), 0usize..48],
        value_len in prop_oneof![0usize..300, Just(0), Just(112), Just(8), Just(4)],
        wow64 in any::<bool>(),
        running in any::<bool>(),
    ) {
        let _host = Session::begin();
        let mut pin = TestPin::new(items);
        if running {
            pin.pin.set_state(KSSTATE_RUN);
        }
        let guid = match set { 0 => ks_sys::KSPROPSETID_Connection, 1 => ks_sys::KSPROPSETID_Stream, _ => ks_sys::KSPROPSETID_StreamAllocator };
        let mut request_bytes = property(&guid, id, flags);
        request_bytes.resize(request_len, 0xEE);
        let client = if wow64 { Client::Wow64 } else { Client::Native };
        let (reply, _) = guarded(value_len, |value| pin.call(&request_bytes, value, client));
        let documented = [
            STATUS_SUCCESS, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_NOT_FOUND,
            STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_INVALID_DEVICE_STATE,
            STATUS_INVALID_HANDLE,
        ];
        prop_assert!(documented.contains(&reply.status), "{:?}", reply);
        if reply.status == STATUS_SUCCESS {
            prop_assert!(reply.information <= value_len);
        }
    }
}
