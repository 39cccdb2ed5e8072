//! Kernel timers and DPCs: `KeInitializeTimerEx`, `KeInitializeDpc`, `KeSetTimerEx`,
//! `KeCancelTimer` and `KeFlushQueuedDpcs`, on two host threads.
//!
//! A *timer thread* waits for the earliest due timer; when a timer expires it queues its DPC
//! (a DPC that is already queued is not queued twice, as `KeInsertQueueDpc` says) and, for a
//! periodic timer, sets the next due time one period after the previous one, so a late tick does
//! not shift the ones after it. A *DPC thread* runs the queued DPCs one at a time at
//! DISPATCH_LEVEL, reading the routine and context from the `KDPC` the driver initialised, as the
//! kernel does: a DPC never runs concurrently with itself (nor, here, with any other DPC). The
//! host records how long each DPC ran ([`take_dpc_durations`]) and, when it returns, writes back
//! what a device wrote by DMA from it ([`crate::dma::commit`]).
//! `KeFlushQueuedDpcs` waits until the queue is empty and no DPC is running; `KeCancelTimer`
//! returns whether the timer was set and leaves a DPC it already queued to run.
//!
//! Tests can make time pass faster ([`set_time_scale`]): due times and periods are divided by
//! the scale, and the interrupt time (`KeQueryUnbiasedInterruptTime`, and the time a timer DPC
//! receives) runs that many times faster, so a driver that computes due times from the clock sees
//! one consistent time. Freeing pool memory that holds a set timer or a queued DPC is a violation (Driver
//! Verifier catches the same), and so is a timer still set when the session ends.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    sync::{Condvar, Mutex, MutexGuard, OnceLock},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use ks_sys::{
    BOOLEAN, KDPC, LARGE_INTEGER, LONG, PKDEFERRED_ROUTINE, PKDPC, PKTIMER, PRKDPC, PVOID,
    TIMER_TYPE,
};

use crate::irql::{DISPATCH_LEVEL, PASSIVE_LEVEL};

/// One timer the driver initialised.
struct Timer {
    /// When it expires next, if set.
    due: Option<Instant>,
    /// Its period, if periodic.
    period: Option<Duration>,
    /// The DPC it queues (`KDPC` address), or 0.
    dpc: usize,
    /// Bumped at every set and cancel, so stale heap entries are ignored.
    generation: u64,
}

#[derive(Default)]
struct State {
    timers: HashMap<usize, Timer>,
    /// (due, timer address, generation) of every set timer, earliest first.
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// Queued DPCs (`KDPC` addresses) with their queueing sequence numbers, in order.
    queue: VecDeque<(usize, u64)>,
    /// The DPC running now.
    running: Option<usize>,
    /// Sequence number of the last DPC queued, and of the last one that finished.
    queued_seq: u64,
    done_seq: u64,
    scale: f64,
    /// The interrupt time's origin: a real instant and the interrupt time (100 ns units) then.
    clock: Option<(Instant, u64)>,
    /// How long each DPC ran (real time), oldest first, at most [`DPC_RECORD`] of them.
    durations: VecDeque<Duration>,
}

/// DPC durations kept at most (the oldest go first).
const DPC_RECORD: usize = 1 << 20;

impl State {
    /// The interrupt time now: 100 ns units of scaled time since the host started.
    fn interrupt_time(&mut self) -> u64 {
        let now = Instant::now();
        let (origin, at) = *self.clock.get_or_insert((now, 0));
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "100 ns ticks of a test run fit a u64 many times over"
        )]
        let elapsed = (now.duration_since(origin).as_nanos() as f64 / 100.0 * self.scale) as u64;
        at.saturating_add(elapsed)
    }

    /// Changes the scale from now on, keeping the interrupt time continuous.
    fn rescale(&mut self, scale: f64) {
        let at = self.interrupt_time();
        self.clock = Some((Instant::now(), at));
        self.scale = scale;
    }
}

struct Engine {
    state: Mutex<State>,
    /// Wakes the timer thread (a timer was set or cancelled).
    timers_changed: Condvar,
    /// Wakes the DPC thread (a DPC was queued).
    dpc_queued: Condvar,
    /// Wakes `KeFlushQueuedDpcs` (a DPC finished).
    dpc_done: Condvar,
}

static ENGINE: OnceLock<Engine> = OnceLock::new();

fn engine() -> &'static Engine {
    ENGINE.get_or_init(|| {
        let engine = Engine {
            state: Mutex::new(State { scale: 1.0, ..State::default() }),
            timers_changed: Condvar::new(),
            dpc_queued: Condvar::new(),
            dpc_done: Condvar::new(),
        };
        std::thread::Builder::new()
            .name("ks-host timers".to_owned())
            .spawn(timer_thread)
            .expect("the host starts its timer thread");
        std::thread::Builder::new()
            .name("ks-host DPCs".to_owned())
            .spawn(dpc_thread)
            .expect("the host starts its DPC thread");
        engine
    })
}

