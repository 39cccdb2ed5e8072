//! Several threads at DISPATCH_LEVEL on one pool: frames allocated on one thread and freed on
//! another, and both threads allocating and freeing, on one processor's shard or each on its
//! own (the host's simulated processors). A frame must never be handed out twice, and the
//! counters must balance at the end.

extern crate ks_host;

use std::{
    collections::HashMap,
    ptr::NonNull,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread,
};

use ks_allocator::FramePool;
use ks_host::{Session, processor};

mod common;
use common::{Frame, system_pool};

const FRAMES: u32 = 8;

/// Operations per thread; fewer in unoptimised builds.
fn rounds() -> usize {
    if cfg!(debug_assertions) { 60_000 } else { 600_000 }
}

/// A pool and, per frame, a flag "handed out" that every allocation sets and every free clears,
/// each checking the previous value.
struct Checked {
    pool: FramePool,
    index: HashMap<usize, usize>,
    out: Vec<AtomicBool>,
    failed: AtomicU64,
}

impl Checked {
    fn new(frames: u32) -> Self {
        let pool = system_pool(frames, 4096, 0x3F);
        let all: Vec<NonNull<u8>> = std::iter::from_fn(|| pool.allocate()).collect();
        let index = all.iter().enumerate().map(|(i, f)| (f.as_ptr() as usize, i)).collect();
        for frame in all {
            pool.free(frame).unwrap();
        }
        let out = (0..frames).map(|_| AtomicBool::new(false)).collect();
        // The `from_fn` above ended on one failed allocation.
        Self { pool, index, out, failed: AtomicU64::new(1) }
    }

    fn allocate(&self) -> Option<NonNull<u8>> {
        let Some(frame) = self.pool.allocate() else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let slot = self.index[&(frame.as_ptr() as usize)];
        assert!(!self.out[slot].swap(true, Ordering::AcqRel), "frame {slot} handed out twice");
        // Touch the frame: the consumer owns all of it.
        // SAFETY: the pool handed out 4096 writable bytes.
        unsafe { frame.as_ptr().write_bytes(u8::try_from(slot).unwrap(), 4096) };
        Some(frame)
    }

    fn free(&self, frame: NonNull<u8>) {
        let slot = self.index[&(frame.as_ptr() as usize)];
        // SAFETY: we own the frame until it is freed below.
        let first = unsafe { frame.as_ptr().read() };
        assert_eq!(usize::from(first), slot, "frame {slot} was written by someone else");
        assert!(self.out[slot].swap(false, Ordering::AcqRel), "frame {slot} freed while not out");
        self.pool.free(frame).unwrap();
    }

    fn check_balanced(&self) {
        let stats = self.pool.stats();
        assert_eq!(stats.frames_outstanding, 0);
        assert_eq!(stats.frames_free, FRAMES);
        assert_eq!(stats.allocations, stats.frees);
        assert_eq!(stats.failed_allocations, self.failed.load(Ordering::Relaxed));
        assert_eq!(stats.bad_frees.total(), 0);
        assert!(stats.high_water <= FRAMES);
    }
}

#[test]
fn frames_allocated_on_one_thread_are_freed_on_another() {
    let _host = Session::begin();
    processor::set_active(2);
    let checked = Checked::new(FRAMES);
    assert_eq!(checked.pool.shards(), 2);
    let (to_consumer, from_producer) = mpsc::sync_channel::<Frame>(4);
    thread::scope(|scope| {
        scope.spawn(|| {
            let _dispatch = ks_host::irql::raise(ks_host::irql::DISPATCH_LEVEL);
            let _on = processor::bind(0);
            let mut sent = 0;
            while sent < rounds() {
                match checked.allocate() {
                    Some(frame) => {
                        to_consumer.send(Frame(frame)).unwrap();
                        sent += 1;
                    }
                    None => thread::yield_now(),
                }
            }
            drop(to_consumer);
        });
        scope.spawn(|| {
            let _dispatch = ks_host::irql::raise(ks_host::irql::DISPATCH_LEVEL);
            let _on = processor::bind(1);
            let mut received = 0;
            for Frame(frame) in from_producer {
                checked.free(frame);
                received += 1;
            }
            assert_eq!(received, rounds());
        });
    });
    checked.check_balanced();
    // The frames `Checked::new` took once to learn their addresses, then every round.
    assert_eq!(checked.pool.stats().allocations, u64::from(FRAMES) + rounds() as u64);
}

/// Threads that each allocate and free, holding up to three frames so that they keep running
/// the pool dry; each thread on processor `on(thread)`.
fn allocate_and_free_concurrently(threads: usize, on: impl Fn(usize) -> u32 + Sync) {
    let checked = Checked::new(FRAMES);
    thread::scope(|scope| {
        for seed in 0..threads {
            let (checked, on) = (&checked, &on);
            scope.spawn(move || {
                let _dispatch = ks_host::irql::raise(ks_host::irql::DISPATCH_LEVEL);
                let _on = processor::bind(on(seed));
                let mut held = Vec::new();
                let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ seed as u64;
                for _ in 0..rounds() {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    if held.len() < 3 && !state.is_multiple_of(3) {
                        if let Some(frame) = checked.allocate() {
                            held.push(frame);
                        }
                    } else if let Some(frame) = held.pop() {
                        checked.free(frame);
                    }
                }
                for frame in held {
                    checked.free(frame);
                }
            });
        }
    });
    checked.check_balanced();
}

fn threads() -> usize {
    thread::available_parallelism().map_or(2, usize::from).clamp(2, 4)
}

#[test]
fn threads_allocate_and_free_concurrently_in_one_shard() {
    let _host = Session::begin();
    processor::set_active(4);
    allocate_and_free_concurrently(threads(), |_| 0);
}

#[test]
fn threads_allocate_and_free_concurrently_each_on_its_own_processor() {
    let _host = Session::begin();
    let threads = threads();
    // Two frames a shard for four threads: every thread also takes from the others' shards.
    processor::set_active(u32::try_from(threads).unwrap());
    allocate_and_free_concurrently(threads, |thread| u32::try_from(thread).unwrap());
}

/// A 16-processor machine, so the 8-frame pool has a shard per frame: processors 0 and 8 share
/// home shard 0, processor 13 is at home in shard 5.
#[test]
fn threads_allocate_and_free_concurrently_more_processors_than_shards() {
    let _host = Session::begin();
    processor::set_active(16);
    assert_eq!(Checked::new(FRAMES).pool.shards(), 8);
    allocate_and_free_concurrently(3, |thread| [0, 8, 13][thread]);
}

#[test]
fn racing_double_frees_free_exactly_once() {
    let _host = Session::begin();
    let checked = Checked::new(FRAMES);
    let rounds = rounds() / 20;
    for _ in 0..rounds {
        let frame = checked.pool.allocate().unwrap();
        let frame = Frame(frame);
        let results: Vec<bool> = thread::scope(|scope| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let pool = &checked.pool;
                    scope.spawn(move || pool.free(frame.get()).is_ok())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "exactly one free wins");
    }
    let stats = checked.pool.stats();
    assert_eq!(stats.bad_frees.double, rounds as u64);
    assert_eq!(stats.frames_free, FRAMES);
    // Reports are rate limited in release builds and go to the host's capture in debug builds.
    let _ = ks_host::debug::take_output();
}
