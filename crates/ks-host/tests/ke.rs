//! The host's kernel timers and DPCs: periodic expiry at DISPATCH_LEVEL, cancel, flush, one DPC
//! at a time, and the checks on timers left set or freed while set.

use std::{
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
    time::{Duration, Instant},
};

use ks_host::Session;
use ks_sys::{KDPC, KTIMER, LARGE_INTEGER, PVOID};

/// What a driver keeps for a periodic DPC, with counters the DPC updates.
#[repr(C)]
struct Ticker {
    timer: KTIMER,
    dpc: KDPC,
    ticks: AtomicU32,
    inside: AtomicBool,
    overlapped: AtomicBool,
    irql_ok: AtomicBool,
    delay: Duration,
}

unsafe extern "C" fn tick(_dpc: *mut KDPC, context: PVOID, _a: PVOID, _b: PVOID) {
    // SAFETY: the context is the Ticker the test keeps alive until the DPCs are flushed.
    let ticker = unsafe { &*context.cast::<Ticker>() };
    if ticker.inside.swap(true, Ordering::SeqCst) {
        ticker.overlapped.store(true, Ordering::SeqCst);
    }
    if ks_host::irql::current() != ks_host::irql::DISPATCH_LEVEL {
        ticker.irql_ok.store(false, Ordering::SeqCst);
    }
    std::thread::sleep(ticker.delay);
    ticker.ticks.fetch_add(1, Ordering::SeqCst);
    ticker.inside.store(false, Ordering::SeqCst);
}

fn ticker(delay: Duration) -> Box<Ticker> {
    let mut ticker = Box::new(Ticker {
        // SAFETY: KTIMER and KDPC are plain data; all zero is their state before initialisation.
        timer: unsafe { std::mem::zeroed() },
        // SAFETY: as above.
        dpc: unsafe { std::mem::zeroed() },
        ticks: AtomicU32::new(0),
        inside: AtomicBool::new(false),
        overlapped: AtomicBool::new(false),
        irql_ok: AtomicBool::new(true),
        delay,
    });
    let context: PVOID = (&raw mut *ticker).cast();
    ks_host::ke::KeInitializeTimerEx(&raw mut ticker.timer, ks_sys::NotificationTimer);
    // SAFETY: a writable KDPC inside the ticker.
    unsafe { ks_host::ke::KeInitializeDpc(&raw mut ticker.dpc, Some(tick), context) };
    ticker
}

fn relative(duration: Duration) -> LARGE_INTEGER {
    let units = i64::try_from(duration.as_nanos() / 100).unwrap();
    LARGE_INTEGER { QuadPart: -units }
}

fn wait_for(ticks: &AtomicU32, at_least: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while ticks.load(Ordering::SeqCst) < at_least {
        assert!(Instant::now() < deadline, "only {} ticks", ticks.load(Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_periodic_timer_queues_its_dpc_at_dispatch_level_until_cancelled() {
    let _host = Session::begin();
    ks_host::ke::set_time_scale(10.0); // 33 ms periods pass in 3.3 ms
    let mut ticker = ticker(Duration::ZERO);
    let timer = &raw mut ticker.timer;
    let dpc = &raw mut ticker.dpc;
    assert_eq!(ks_host::ke::KeSetTimerEx(timer, relative(Duration::from_millis(33)), 33, dpc), 0);
    wait_for(&ticker.ticks, 10);
    assert_eq!(ks_host::ke::KeCancelTimer(timer), 1, "it was set");
    assert_eq!(ks_host::ke::KeCancelTimer(timer), 0, "no longer set");
    ks_host::ke::KeFlushQueuedDpcs();
    let after = ticker.ticks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(ticker.ticks.load(Ordering::SeqCst), after, "no tick after cancel and flush");
    assert!(ticker.irql_ok.load(Ordering::SeqCst), "DPCs run at DISPATCH_LEVEL");
}

#[test]
fn a_dpc_never_runs_concurrently_with_itself_and_flush_waits_for_it() {
    let _host = Session::begin();
    // Expiries every millisecond, each DPC taking 5 ms: the DPC is queued at most once at a
    // time and runs one at a time.
    let mut ticker = ticker(Duration::from_millis(5));
    let (timer, dpc) = (&raw mut ticker.timer, &raw mut ticker.dpc);
    ks_host::ke::KeSetTimerEx(timer, relative(Duration::from_millis(1)), 1, dpc);
    wait_for(&ticker.ticks, 4);
    ks_host::ke::KeCancelTimer(timer);
    ks_host::ke::KeFlushQueuedDpcs();
    assert!(!ticker.inside.load(Ordering::SeqCst), "flush returned while the DPC ran");
    assert!(!ticker.overlapped.load(Ordering::SeqCst), "the DPC ran concurrently with itself");
    assert_eq!(ks_host::ke::pending_dpcs(), (0, false));
}

#[test]
fn a_one_shot_timer_fires_once_and_a_reset_replaces_it() {
    let _host = Session::begin();
    let mut ticker = ticker(Duration::ZERO);
    let (timer, dpc) = (&raw mut ticker.timer, &raw mut ticker.dpc);
    assert_eq!(ks_host::ke::KeSetTimerEx(timer, relative(Duration::from_mins(1)), 0, dpc), 0);
    assert_eq!(
        ks_host::ke::KeSetTimerEx(timer, relative(Duration::from_millis(2)), 0, dpc),
        1,
        "resetting a set timer says it was set"
    );
    wait_for(&ticker.ticks, 1);
    std::thread::sleep(Duration::from_millis(20));
    ks_host::ke::KeFlushQueuedDpcs();
    assert_eq!(ticker.ticks.load(Ordering::SeqCst), 1, "one expiry, the 60 s one is gone");
    assert_eq!(ks_host::ke::KeCancelTimer(timer), 0);
}

#[test]
fn flushing_above_passive_level_is_a_violation() {
    let host = Session::begin();
    ks_host::irql::at_dispatch(|| ks_host::ke::KeFlushQueuedDpcs());
    let violations = host.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].routine, "KeFlushQueuedDpcs");
}

#[test]
fn a_timer_left_set_fails_the_session() {
    // The timer's memory outlives the session, which forgets the timer when it ends.
    let mut memory: Option<Box<Ticker>> = None;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _host = Session::begin();
        let ticker = memory.insert(ticker(Duration::ZERO));
        let (timer, dpc) = (&raw mut ticker.timer, &raw mut ticker.dpc);
        ks_host::ke::KeSetTimerEx(timer, relative(Duration::from_mins(1)), 0, dpc);
    }));
    let message = result.expect_err("the session reports the timer");
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("1 kernel timer(s) still set"), "{text}");
}

#[test]
fn freeing_pool_that_holds_a_set_timer_is_a_violation() {
    let host = Session::begin();
    let block = ks_host::pool::ExAllocatePoolWithTag(ks_sys::NonPagedPoolNx, 256, 0x7453_6554);
    let timer = block.cast::<KTIMER>();
    ks_host::ke::KeInitializeTimerEx(timer, ks_sys::NotificationTimer);
    ks_host::ke::KeSetTimerEx(timer, relative(Duration::from_mins(1)), 0, std::ptr::null_mut());
    ks_host::pool::ExFreePoolWithTag(block, 0x7453_6554);
    let violations = host.take_violations();
    assert!(
        violations
            .iter()
            .any(|v| v.detail.contains("holds the timer") && v.detail.contains("still set")),
        "{violations:?}"
    );
    ks_host::ke::KeCancelTimer(timer);
}
