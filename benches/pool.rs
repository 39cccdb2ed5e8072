//! Frame pool benchmarks: our pool against what a driver author would use instead, in one run,
//! reported as ratios to a bare compare-and-swap pair and to our pool.
//!
//! Scenarios:
//! - (a) one thread, allocate + free pairs on a warm 8-frame pool, 4 KiB and 1 MiB frames;
//! - (b) the capture pattern: a producer thread allocates and hands frames through a small ring
//!   to a consumer thread that frees them (time per frame);
//! - (c) two threads both doing pairs on one pool (time per pair, both threads together);
//! - (d) create a pool, take and touch every frame, free them, destroy the pool;
//! - (e) our pool as it grows: with 2, 64, 256 and 1024 frames, the pair on an idle pool, the
//!   pair with one frame left free (the last: the worst place for a search), and a failed
//!   allocation on an exhausted pool, each as a ratio to the idle pair of the same size.
//!
//! Each thread of (b) and (c) is pinned to a core of its own and put on the matching simulated
//! processor (the producer and the first thread on 0, the consumer and the second on 1), as
//! threads on two CPUs are on Windows; the host simulates as many processors as the machine has
//! cores, at least two here.
//!
//! Contenders: our `FramePool` called directly (spread over a shard per processor),
//! `ours-shared` (the same pool built as on a one-processor machine: one free map all threads
//! share), through the `KSALLOCATOR_DISPATCH` function
//! pointers as KS calls them (`ours-table`), and through the host's model of AVStream calling
//! them (`ours-dispatch`, with the host's IRQL checks); `crossbeam_queue::ArrayQueue` as a free list; the `heapless` object pool (a Treiber
//! stack); a `Mutex<Vec>` free list; a Treiber stack on a 128-bit CAS (the model of the
//! interlocked SLIST behind Windows lookaside lists); `std::alloc` of an aligned frame; and a
//! bare CAS pair on one word, the floor.
//!
//! Run with `cargo bench --bench pool`; the table is printed at the end.

extern crate ks_host;

use std::{
    alloc::Layout,
    fmt::Write as _,
    hint::black_box,
    path::PathBuf,
    ptr::NonNull,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use criterion::Criterion;
use crossbeam_queue::ArrayQueue;
use ks_allocator::{
    AllocatorRequest, DEFAULT_DISPATCH, FramePool, PinConstraints, PoolConfig,
    framing::{Framing, OptionFlags, PoolType},
    pool::SystemMemory,
};
use ks_host::ks::DispatchAllocator;
use portable_atomic::AtomicU128;

const FRAMES: usize = 8;
const SIZES: [(usize, &str); 2] = [(4096, "4KiB"), (1 << 20, "1MiB")];

/// A free list of frames, as each contender provides one.
trait FreeList: Sync {
    fn take(&self) -> Option<NonNull<u8>>;
    fn give(&self, frame: NonNull<u8>);
}

fn framing(frame_size: usize) -> Framing {
    let frames = u32::try_from(FRAMES).unwrap();
    let frame_size = u32::try_from(frame_size).unwrap();
    Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, frames, frame_size, 0xFFF)
}

/// Frames for the contenders that only manage a list: one aligned block.
struct Frames {
    block: NonNull<u8>,
    layout: Layout,
    size: usize,
}

// SAFETY: `Frames` owns its block; the free lists hand its frames to one owner at a time.
unsafe impl Send for Frames {}
// SAFETY: as above; `Frames` itself is never mutated after creation.
unsafe impl Sync for Frames {}

impl Frames {
    fn new(size: usize) -> Self {
        let layout = Layout::from_size_align(size * FRAMES, 4096).unwrap();
        // SAFETY: non-zero size.
        let block = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) }).unwrap();
        Self { block, layout, size }
    }
    fn all(&self) -> impl Iterator<Item = NonNull<u8>> + '_ {
        (0..FRAMES).map(|i| NonNull::new(self.block.as_ptr().wrapping_add(i * self.size)).unwrap())
    }
}

impl Drop for Frames {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { std::alloc::dealloc(self.block.as_ptr(), self.layout) };
    }
}

struct Ours(FramePool);
impl FreeList for Ours {
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        self.0.allocate()
    }
    #[inline]
    fn give(&self, frame: NonNull<u8>) {
        let _ = self.0.free(frame);
    }
}

