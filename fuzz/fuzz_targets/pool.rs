//! An arbitrary sequence of allocate / free (own, foreign, interior, duplicate, NULL) / delete
//! through `DEFAULT_DISPATCH`'s C table, driven as AVStream drives it (ks-host's
//! `DispatchAllocator`: Allocate and Free at DISPATCH_LEVEL).
//!
//! After every step: no frame is out twice, every frame handed out is inside the pool and
//! aligned, exhaustion happens exactly at the frame count, and the pool's counters balance with
//! a model of what was done. Deleting the allocator with frames out retires it (kept whole until
//! released), with none out frees it; either way nothing is left allocated once retired
//! allocators are released, and the session checks that no rule was broken.

#![no_main]

use std::ptr::NonNull;

use arbitrary::Arbitrary;
use ks_allocator::{
    DEFAULT_DISPATCH, DefaultAllocator,
    framing::{Framing, OptionFlags, PoolType},
};
use ks_host::{Session, ks::DispatchAllocator};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Op {
    Allocate,
    Free(u8),
    FreeForeign(u16),
    FreeInterior(u8, u16),
    FreeAgain(u8),
    FreeNull,
    Delete,
}

#[derive(Arbitrary, Debug)]
struct Input {
    frames: u8,
    size: u16,
    align_bits: u8,
    paged: bool,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let host = Session::begin();
    // Bad frees are reported; a debug build would also break into an attached debugger.
    ks_host::debug::set_debugger_attached(false);
    let frames = u32::from(input.frames % 64) + 1;
    let size = u32::from(input.size) + 1;
    let mask = (1_u32 << (input.align_bits % 13)) - 1;
    let pool_type = if input.paged { PoolType::PAGED } else { PoolType::NON_PAGED };
    let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, pool_type, frames, size, mask);
    // SAFETY: no pin; the library's table.
    let Ok(allocator) =
        (unsafe { DispatchAllocator::initialize(DEFAULT_DISPATCH, std::ptr::null_mut(), &framing.to_raw()) })
    else {
        return;
    };
    let mut allocator = Some(allocator);
    let mut out: Vec<NonNull<u8>> = Vec::new();
    let mut freed: Vec<NonNull<u8>> = Vec::new();
    let (mut allocations, mut frees, mut bad) = (0_u64, 0_u64, 0_u64);
    let foreign = [0_u8; 64];
    for op in input.ops.iter().take(512) {
        let Some(live) = &allocator else { break };
        match op {
            Op::Allocate => match live.allocate() {
                Some(frame) => {
                    assert!(!out.contains(&frame), "a frame handed out twice");
                    assert_eq!(frame.as_ptr() as usize & mask as usize, 0, "misaligned frame");
                    freed.retain(|f| *f != frame);
                    out.push(frame);
                    allocations += 1;
                }
                None => assert_eq!(out.len(), frames as usize, "None before exhaustion"),
            },
            Op::Free(i) if !out.is_empty() => {
                let frame = out.swap_remove(usize::from(*i) % out.len());
                live.free(frame);
                freed.push(frame);
                frees += 1;
            }
            Op::FreeForeign(offset) => {
                live.free_raw(foreign.as_ptr().wrapping_add(usize::from(*offset) % 64).cast_mut().cast());
                bad += 1;
            }
            Op::FreeInterior(i, offset) if !out.is_empty() && size > 1 => {
                let frame = out[usize::from(*i) % out.len()];
                let offset = 1 + usize::from(*offset) % (size as usize - 1);
                live.free_raw(frame.as_ptr().wrapping_add(offset).cast());
                bad += 1;
            }
            Op::FreeAgain(i) if !freed.is_empty() => {
                live.free(freed[usize::from(*i) % freed.len()]);
                bad += 1;
            }
            Op::FreeNull => live.free_raw(std::ptr::null_mut()),
            Op::Delete => {
                allocator = None;
                continue;
            }
            _ => continue,
        }
        // SAFETY: the context of DEFAULT_DISPATCH is its DefaultAllocator, live until deleted.
        let pool = unsafe { &*live.context().cast::<DefaultAllocator>() }.pool();
        let stats = pool.stats();
        assert_eq!(stats.frames_total, frames);
        assert_eq!(stats.frames_outstanding as usize, out.len());
        assert_eq!(stats.frames_free as usize + out.len(), frames as usize);
        assert_eq!((stats.allocations, stats.frees), (allocations, frees));
        assert_eq!(stats.bad_frees.total(), bad, "{stats:?}");
        assert!(stats.high_water as usize >= out.len());
    }
    // Deleted with frames out, the allocator is kept whole (retired) until the driver releases
    // it; deleted with none out, it is gone.
    let out_when_deleted = out.len() as u64;
    drop(allocator);
    let retired = ks_allocator::retired_allocators();
    let expected = u32::from(out_when_deleted > 0);
    assert_eq!((retired.allocators, retired.frames), (expected, out_when_deleted), "{retired:?}");
    // SAFETY: the frames still out are never touched again.
    let released = unsafe { ks_allocator::release_retired_allocators() };
    assert_eq!(released, retired);
    assert!(host.live().is_empty(), "{:?}", host.live());
});
