//! Model checking of the frame pool's free map with loom: every interleaving (up to the
//! preemption bound) of concurrent allocations, frees and double frees.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release --test pool_loom` (the `.ci/run`
//! script does, with `LOOM_MAX_PREEMPTIONS=3`).

#![cfg(loom)]

extern crate ks_host;

use ks_allocator::{FramePool, loom_processors, pool::BadFree};
use loom::{sync::Arc, thread};

mod common;
use common::{Frame, system_pool};

fn pool(frames: u32) -> Arc<FramePool> {
    Arc::new(system_pool(frames, 64, 0xF))
}

/// A model whose set-up takes every frame of a two-word pool: each of its atomic operations is
/// a branch point to loom, so the bound on branches is raised (the preemption bound, which
/// limits the interleavings explored, is unchanged).
fn many_branches() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 100_000;
    builder
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

/// A pool of two free-map words, every frame out: one thread frees the last frame into its
/// emptied word while another's allocation finds every word empty and clears the summary. The
/// frame is never hidden: the allocation gets it, or a later one does. (The summary's rule, in
/// the pool's module documentation.)
#[test]
fn a_free_racing_a_search_is_never_hidden() {
    many_branches().check(|| {
        let pool = pool(65);
        let frames: Vec<Frame> = (0..65).map(|_| Frame(pool.allocate().unwrap())).collect();
        let last = frames[64];
        let other = Arc::clone(&pool);
        let handle = thread::spawn(move || other.free(last.get()).unwrap());
        let mine = pool.allocate();
        handle.join().unwrap();
        let found = mine.or_else(|| pool.allocate());
        assert_eq!(found, Some(last.get()), "the freed frame is found");
        for frame in &frames {
            pool.free(frame.get()).unwrap();
        }
        assert_eq!(pool.stats().frames_free, 65);
    });
}

/// Two frees into two emptied words race a search: both frames are found afterwards.
#[test]
fn two_frees_racing_a_search_are_both_found() {
    many_branches().check(|| {
        let pool = pool(65);
        let frames: Vec<Frame> = (0..65).map(|_| Frame(pool.allocate().unwrap())).collect();
        let (low, high) = (frames[3], frames[64]);
        let other = Arc::clone(&pool);
        let handle = thread::spawn(move || {
            other.free(high.get()).unwrap();
            other.free(low.get()).unwrap();
        });
        let mine = pool.allocate();
        handle.join().unwrap();
        let mut found: Vec<_> = mine.into_iter().collect();
        found.extend(std::iter::from_fn(|| pool.allocate()));
        found.sort();
        let mut expected = vec![low.get(), high.get()];
        expected.sort();
        assert_eq!(found, expected);
        for frame in &frames {
            pool.free(frame.get()).unwrap();
        }
    });
}

/// A pool of two frames on a two-processor machine: one shard per frame.
fn sharded_pool() -> Arc<FramePool> {
    loom_processors::set_active(2);
    let pool = pool(2);
    assert_eq!(pool.shards(), 2);
    pool
}

/// Threads on two processors take the frames of their own shards, and when a thread's shard is
/// empty it takes from the other: of three allocations on two frames exactly two succeed,
/// never with the same frame, whatever the interleaving.
#[test]
fn threads_on_two_shards_take_and_steal_distinct_frames() {
    loom::model(|| {
        let pool = sharded_pool();
        let other = Arc::clone(&pool);
        let handle = thread::spawn(move || {
            loom_processors::run_on(1);
            let first = other.allocate().map(Frame);
            let second = other.allocate().map(Frame);
            (first, second)
        });
        let mine = pool.allocate().map(Frame);
        let (first, second) = handle.join().unwrap();
        let got: Vec<Frame> = [mine, first, second].into_iter().flatten().collect();
        assert_eq!(got.len(), 2, "two frames, three allocations: {got:?}");
        assert_ne!(got[0], got[1], "a frame handed out twice");
        let stats = pool.stats();
        assert_eq!((stats.allocations, stats.failed_allocations, stats.frames_free), (2, 1, 0));
        for frame in got {
            pool.free(frame.get()).unwrap();
        }
        assert_eq!(pool.stats().frames_free, 2);
    });
}

/// A free into shard 0 on processor 0 races an allocation on processor 1, whose home shard is
/// empty: the allocation takes the freed frame from the other shard or finds none, and then the
/// frame is free.
#[test]
fn a_free_on_one_processor_races_a_steal_on_another() {
    loom::model(|| {
        let pool = sharded_pool();
        let frames: Vec<Frame> = (0..2).map(|_| Frame(pool.allocate().unwrap())).collect();
        let other = Arc::clone(&pool);
        let handle = thread::spawn(move || {
            loom_processors::run_on(1);
            other.allocate().map(Frame)
        });
        pool.free(frames[0].get()).unwrap();
        let stolen = handle.join().unwrap();
        match stolen {
            Some(frame) => {
                assert_eq!(frame, frames[0], "only frame 0 was free");
                assert_eq!(pool.stats().frames_free, 0);
                pool.free(frame.get()).unwrap();
            }
            None => assert_eq!(pool.stats().frames_free, 1),
        }
        pool.free(frames[1].get()).unwrap();
        assert_eq!(pool.stats().frames_free, 2);
    });
}

/// Two processors free the same frame at once: one free counts, the other is the double free,
/// whichever shard the freeing threads call home.
#[test]
fn racing_double_frees_on_two_processors() {
    loom::model(|| {
        let pool = sharded_pool();
        let frame = Frame(pool.allocate().unwrap());
        let other = Arc::clone(&pool);
        let handle = thread::spawn(move || {
            loom_processors::run_on(1);
            other.free(frame.get())
        });
        let mine = pool.free(frame.get());
        let theirs = handle.join().unwrap();
        assert!(mine.is_ok() != theirs.is_ok(), "exactly one free counts");
        assert_eq!(mine.err().or(theirs.err()), Some(BadFree::Double { frame: 0 }));
        assert_eq!(pool.stats().frames_free, 2);
    });
}
