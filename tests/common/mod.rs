//! Helpers shared by the integration tests (each test file uses the ones it needs).

#![allow(dead_code, reason = "every test file includes this module but uses only some helpers")]

use std::ptr::NonNull;

/// A frame handed between threads (frames are plain memory with one owner at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame(pub NonNull<u8>);

// SAFETY: a frame is plain memory; the tests hand it to one owner at a time.
unsafe impl Send for Frame {}

impl Frame {
    /// The frame. Taking `self` makes a closure capture the whole (sendable) `Frame`.
    pub fn get(self) -> NonNull<u8> {
        self.0
    }
}

/// The byte around a guarded buffer.
pub const CANARY: u8 = 0x5C;

/// Runs `f` on a buffer of `len` bytes between canaries, checks that the canaries are intact and
/// returns what `f` returned and the buffer's contents.
pub fn guarded<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> (R, Vec<u8>) {
    let mut memory = vec![CANARY; len + 64];
    let result = f(&mut memory[32..32 + len]);
    assert!(memory[..32].iter().all(|b| *b == CANARY), "wrote before the buffer");
    assert!(memory[32 + len..].iter().all(|b| *b == CANARY), "wrote after the buffer");
    (result, memory[32..32 + len].to_vec())
}

/// A non-paged allocator request of `frames` frames of `frame_size` bytes aligned to
/// `alignment + 1`, for no pin in particular, within the default budget.
pub fn request(frames: u32, frame_size: u32, alignment: u32) -> ks_allocator::AllocatorRequest {
    use ks_allocator::framing::{Framing, OptionFlags, PoolType};
    let framing = Framing::request(
        OptionFlags::SYSTEM_MEMORY,
        PoolType::NON_PAGED,
        frames,
        frame_size,
        alignment,
    );
    ks_allocator::AllocatorRequest::new(
        &framing,
        &ks_allocator::PinConstraints::NONE,
        &ks_allocator::PoolConfig::DEFAULT,
    )
    .expect("a valid request")
}

/// A pool over non-paged system memory for [`request`]`(frames, frame_size, alignment)`.
pub fn system_pool(frames: u32, frame_size: u32, alignment: u32) -> ks_allocator::FramePool {
    let request = request(frames, frame_size, alignment);
    ks_allocator::FramePool::new(&request, ks_allocator::pool::SystemMemory::NON_PAGED)
        .expect("pool memory")
}
