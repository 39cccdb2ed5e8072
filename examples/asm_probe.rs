extern crate ks_host;
use std::ptr::NonNull;
use ks_allocator::{FramePool, PoolConfig, framing::{Framing, OptionFlags, PoolType}, pool::{FRAME_TAG, SystemMemory}};
#[inline(never)]
#[unsafe(no_mangle)]
pub fn probe_allocate(pool: &FramePool) -> Option<NonNull<u8>> { pool.allocate() }
#[inline(never)]
#[unsafe(no_mangle)]
pub fn probe_free(pool: &FramePool, f: NonNull<u8>) -> bool { pool.free(f).is_ok() }
fn main() {
    let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 8, 4096, 0xFFF);
    let pool = FramePool::new(&framing, SystemMemory::non_paged(FRAME_TAG), PoolConfig::DEFAULT).unwrap();
    let f = probe_allocate(&pool).unwrap();
    println!("{}", probe_free(&pool, f));
}