/// The default allocator through its `KSALLOCATOR_DISPATCH` function pointers called directly,
/// as KS calls them on Windows: the C table's own cost, without the host's checks.
struct ViaTable {
    allocator: DispatchAllocator,
    allocate: unsafe extern "C" fn(ks_sys::PVOID) -> ks_sys::PVOID,
    free: unsafe extern "C" fn(ks_sys::PVOID, ks_sys::PVOID),
}
impl ViaTable {
    fn new(frame_size: usize) -> Self {
        let ViaDispatch(allocator) = ViaDispatch::new(frame_size);
        Self {
            allocator,
            allocate: DEFAULT_DISPATCH.Allocate.unwrap(),
            free: DEFAULT_DISPATCH.Free.unwrap(),
        }
    }
}
impl FreeList for ViaTable {
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        // SAFETY: the live context InitializeAllocator returned, not yet deleted.
        NonNull::new(unsafe { (self.allocate)(self.allocator.context()) }.cast())
    }
    #[inline]
    fn give(&self, frame: NonNull<u8>) {
        // SAFETY: as above; a frame of this allocator.
        unsafe { (self.free)(self.allocator.context(), frame.as_ptr().cast()) };
    }
}

/// The default allocator through its `KSALLOCATOR_DISPATCH` function pointers, driven by the
/// host as AVStream drives it (each call also reads the thread's simulated IRQL).
struct ViaDispatch(DispatchAllocator);
impl ViaDispatch {
    fn new(frame_size: usize) -> Self {
        // SAFETY: a NULL pin (no constraints) and the library's own table.
        let allocator = unsafe {
            DispatchAllocator::initialize(
                DEFAULT_DISPATCH,
                std::ptr::null_mut(),
                &framing(frame_size).to_raw(),
            )
        };
        Self(allocator.unwrap())
    }
}
impl FreeList for ViaDispatch {
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        self.0.allocate()
    }
    #[inline]
    fn give(&self, frame: NonNull<u8>) {
        self.0.free(frame);
    }
}

struct Queue(ArrayQueue<usize>, #[expect(dead_code)] Frames);
impl Queue {
    fn new(size: usize) -> Self {
        let frames = Frames::new(size);
        let queue = ArrayQueue::new(FRAMES);
        frames.all().for_each(|f| queue.push(f.as_ptr() as usize).unwrap());
        Self(queue, frames)
    }
}
impl FreeList for Queue {
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        self.0.pop().and_then(|a| NonNull::new(a as *mut u8))
    }
    #[inline]
    fn give(&self, frame: NonNull<u8>) {
        let _ = self.0.push(frame.as_ptr() as usize);
    }
}

struct MutexVec(Mutex<Vec<usize>>, #[expect(dead_code)] Frames);
impl MutexVec {
    fn new(size: usize) -> Self {
        let frames = Frames::new(size);
        let list = frames.all().map(|f| f.as_ptr() as usize).collect();
        Self(Mutex::new(list), frames)
    }
}
impl FreeList for MutexVec {
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        self.0.lock().unwrap().pop().and_then(|a| NonNull::new(a as *mut u8))
    }
    #[inline]
    fn give(&self, frame: NonNull<u8>) {
        self.0.lock().unwrap().push(frame.as_ptr() as usize);
    }
}