fn lock() -> MutexGuard<'static, State> {
    crate::lock(&engine().state)
}

fn timer_thread() {
    let engine = engine();
    let mut state = crate::lock(&engine.state);
    loop {
        let now = Instant::now();
        let next = state.heap.peek().map(|Reverse((due, _, _))| *due);
        match next {
            Some(due) if due <= now => {
                let Some(Reverse((_, address, generation))) = state.heap.pop() else { continue };
                let Some(timer) = state.timers.get_mut(&address) else { continue };
                if timer.generation != generation {
                    continue; // reset or cancelled since
                }
                let dpc = timer.dpc;
                match timer.period {
                    Some(period) => {
                        let next = timer.due.map_or(now, |due| due + period);
                        timer.due = Some(next);
                        state.heap.push(Reverse((next, address, generation)));
                    }
                    None => timer.due = None,
                }
                // A DPC is queued once at most; one that is running may be queued again.
                if dpc != 0 && !state.queue.iter().any(|(queued, _)| *queued == dpc) {
                    state.queued_seq += 1;
                    let seq = state.queued_seq;
                    state.queue.push_back((dpc, seq));
                    engine.dpc_queued.notify_all();
                }
            }
            Some(due) => {
                let wait = due.saturating_duration_since(now);
                state = engine
                    .timers_changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            None => {
                state = engine
                    .timers_changed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        }
    }
}

/// The fields `KeInitializeDpc` fills: the routine at 24 and the context at 32 (x64).
fn routine_field(dpc: PKDPC) -> *mut PKDEFERRED_ROUTINE {
    dpc.wrapping_byte_add(ks_sys::KDPC_DEFERRED_ROUTINE_OFFSET).cast()
}

fn context_field(dpc: PKDPC) -> *mut PVOID {
    dpc.wrapping_byte_add(ks_sys::KDPC_DEFERRED_CONTEXT_OFFSET).cast()
}

/// The routine and context `KeInitializeDpc` stored in a `KDPC`.
///
/// # Safety
///
/// `dpc` points at a live `KDPC` that `KeInitializeDpc` initialised.
unsafe fn routine_of(dpc: PKDPC) -> (PKDEFERRED_ROUTINE, PVOID) {
    // SAFETY: the field lies inside the live KDPC, aligned (this function's contract).
    let routine = unsafe { routine_field(dpc).read() };
    // SAFETY: as above.
    let context = unsafe { context_field(dpc).read() };
    (routine, context)
}

fn dpc_thread() {
    let _dispatch = crate::irql::raise(DISPATCH_LEVEL);
    let engine = engine();
    let mut state = crate::lock(&engine.state);
    loop {
        let Some((dpc, seq)) = state.queue.pop_front() else {
            state =
                engine.dpc_queued.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
            continue;
        };
        state.running = Some(dpc);
        drop(state);
        let dpc = std::ptr::with_exposed_provenance_mut::<KDPC>(dpc);
        // SAFETY: a queued DPC is live: freeing one is a violation (see `check_free`), and the
        // session waits for the queue before it ends.
        let (routine, context) = unsafe { routine_of(dpc) };
        let interrupt_time = usize::try_from(lock().interrupt_time()).unwrap_or(usize::MAX);
        let _ = crate::dma::take_overhead();
        let started = thread_cpu_time();
        if let Some(routine) = routine {
            // SAFETY: the routine `KeInitializeDpc` stored, called as the kernel calls a timer DPC:
            // the DPC, its context and the interrupt time split in two.
            unsafe {
                routine(
                    dpc,
                    context,
                    std::ptr::without_provenance_mut(interrupt_time & 0xFFFF_FFFF),
                    std::ptr::without_provenance_mut(interrupt_time >> 32),
                );
            }
        }
        // Not counted: the host's bookkeeping for the simulated bus, which a real machine does
        // not have.
        let duration =
            thread_cpu_time().saturating_sub(started).saturating_sub(crate::dma::take_overhead());
        // What a device wrote from its interrupt path lands in memory now.
        crate::dma::commit();
        state = crate::lock(&engine.state);
        if state.durations.len() == DPC_RECORD {
            state.durations.pop_front();
        }
        state.durations.push_back(duration);
        state.running = None;
        state.done_seq = seq;
        engine.dpc_done.notify_all();
    }
}

/// The CPU time the calling thread has used. A DPC's duration is measured in it: a host thread
/// can be preempted (and waits on the host's own locks), a DPC is not, so wall-clock time would
/// count what is not the DPC's work. Where the platform has no per-thread CPU clock, the wall
/// clock stands in.
pub(crate) fn thread_cpu_time() -> Duration {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    #[cfg(unix)]
    {
        let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: a valid clock id and a timespec of this frame to write.
        let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut now) };
        if status == 0 {
            let seconds = u64::try_from(now.tv_sec).unwrap_or(0);
            let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
            return Duration::new(seconds, nanos);
        }
    }
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// Makes timers run `scale` times faster than real time (due times and periods are divided by
/// it); 1.0 is real time. Affects timers set from now on.
///
/// # Panics
///
/// If `scale` is not a positive, finite number.
pub fn set_time_scale(scale: f64) {
    assert!(scale.is_finite() && scale > 0.0, "time scale {scale}");
    lock().rescale(scale);
}

/// `KeQueryUnbiasedInterruptTime`: the interrupt time, in 100 ns units, scaled as timers are
/// ([`set_time_scale`]). Any IRQL.
// SAFETY: no other symbol of a host process is named `KeQueryUnbiasedInterruptTime`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KeQueryUnbiasedInterruptTime() -> u64 {
    lock().interrupt_time()
}

