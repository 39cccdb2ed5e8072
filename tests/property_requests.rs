//! The allocator property handlers in a pin's automation table, reached the way a user-mode
//! client's `IOCTL_KS_PROPERTY` reaches them: through ks-host's `KsPropertyHandler` stand-in,
//! which checks `MinProperty`/`MinData` and calls the handlers through their C pointers.

extern crate ks_host;

use ks_allocator::{
    framing::{Compression, FramingExView, FramingItem, MemoryType},
    property::{
        AllocatorAssignment, AssignedAllocator, CONNECTION_PROPERTY_SET, stream_property_set,
    },
};
use ks_host::{
    Session,
    property::{Client, Reply, request},
};
use ks_sys::{
    GUID, KSPIN, KSPIN_DESCRIPTOR_EX, KSPROPERTY_SET, KSPROPERTY_TYPE_GET, KSPROPERTY_TYPE_SET,
    KSSTATE_RUN, NTSTATUS, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_INVALID_DEVICE_STATE, STATUS_INVALID_PARAMETER, STATUS_NOT_FOUND, STATUS_NOT_SUPPORTED,
    STATUS_SUCCESS,
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
struct TestPin {
    pin: Box<KSPIN>,
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
        // SAFETY: as above.
        let mut pin: Box<KSPIN> = Box::new(unsafe { std::mem::zeroed() });
        pin.Descriptor = &raw const *descriptor;
        pin.Context = (&raw mut *state).cast();
        Self { pin, _descriptor: descriptor, _framing: framing, state, framing_bytes }
    }

    fn sets() -> [KSPROPERTY_SET; 2] {
        [CONNECTION_PROPERTY_SET, stream_property_set::<PinState>()]
    }

    fn call(&mut self, request_bytes: &[u8], value: &mut [u8], client: Client) -> Reply {
        // SAFETY: the library's tables, and a live pin whose context is a PinState.
        unsafe { request(&raw mut *self.pin, &Self::sets(), request_bytes, value, client) }
    }
}

fn property(set: &GUID, id: u32, flags: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&set.Data1.to_le_bytes());
    out.extend_from_slice(&set.Data2.to_le_bytes());
    out.extend_from_slice(&set.Data3.to_le_bytes());
    out.extend_from_slice(&set.Data4);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&flags.to_le_bytes());
    out
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

#[test]
fn stream_allocator_handles_native_and_32_bit() {
    let _host = Session::begin();
    let mut pin = TestPin::new(1);
    let get = property(
        &ks_sys::KSPROPSETID_Stream,
        ks_sys::KSPROPERTY_STREAM_ALLOCATOR,
        KSPROPERTY_TYPE_GET,
    );
    let set = property(
        &ks_sys::KSPROPSETID_Stream,
        ks_sys::KSPROPERTY_STREAM_ALLOCATOR,
        KSPROPERTY_TYPE_SET,
    );
    let (reply, written) = guarded(8, |value| pin.call(&get, value, Client::Native));
    assert_eq!((reply, written), (Reply { status: STATUS_SUCCESS, information: 8 }, vec![0; 8]));
    let (reply, _) = guarded(4, |value| pin.call(&get, value, Client::Wow64));
    assert_eq!(reply, Reply { status: STATUS_SUCCESS, information: 4 });
    // A 32-bit client's 4-byte handle is accepted...
    let mut handle = 0x0BAD_F00Du32.to_le_bytes();
    assert_eq!(pin.call(&set, &mut handle, Client::Wow64).status, STATUS_SUCCESS);
    assert_eq!(pin.state.allocator.handle(), 0x0BAD_F00D);
    // ... a native client must send 8 bytes.
    assert_eq!(
        pin.call(&set, &mut handle, Client::Native),
        Reply { status: STATUS_BUFFER_TOO_SMALL, information: 8 }
    );
    let mut native = 0x7FFF_0000_1234_5678u64.to_le_bytes();
    assert_eq!(pin.call(&set, &mut native, Client::Native).status, STATUS_SUCCESS);
    assert_eq!(pin.state.allocator.handle(), 0x7FFF_0000_1234_5678);
    // Not while streaming.
    pin.pin.DeviceState = KSSTATE_RUN;
    assert_eq!(pin.call(&set, &mut [0u8; 8], Client::Native).status, STATUS_INVALID_DEVICE_STATE);
    assert_eq!(pin.state.allocator.handle(), 0x7FFF_0000_1234_5678);
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
            pin.pin.DeviceState = KSSTATE_RUN;
        }
        let guid = match set { 0 => ks_sys::KSPROPSETID_Connection, 1 => ks_sys::KSPROPSETID_Stream, _ => ks_sys::KSPROPSETID_StreamAllocator };
        let mut request_bytes = property(&guid, id, flags);
        request_bytes.resize(request_len, 0xEE);
        let client = if wow64 { Client::Wow64 } else { Client::Native };
        let (reply, _) = guarded(value_len, |value| pin.call(&request_bytes, value, client));
        let documented = [
            STATUS_SUCCESS, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_NOT_FOUND,
            STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_INVALID_DEVICE_STATE,
        ];
        prop_assert!(documented.contains(&reply.status), "{:?}", reply);
        if reply.status == STATUS_SUCCESS {
            prop_assert!(reply.information <= value_len);
        }
    }
}
