//! Model checking of the frame pool's free map with loom: every interleaving (up to the
//! preemption bound) of concurrent allocations, frees and double frees.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release --test pool_loom` (the `.ci/run`
//! script does, with `LOOM_MAX_PREEMPTIONS=3`).

#![cfg(loom)]

extern crate ks_host;

use ks_allocator::{FramePool, pool::BadFree};
use loom::{sync::Arc, thread};

mod common;
use common::{Frame, system_pool};

fn pool(frames: u32) -> Arc<FramePool> {
    Arc::new(system_pool(frames, 64, 0xF))
}

/// Two threads each take a frame of a two-frame pool, write it, free it; both always succeed,
/// never share a frame, and the counters balance.
#[test]
fn two_threads_allocate_distinct_frames() {
    loom::model(|| {
        let pool = pool(2);
        let other = Arc::clone(&pool);
        let handle = thread::spawn(move || {
            let frame = other.allocate().expect("a frame is free");
            // SAFETY: the pool handed out 64 writable bytes.
            unsafe { frame.as_ptr().write_bytes(1, 64) };
            let frame = Frame(frame);
            other.free(frame.get()).unwrap();
            frame
        });
        let mine = pool.allocate().expect("a frame is free");
        // SAFETY: as above.
        unsafe { mine.as_ptr().write_bytes(2, 64) };
        let theirs = handle.join().unwrap();
        pool.free(mine).unwrap();
        let _ = theirs;
        let stats = pool.stats();
        assert_eq!((stats.allocations, stats.frees, stats.frames_free), (2, 2, 2));
        assert_eq!(stats.bad_frees.total(), 0);
    });
}

/// Two threads race for the only frame: exactly one wins; after the winner frees, the frame is
/// available again.
#[test]
fn exhaustion_is_decided_by_one_atomic() {
    loom::model(|| {
        let pool = pool(1);
        let other = Arc::clone(&pool);
        let handle = thread::spawn(move || other.allocate().map(Frame));
        let mine = pool.allocate().map(Frame);
        let theirs = handle.join().unwrap();
        assert!(mine.is_some() != theirs.is_some(), "exactly one allocation succeeds");
        let winner = mine.or(theirs).unwrap();
        assert_eq!(pool.allocate(), None);
        pool.free(winner.get()).unwrap();
        assert_eq!(pool.allocate(), Some(winner.get()));
        pool.free(winner.get()).unwrap();
        assert_eq!(pool.stats().failed_allocations, 2);
    });
}

/// Two threads free the same frame at once: exactly one free counts, the other is reported as a
/// double free, and the frame is free once.
#[test]
fn racing_double_frees() {
    loom::model(|| {
        let pool = pool(2);
        let frame = Frame(pool.allocate().unwrap());
        let other = Arc::clone(&pool);
        let handle = thread::spawn(move || other.free(frame.get()));
        let mine = pool.free(frame.get());
        let theirs = handle.join().unwrap();
        assert!(mine.is_ok() != theirs.is_ok());
        assert_eq!(mine.err().or(theirs.err()), Some(BadFree::Double { frame: 0 }));
        let stats = pool.stats();
        assert_eq!((stats.frames_free, stats.bad_frees.double), (2, 1));
    });
}

/// A free on one thread and an allocation on another: the allocation either sees the freed
/// frame or takes the other one, and never hands out a frame that is still out.
#[test]
fn free_and_allocate_race() {
    loom::model(|| {
        let pool = pool(2);
        let first = Frame(pool.allocate().unwrap());
        let other = Arc::clone(&pool);
        let handle = thread::spawn(move || other.free(first.get()).unwrap());
        let second = pool.allocate().unwrap();
        handle.join().unwrap();
        // `second` is either the other frame or `first` after its free.
        let third = pool.allocate();
        if second == first.get() {
            assert!(third.is_some() && third != Some(second));
        } else {
            assert_eq!(third, Some(first.get()));
        }
        pool.free(second).unwrap();
        if let Some(third) = third {
            pool.free(third).unwrap();
        }
        assert_eq!(pool.stats().frames_free, 2);
    });
}