/// How long each DPC ran since the session began (or the last call): the DPC thread's CPU time
/// (a host thread can be preempted, a DPC cannot), without the host's bookkeeping for the simulated bus (its views of
/// device memory and their checks, which a real machine does not have), oldest first; the record
/// is emptied.
#[must_use]
pub fn take_dpc_durations() -> Vec<Duration> {
    std::mem::take(&mut lock().durations).into()
}

/// The DPCs queued but not yet run, and whether one is running.
#[must_use]
pub fn pending_dpcs() -> (usize, bool) {
    let state = lock();
    (state.queue.len(), state.running.is_some())
}

/// Timers still set (their addresses), for the session's end check.
#[must_use]
pub fn timers_set() -> Vec<usize> {
    lock().timers.iter().filter(|(_, t)| t.due.is_some()).map(|(address, _)| *address).collect()
}

/// Forgets every timer and DPC, waiting for a running DPC first (session start and end);
/// returns how many timers were still set.
pub(crate) fn reset() -> usize {
    let Some(engine) = ENGINE.get() else {
        return 0; // no timer was ever used
    };
    let mut state = crate::lock(&engine.state);
    state.queue.clear();
    state.done_seq = state.queued_seq;
    while state.running.is_some() {
        state = engine.dpc_done.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    let set = state.timers.values().filter(|t| t.due.is_some()).count();
    state.timers.clear();
    state.heap.clear();
    state.durations.clear();
    state.rescale(1.0);
    engine.timers_changed.notify_all();
    set
}

/// Records a violation if `[address, address + bytes)` holds a set timer or a queued or running
/// DPC: the pool is about to free it.
pub(crate) fn check_free(address: usize, bytes: usize) {
    let Some(engine) = ENGINE.get() else {
        return;
    };
    let state = crate::lock(&engine.state);
    let inside = |object: usize| object >= address && object < address.saturating_add(bytes);
    if let Some(timer) = state.timers.iter().find(|(a, t)| inside(**a) && t.due.is_some()) {
        crate::verifier::report(
            "ExFreePoolWithTag",
            format!("freeing pool that holds the timer {:#x}, which is still set", timer.0),
        );
    }
    let queued = state.queue.iter().map(|(dpc, _)| dpc);
    if let Some(dpc) = queued.chain(state.running.iter()).find(|d| inside(**d)) {
        crate::verifier::report(
            "ExFreePoolWithTag",
            format!("freeing pool that holds the DPC {dpc:#x}, which is queued or running"),
        );
    }
}

/// `KeInitializeTimerEx`: registers a timer, not set. IRQL <= DISPATCH_LEVEL.
// SAFETY: no other symbol of a host process is named `KeInitializeTimerEx`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KeInitializeTimerEx(Timer: PKTIMER, Type: TIMER_TYPE) {
    const ROUTINE: &str = "KeInitializeTimerEx";
    crate::verifier::require_irql_at_most(ROUTINE, DISPATCH_LEVEL);
    if Timer.is_null()
        || !(Type == ks_sys::NotificationTimer || Type == ks_sys::SynchronizationTimer)
    {
        crate::verifier::report(ROUTINE, format!("timer {Timer:p}, type {Type}"));
        return;
    }
    let mut state = lock();
    if state.timers.get(&(Timer as usize)).is_some_and(|t| t.due.is_some()) {
        crate::verifier::report(ROUTINE, format!("{Timer:p} is initialised while set"));
    }
    state.timers.insert(Timer as usize, Timer { due: None, period: None, dpc: 0, generation: 0 });
}

