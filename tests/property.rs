//! The allocator property handlers at buffer level: the specification's size and status matrix
//! (7.8), the 32-bit handle, and random request lengths that must never touch anything outside
//! the buffers.

use ks_allocator::{
    framing::{Framing, FramingExView, FramingItem, MemoryType, OptionFlags, PoolType},
    property::{
        HandleWidth, Reply, get_allocator_framing, get_allocator_framing_ex, get_stream_allocator,
        read_handle,
    },
};
use ks_sys::{STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_NOT_FOUND, STATUS_SUCCESS};
use proptest::prelude::*;

mod common;
use common::{CANARY, guarded};

fn framing_bytes(n: usize) -> Vec<u8> {
    let item = FramingItem::new(MemoryType::KERNEL_NONPAGED).with_frames(2).with_exact_size(4096);
    let items = vec![item; n];
    let view =
        FramingExView::from_parts(ks_allocator::framing::Compression::IDENTITY, &items).unwrap();
    let mut out = vec![0u8; view.byte_len()];
    view.encode(&mut out).unwrap();
    out
}

#[test]
fn the_size_and_status_matrix() {
    for n in [1usize, 2, 3] {
        let bytes = framing_bytes(n);
        let view = FramingExView::parse(&bytes).unwrap();
        let size = 24 + 88 * n;
        for len in [0usize, 1, 111, 112, 199, 200, 287, 288, 1000] {
            let (reply, written) = guarded(len, |out| get_allocator_framing_ex(Some(&view), out));
            let expected = match len {
                0 => Reply { status: STATUS_BUFFER_OVERFLOW, information: size },
                l if l < size => Reply { status: STATUS_BUFFER_TOO_SMALL, information: size },
                _ => Reply { status: STATUS_SUCCESS, information: size },
            };
            assert_eq!(reply, expected, "N = {n}, length {len}");
            if reply.status == STATUS_SUCCESS {
                assert_eq!(&written[..size], bytes.as_slice(), "the whole array is returned");
                assert!(written[size..].iter().all(|b| *b == CANARY), "nothing past the framing");
            } else {
                assert!(written.iter().all(|b| *b == CANARY), "a short buffer is left untouched");
            }
        }
    }
    let (reply, _) = guarded(112, |out| get_allocator_framing_ex(None, out));
    assert_eq!(reply, Reply { status: STATUS_NOT_FOUND, information: 0 });
}

#[test]
fn the_legacy_framing() {
    let framing = Framing::query(
        ks_allocator::framing::RequirementFlags::SYSTEM_MEMORY,
        PoolType::NON_PAGED,
        2,
        4096,
        0,
    );
    let (reply, written) = guarded(24, |out| get_allocator_framing(Some(&framing), out));
    assert_eq!(reply, Reply { status: STATUS_SUCCESS, information: 24 });
    assert_eq!(written, framing.to_bytes());
    let (reply, _) = guarded(23, |out| get_allocator_framing(Some(&framing), out));
    assert_eq!(reply, Reply { status: STATUS_BUFFER_TOO_SMALL, information: 24 });
    assert_eq!(guarded(24, |out| get_allocator_framing(None, out)).0.status, STATUS_NOT_FOUND);
}

#[test]
fn the_stream_allocator_handle_native_and_wow64() {
    for width in [HandleWidth::Native, HandleWidth::Wow64] {
        let size = width.bytes();
        let (reply, written) = guarded(size, |out| get_stream_allocator(out, width));
        assert_eq!(reply, Reply { status: STATUS_SUCCESS, information: size });
        assert!(written.iter().all(|b| *b == 0), "get returns a NULL handle");
        let (reply, _) = guarded(size - 1, |out| get_stream_allocator(out, width));
        assert_eq!(reply, Reply { status: STATUS_BUFFER_TOO_SMALL, information: size });
    }
    // A 32-bit client sends 4 bytes although MinData is 8 on x64; they are sign-extended as
    // Handle32ToHandle does.
    let too_small = Reply { status: STATUS_BUFFER_TOO_SMALL, information: 8 };
    assert_eq!(read_handle(&0x1234_5678u32.to_le_bytes(), HandleWidth::Wow64), Ok(0x1234_5678));
    assert_eq!(read_handle(&0x1234_5678u32.to_le_bytes(), HandleWidth::Native), Err(too_small));
    assert_eq!(
        read_handle(&0xFFFF_FFFEu32.to_le_bytes(), HandleWidth::Wow64),
        Ok(0xFFFF_FFFF_FFFF_FFFE)
    );
    let native = 0xFFFF_8000_0000_1234u64.to_le_bytes();
    assert_eq!(read_handle(&native, HandleWidth::Native), Ok(0xFFFF_8000_0000_1234));
    assert_eq!(read_handle(&native, HandleWidth::Wow64), Ok(0x1234), "the first 4 bytes");
    assert_eq!(
        read_handle(&[0; 3], HandleWidth::Wow64),
        Err(Reply { status: STATUS_BUFFER_TOO_SMALL, information: 4 })
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 16 } else { 100_000 }, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random output lengths for every handler: only documented statuses, nothing written outside
    /// the buffer, and a success writes exactly what Information says.
    #[test]
    fn random_lengths_stay_inside_the_buffers(n in 1usize..=4, len in prop_oneof![0usize..400, Just(0)], which in 0u8..5, native in any::<bool>()) {
        let bytes = framing_bytes(n);
        let view = FramingExView::parse(&bytes).unwrap();
        let legacy = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 2, 4096, 0);
        let width = if native { HandleWidth::Native } else { HandleWidth::Wow64 };
        let (reply, _) = guarded(len, |out| match which {
            0 => get_allocator_framing_ex(Some(&view), out),
            1 => get_allocator_framing_ex(None, out),
            2 => get_allocator_framing(Some(&legacy), out),
            3 => get_stream_allocator(out, width),
            _ => read_handle(out, width).map_or_else(|reply| reply, |_| Reply { status: STATUS_SUCCESS, information: 0 }),
        });
        let allowed = [STATUS_SUCCESS, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_NOT_FOUND];
        prop_assert!(allowed.contains(&reply.status), "{:?}", reply);
        if reply.status == STATUS_SUCCESS {
            prop_assert!(reply.information <= len);
        }
    }
}