/// A Treiber stack whose head is (pointer, tag) in one 128-bit word, with the link stored in the
/// free frame itself: how `InterlockedPushEntrySList` / `InterlockedPopEntrySList` work.
struct Slist(AtomicU128, Frames);
impl Slist {
    fn new(size: usize) -> Self {
        let frames = Frames::new(size);
        let list = Self(
            AtomicU128::new(0),
            Frames { block: frames.block, layout: frames.layout, size: frames.size },
        );
        std::mem::forget(frames);
        let all: Vec<_> = list.1.all().collect();
        for frame in all {
            list.give(frame);
        }
        list
    }
    fn link(frame: u64) -> &'static AtomicU64 {
        // SAFETY: frames are 4096-aligned blocks of this benchmark that live as long as the list;
        // the first word of a free frame is its link.
        unsafe { &*(frame as *const AtomicU64) }
    }
}
impl FreeList for Slist {
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        let mut head = self.0.load(Ordering::Acquire);
        loop {
            #[expect(clippy::cast_possible_truncation, reason = "splitting the 128-bit head")]
            let (frame, tag) = (head as u64, (head >> 64) as u64);
            if frame == 0 {
                return None;
            }
            let next = Self::link(frame).load(Ordering::Relaxed);
            let new = u128::from(next) | (u128::from(tag.wrapping_add(1)) << 64);
            match self.0.compare_exchange_weak(head, new, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return NonNull::new(frame as *mut u8),
                Err(now) => head = now,
            }
        }
    }
    #[inline]
    fn give(&self, frame: NonNull<u8>) {
        let address = frame.as_ptr() as u64;
        let mut head = self.0.load(Ordering::Relaxed);
        loop {
            #[expect(clippy::cast_possible_truncation, reason = "the pointer half of the head")]
            Self::link(address).store(head as u64, Ordering::Relaxed);
            let new = u128::from(address) | (((head >> 64) + 1) << 64);
            match self.0.compare_exchange_weak(head, new, Ordering::Release, Ordering::Relaxed) {
                Ok(_) => return,
                Err(now) => head = now,
            }
        }
    }
}

/// The heapless pool of frame slot numbers.
mod heapless_frames {
    heapless::object_pool!(HeaplessFrames: usize);
}
use heapless_frames::HeaplessFrames;

/// The heapless object pool holding frame addresses (its blocks are global, made once).
struct Heapless {
    frames: Frames,
}
impl Heapless {
    fn new(size: usize) -> Self {
        use heapless::pool::object::ObjectBlock;
        static MANAGED: std::sync::Once = std::sync::Once::new();
        let frames = Frames::new(size);
        MANAGED.call_once(|| {
            for slot in 0..FRAMES {
                let block: &'static mut ObjectBlock<usize> =
                    Box::leak(Box::new(ObjectBlock::new(slot)));
                HeaplessFrames.manage(block);
            }
        });
        Self { frames }
    }
}
thread_local! {
    static HELD: std::cell::RefCell<Vec<heapless::pool::object::Object<HeaplessFrames>>> = const { std::cell::RefCell::new(Vec::new()) };
}
impl FreeList for Heapless {
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        let object = HeaplessFrames.request()?;
        // The object's value names a frame slot; keep the object until `give`.
        let frame = self.frames.block.as_ptr().wrapping_add(*object * self.frames.size);
        HELD.with(|held| held.borrow_mut().push(object));
        NonNull::new(frame)
    }
    #[inline]
    fn give(&self, _frame: NonNull<u8>) {
        HELD.with(|held| drop(held.borrow_mut().pop()));
    }
}

struct StdAlloc(Layout);
impl FreeList for StdAlloc {
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        // SAFETY: non-zero size.
        NonNull::new(unsafe { std::alloc::alloc(self.0) })
    }
    #[inline]
    fn give(&self, frame: NonNull<u8>) {
        // SAFETY: allocated by `take` with this layout.
        unsafe { std::alloc::dealloc(frame.as_ptr(), self.0) };
    }
}