/// `KeInitializeDpc`: stores the routine and context in the `KDPC`. Any IRQL.
///
/// # Safety
///
/// `Dpc` points at a writable `KDPC`.
// SAFETY: no other symbol of a host process is named `KeInitializeDpc`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KeInitializeDpc(
    Dpc: PRKDPC,
    DeferredRoutine: PKDEFERRED_ROUTINE,
    DeferredContext: PVOID,
) {
    if Dpc.is_null() {
        crate::verifier::report("KeInitializeDpc", "NULL DPC".to_owned());
        return;
    }
    if lock().queue.iter().any(|(queued, _)| *queued == Dpc as usize) {
        crate::verifier::report("KeInitializeDpc", format!("{Dpc:p} is initialised while queued"));
    }
    // SAFETY: `Dpc` is a writable KDPC (this function's contract): 64 bytes, zeroed here.
    unsafe { Dpc.write_bytes(0, 1) };
    // SAFETY: the field lies inside the KDPC, aligned.
    unsafe { routine_field(Dpc).write(DeferredRoutine) };
    // SAFETY: as above.
    unsafe { context_field(Dpc).write(DeferredContext) };
}

/// `KeSetTimerEx`: sets (or resets) a timer. IRQL <= DISPATCH_LEVEL.
// SAFETY: no other symbol of a host process is named `KeSetTimerEx`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KeSetTimerEx(
    Timer: PKTIMER,
    DueTime: LARGE_INTEGER,
    Period: LONG,
    Dpc: PKDPC,
) -> BOOLEAN {
    const ROUTINE: &str = "KeSetTimerEx";
    crate::verifier::require_irql_at_most(ROUTINE, DISPATCH_LEVEL);
    // SAFETY: QuadPart is the whole of the union.
    let due = unsafe { DueTime.QuadPart };
    let engine = engine();
    let mut state = crate::lock(&engine.state);
    let scale = state.scale;
    let now = Instant::now();
    let delay = if due < 0 {
        Duration::from_nanos(due.unsigned_abs().saturating_mul(100))
    } else {
        // Absolute: 100 ns units since 1601-01-01, 134774 days before 1970-01-01.
        let unix = Duration::from_nanos(due.unsigned_abs().saturating_mul(100))
            .saturating_sub(Duration::from_hours(134_774 * 24));
        let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        unix.saturating_sub(now_unix)
    };
    let period = u64::try_from(Period).ok().filter(|p| *p > 0).map(Duration::from_millis);
    if Period < 0 {
        crate::verifier::report(ROUTINE, format!("negative period {Period}"));
    }
    let Some(timer) = state.timers.get_mut(&(Timer as usize)) else {
        drop(state);
        crate::verifier::report(ROUTINE, format!("{Timer:p} was never initialised"));
        return 0;
    };
    let was_set = timer.due.is_some();
    let due = now + delay.div_f64(scale);
    timer.generation += 1;
    timer.due = Some(due);
    timer.period = period.map(|p| p.div_f64(scale));
    timer.dpc = Dpc.expose_provenance();
    let generation = timer.generation;
    state.heap.push(Reverse((due, Timer as usize, generation)));
    engine.timers_changed.notify_all();
    BOOLEAN::from(was_set)
}

/// `KeCancelTimer`: cancels a timer; returns whether it was set. IRQL <= DISPATCH_LEVEL.
// SAFETY: no other symbol of a host process is named `KeCancelTimer`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KeCancelTimer(Timer: PKTIMER) -> BOOLEAN {
    crate::verifier::require_irql_at_most("KeCancelTimer", DISPATCH_LEVEL);
    let mut state = lock();
    let Some(timer) = state.timers.get_mut(&(Timer as usize)) else {
        drop(state);
        crate::verifier::report("KeCancelTimer", format!("{Timer:p} was never initialised"));
        return 0;
    };
    let was_set = timer.due.take().is_some();
    timer.generation += 1;
    timer.period = None;
    BOOLEAN::from(was_set)
}

/// `KeFlushQueuedDpcs`: returns once every DPC queued before the call has run. PASSIVE_LEVEL.
// SAFETY: no other symbol of a host process is named `KeFlushQueuedDpcs`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn KeFlushQueuedDpcs() {
    if !crate::verifier::require_irql_at_most("KeFlushQueuedDpcs", PASSIVE_LEVEL) {
        return; // it would wait for itself
    }
    let engine = engine();
    let mut state = crate::lock(&engine.state);
    let target = state.queued_seq;
    while state.done_seq < target {
        state = engine.dpc_done.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}
