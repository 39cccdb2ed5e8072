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