/// The floor: one successful compare-and-swap to take, one to give back.
struct CasPair(AtomicU64);
impl FreeList for CasPair {
    #[inline]
    fn take(&self) -> Option<NonNull<u8>> {
        let current = self.0.load(Ordering::Relaxed);
        let _ = self.0.compare_exchange(
            current,
            current.wrapping_add(1),
            Ordering::Acquire,
            Ordering::Relaxed,
        );
        NonNull::new(std::ptr::from_ref(&self.0).cast_mut().cast())
    }
    #[inline]
    fn give(&self, _frame: NonNull<u8>) {
        let current = self.0.load(Ordering::Relaxed);
        let _ = self.0.compare_exchange(
            current,
            current.wrapping_add(1),
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}

fn ours(size: usize) -> Ours {
    let request =
        AllocatorRequest::new(&framing(size), &PinConstraints::NONE, &PoolConfig::DEFAULT).unwrap();
    Ours(FramePool::new(&request, SystemMemory::NON_PAGED).unwrap())
}

/// Our pool as a one-processor machine builds it: one free map every thread shares.
fn ours_shared(size: usize) -> Ours {
    let processors = ks_host::processor::active();
    ks_host::processor::set_active(1);
    let pool = ours(size);
    ks_host::processor::set_active(processors);
    assert_eq!(pool.0.shards(), 1);
    pool
}

/// Every contender for frames of `size`, named.
fn contenders(size: usize) -> Vec<(&'static str, Box<dyn FreeList>)> {
    vec![
        ("cas-pair", Box::new(CasPair(AtomicU64::new(0)))),
        ("ours", Box::new(ours(size))),
        ("ours-shared", Box::new(ours_shared(size))),
        ("ours-table", Box::new(ViaTable::new(size))),
        ("ours-dispatch", Box::new(ViaDispatch::new(size))),
        ("array-queue", Box::new(Queue::new(size))),
        ("heapless", Box::new(Heapless::new(size))),
        ("mutex-vec", Box::new(MutexVec::new(size))),
        ("slist-cas128", Box::new(Slist::new(size))),
        ("std-alloc", Box::new(StdAlloc(Layout::from_size_align(size, 4096).unwrap()))),
    ]
}

/// Pins the calling thread to core `core` of this machine when it has one, so that the two
/// threads of the hand-off and contention scenarios run on two cores and stay there (the
/// scheduler moving them, or putting both on one core, is most of the spread between runs).
fn pin_to_core(core: usize) {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    if let Some(id) = cores.get(core) {
        core_affinity::set_for_current(*id);
    }
}

/// Raises the calling thread to DISPATCH_LEVEL on the host, as a DPC runs, so that
/// `ours-dispatch` pays the host's IRQL bookkeeping once per thread, not once per call; and
/// puts it on the host's simulated processor `processor`, as a thread of its own CPU (our pool
/// starts its allocations at that processor's shard).
fn as_a_dpc_on(processor: u32) -> (ks_host::irql::IrqlGuard, ks_host::processor::Binding) {
    (ks_host::irql::raise(ks_host::irql::DISPATCH_LEVEL), ks_host::processor::bind(processor))
}

fn single_thread(c: &mut Criterion) {
    for (size, label) in SIZES {
        let mut group = c.benchmark_group(format!("a-pair-{label}"));
        let contenders = contenders(size);
        // Created at PASSIVE_LEVEL above, used at DISPATCH_LEVEL, deleted at PASSIVE_LEVEL again
        // (the guard drops first).
        let _dpc = as_a_dpc_on(0);
        for (name, list) in &contenders {
            group.bench_function(*name, |b| {
                b.iter(|| {
                    let frame = list.take().unwrap();
                    black_box(frame);
                    list.give(frame);
                });
            });
        }
        group.finish();
    }
}

/// The share of the machine's CPU time that other processes used over half a second in which
/// this one slept, from `/proc/stat`; `None` where that file does not exist.
fn others_busy() -> Option<f64> {
    fn sample() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|line| line.starts_with("cpu "))?;
        let ticks: Vec<u64> =
            line.split_whitespace().skip(1).filter_map(|t| t.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal ...
        let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
        Some((ticks.iter().sum(), idle))
    }
    let (total0, idle0) = sample()?;
    thread::sleep(Duration::from_millis(500));
    let (total1, idle1) = sample()?;
    let total = total1.saturating_sub(total0);
    let idle = idle1.saturating_sub(idle0);
    #[expect(clippy::cast_precision_loss, reason = "tick counts over half a second")]
    (total > 0).then(|| (total - idle.min(total)) as f64 / total as f64)
}

/// Most CPU time others may use while the multi-thread scenarios run for their figures to mean
/// anything: two threads need two idle cores.
const BUSY_LIMIT: f64 = 0.10;

/// Why the multi-thread rows are not meaningful, if they are not: fewer than two cores, or
/// other processes using them before or after the run.
static CORES_NOT_IDLE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn check_cores_idle(when: &str) {
    let cores = thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mut problems = CORES_NOT_IDLE.lock().unwrap();
    if cores < 2 {
        problems.push(format!("only {cores} core available"));
    }
    match others_busy() {
        Some(busy) if busy > BUSY_LIMIT => problems.push(format!(
            "other processes used {:.0}% of the CPU time {when} the multi-thread scenarios",
            busy * 100.0
        )),
        Some(_) => {}
        None => problems.push("no /proc/stat to check that the cores are idle".to_owned()),
    }
}

/// Scenario (b): `frames` frames allocated on core and processor 0 and handed through a 4-slot
/// ring to core and processor 1, which frees them. The time it took.
fn hand_off(list: &dyn FreeList, frames: u64) -> Duration {
    let ring = ArrayQueue::<usize>::new(4);
    let start = Instant::now();
    thread::scope(|scope| {
        scope.spawn(|| {
            pin_to_core(0);
            let _dpc = as_a_dpc_on(0);
            for _ in 0..frames {
                let frame = loop {
                    if let Some(frame) = list.take() {
                        break frame;
                    }
                    std::hint::spin_loop();
                };
                let mut address = frame.as_ptr() as usize;
                while let Err(back) = ring.push(address) {
                    address = back;
                    std::hint::spin_loop();
                }
            }
        });
        scope.spawn(|| {
            pin_to_core(1);
            let _dpc = as_a_dpc_on(1);
            for _ in 0..frames {
                let address = loop {
                    if let Some(address) = ring.pop() {
                        break address;
                    }
                    std::hint::spin_loop();
                };
                list.give(NonNull::new(address as *mut u8).unwrap());
            }
        });
    });
    start.elapsed()
}

/// Scenario (c): `pairs` allocate + free pairs, half on core and processor 0, half on 1, at
/// once. The time it took.
fn contend(list: &dyn FreeList, pairs: u64) -> Duration {
    let per_thread = pairs.div_ceil(2);
    let start = Instant::now();
    thread::scope(|scope| {
        for processor in 0..2 {
            scope.spawn(move || {
                pin_to_core(processor as usize);
                let _dpc = as_a_dpc_on(processor);
                for _ in 0..per_thread {
                    if let Some(frame) = list.take() {
                        black_box(frame);
                        list.give(frame);
                    }
                }
            });
        }
    });
    start.elapsed()
}

/// `pairs` allocate + free pairs on one thread, core and processor 0. The time it took.
fn alone(list: &dyn FreeList, pairs: u64) -> Duration {
    thread::scope(|scope| {
        scope
            .spawn(|| {
                pin_to_core(0);
                let _dpc = as_a_dpc_on(0);
                let start = Instant::now();
                for _ in 0..pairs {
                    let frame = list.take().unwrap();
                    black_box(frame);
                    list.give(frame);
                }
                start.elapsed()
            })
            .join()
            .unwrap()
    })
}

fn producer_consumer(c: &mut Criterion) {
    let mut group = c.benchmark_group("b-producer-consumer");
    for (name, list) in contenders(4096) {
        if name == "heapless" {
            // Its objects are held per thread here, so frames cannot cross threads.
            continue;
        }
        group.bench_function(name, |b| b.iter_custom(|iters| hand_off(&*list, iters)));
    }
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("c-two-threads");
    for (name, list) in contenders(4096) {
        group.bench_function(name, |b| b.iter_custom(|iters| contend(&*list, iters)));
    }
    group.finish();
}

/// Rounds of the paired measurements.
const PAIRED_ROUNDS: usize = 21;

/// The median over [`PAIRED_ROUNDS`] rounds of `time(b) / time(a)`, the two timed back to back,
/// in turns first (so neither always runs on the caches the other left).
fn median_of(mut a: impl FnMut() -> Duration, mut b: impl FnMut() -> Duration) -> f64 {
    let mut ratios: Vec<f64> = (0..PAIRED_ROUNDS)
        .map(|round| {
            let (a, b) = if round % 2 == 0 {
                (a(), b())
            } else {
                let b = b();
                (a(), b)
            };
            b.as_secs_f64() / a.as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[PAIRED_ROUNDS / 2]
}

/// The ratios of the goals measured in pairs: each round times the two things compared back to
/// back (a few milliseconds each), and the median over the rounds is reported. On a shared
/// machine whose speed changes from one second to the next (a VM's neighbours), criterion's
/// means of each contender, taken seconds apart, can land in different regimes; a pair of
/// back-to-back runs nearly always lands in one.
fn paired(out: &mut String) {
    // Long enough (about 10 ms a run) that starting the threads is noise.
    const FRAMES_PER_RUN: u64 = 200_000;
    const PAIRS_PER_RUN: u64 = 1_000_000;
    let ours = ours(4096);
    let shared = ours_shared(4096);
    let queue = Queue::new(4096);
    writeln!(out, "\npaired, median of {PAIRED_ROUNDS} back-to-back rounds:").unwrap();
    let hand_off_ratio = |list: &dyn FreeList| {
        median_of(|| hand_off(list, FRAMES_PER_RUN), || hand_off(&queue, FRAMES_PER_RUN))
    };
    for (name, list) in [("ours", &ours as &dyn FreeList), ("ours-shared", &shared)] {
        writeln!(
            out,
            "{name}: producer/consumer throughput is {:.2}x that of ArrayQueue",
            hand_off_ratio(list)
        )
        .unwrap();
    }
    for (name, list) in
        [("ours", &ours as &dyn FreeList), ("ours-shared", &shared), ("array-queue", &queue)]
    {
        let scaling = median_of(|| contend(list, PAIRS_PER_RUN), || alone(list, PAIRS_PER_RUN));
        writeln!(
            out,
            "{name}: two threads on two CPUs do {scaling:.2}x the pairs per second of one alone"
        )
        .unwrap();
    }
}

fn touch(frame: NonNull<u8>, size: usize) {
    for page in (0..size).step_by(4096) {
        // SAFETY: `frame` has `size` writable bytes and `page < size`.
        let byte = unsafe { frame.as_ptr().add(page) };
        // SAFETY: `byte` is inside the frame.
        unsafe { byte.write_volatile(1) };
    }
}

/// Makes a fresh free list.
type Maker<'a> = &'a dyn Fn() -> Box<dyn FreeList>;

/// Creates a free list, takes every frame, touches each page, gives them back, drops the list.
fn cycle(make: Maker<'_>, size: usize) {
    let list = make();
    let mut frames = Vec::with_capacity(FRAMES);
    while frames.len() < FRAMES {
        match list.take() {
            Some(frame) => frames.push(frame),
            None => break,
        }
    }
    for frame in &frames {
        touch(*frame, size);
    }
    for frame in frames {
        list.give(frame);
    }
}

fn lifecycle(c: &mut Criterion) {
    let mut group = c.benchmark_group("d-create-touch-destroy");
    let size = 4096;
    let makers: [(&str, Maker<'_>); 5] = [
        ("ours", &|| Box::new(ours(size))),
        ("ours-dispatch", &|| Box::new(ViaDispatch::new(size))),
        ("array-queue", &|| Box::new(Queue::new(size))),
        ("mutex-vec", &|| Box::new(MutexVec::new(size))),
        ("std-alloc", &|| Box::new(StdAlloc(Layout::from_size_align(size, 4096).unwrap()))),
    ];
    for (name, make) in makers {
        group.bench_function(name, |b| b.iter(|| cycle(make, size)));
    }
    group.finish();
}

/// Pool sizes of the growth rows.
const GROWTH: [u32; 4] = [2, 64, 256, 1024];

/// Our pool of `frames` 4 KiB frames, within a budget that allows them.
fn ours_of(frames: u32) -> FramePool {
    let framing =
        Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, frames, 4096, 0xFFF);
    let config = PoolConfig::DEFAULT.with_max_frames(frames).with_max_bytes(frames as usize * 4096);
    let request = AllocatorRequest::new(&framing, &PinConstraints::NONE, &config).unwrap();
    FramePool::new(&request, SystemMemory::NON_PAGED).unwrap()
}

fn growth(c: &mut Criterion) {
    let mut group = c.benchmark_group("e-growth");
    for frames in GROWTH {
        let pool = ours_of(frames);
        group.bench_function(format!("idle-pair-{frames}"), |b| {
            b.iter(|| {
                let frame = pool.allocate().unwrap();
                pool.free(black_box(frame)).unwrap();
            });
        });
        // Every frame but the last out: each allocation has to find the last one.
        let held: Vec<NonNull<u8>> = (1..frames).map(|_| pool.allocate().unwrap()).collect();
        group.bench_function(format!("one-left-pair-{frames}"), |b| {
            b.iter(|| {
                let frame = pool.allocate().unwrap();
                pool.free(black_box(frame)).unwrap();
            });
        });
        let last = pool.allocate().unwrap();
        group.bench_function(format!("exhausted-{frames}"), |b| {
            b.iter(|| black_box(pool.allocate()));
        });
        pool.free(last).unwrap();
        for frame in held {
            pool.free(frame).unwrap();
        }
    }
    group.finish();
}

/// Reads criterion's mean estimate (ns) for `group/name`.
fn estimate(group: &str, name: &str) -> Option<f64> {
    let dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let path = dir.join("criterion").join(group).join(name).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn report() {
    let names = [
        "cas-pair",
        "ours",
        "ours-shared",
        "ours-table",
        "ours-dispatch",
        "array-queue",
        "heapless",
        "mutex-vec",
        "slist-cas128",
        "std-alloc",
    ];
    let groups = [
        "a-pair-4KiB",
        "a-pair-1MiB",
        "b-producer-consumer",
        "c-two-threads",
        "d-create-touch-destroy",
    ];
    let problems = CORES_NOT_IDLE.lock().unwrap().clone();
    let contended = |group: &str| group.starts_with("b-") || group.starts_with("c-");
    let mut out = String::new();
    writeln!(
        out,
        "\n{:<24} {:<14} {:>10} {:>9} {:>9}",
        "scenario", "contender", "ns/op", "x CAS", "x ours"
    )
    .unwrap();
    for group in groups {
        let mark = if contended(group) && !problems.is_empty() { " *" } else { "" };
        let floor = estimate("a-pair-4KiB", "cas-pair");
        let ours = estimate(group, "ours");
        for name in names {
            let Some(ns) = estimate(group, name) else { continue };
            let ratio = |base: Option<f64>| {
                base.map_or_else(|| "-".to_owned(), |b| format!("{:.2}", ns / b))
            };
            writeln!(
                out,
                "{group:<24} {name:<14} {ns:>10.2} {:>9} {:>9}{mark}",
                ratio(floor),
                ratio(ours)
            )
            .unwrap();
        }
    }
    if !problems.is_empty() {
        writeln!(
            out,
            "\n* not meaningful: {}; the contention and hand-off ratios are not given",
            problems.join("; ")
        )
        .unwrap();
        println!("{out}");
        return;
    }
    writeln!(out, "\nfrom the means above:").unwrap();
    for name in ["ours", "ours-shared", "array-queue"] {
        if let (Some(one), Some(two)) =
            (estimate("a-pair-4KiB", name), estimate("c-two-threads", name))
        {
            writeln!(
                out,
                "{name}: two threads on two CPUs do {:.2}x the pairs per second of one alone",
                one / two
            )
            .unwrap();
        }
    }
    if let (Some(ours), Some(queue)) =
        (estimate("b-producer-consumer", "ours"), estimate("b-producer-consumer", "array-queue"))
    {
        writeln!(
            out,
            "ours: producer/consumer throughput is {:.2}x that of ArrayQueue",
            queue / ours
        )
        .unwrap();
    }
    growth_report(&mut out);
    paired(&mut out);
    println!("{out}");
}

/// The growth rows: each size's one-left pair and failed allocation against its idle pair.
fn growth_report(out: &mut String) {
    writeln!(
        out,
        "
{:<10} {:>14} {:>18} {:>16}",
        "frames", "idle pair ns", "one left x idle", "exhausted x idle"
    )
    .unwrap();
    for frames in GROWTH {
        let idle = estimate("e-growth", &format!("idle-pair-{frames}"));
        let one = estimate("e-growth", &format!("one-left-pair-{frames}"));
        let none = estimate("e-growth", &format!("exhausted-{frames}"));
        let (Some(idle), Some(one), Some(none)) = (idle, one, none) else { continue };
        writeln!(out, "{frames:<10} {idle:>14.2} {:>18.2} {:>16.2}", one / idle, none / idle)
            .unwrap();
    }
}

fn main() {
    // Two threads need two processors, even on a one-core machine (whose rows are then marked).
    ks_host::processor::set_active(ks_host::processor::active().max(2));
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    single_thread(&mut criterion);
    check_cores_idle("before");
    producer_consumer(&mut criterion);
    two_threads(&mut criterion);
    check_cores_idle("after");
    lifecycle(&mut criterion);
    growth(&mut criterion);
    criterion.final_summary();
    report();
}
