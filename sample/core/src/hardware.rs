//! The simulated hardware: a kernel timer whose DPC plays the frame interrupt.
//!
//! Each tick counts one frame time and asks AVStream to process the pin that streams
//! (`KsPinAttemptProcessing`); the pin's process callback then fills one frame per tick not yet
//! handled, or counts a drop when its queue has no buffer. The hardware belongs to the device:
//! made at PnP start, released at stop or removal. One pin at a time may hold it.
//!
//! Tick `n` (from 1) is due at `start + n * interval` on the interrupt-time clock
//! (`KeQueryUnbiasedInterruptTime`, 100 ns units), as avshws re-arms its timer at an absolute
//! time: each DPC sets the one-shot timer for the next tick's due time, so the frame rate is the
//! format's exactly (29.97 fps is 29.97, not the 30.3 a period truncated to 33 ms gives) and a
//! late DPC does not delay the ticks after it. Frame `n` (from 0) is the picture of the interval
//! that ends at tick `n + 1`: its presentation time is `n * interval` from the start.

use core::{
    cell::UnsafeCell,
    ptr,
    sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering},
};

use ks_sys::{KDPC, KSPIN, KTIMER, LARGE_INTEGER, PVOID};

/// The hardware's state, in non-paged pool (the timer and the DPC must not move, and the DPC
/// reads the rest at DISPATCH_LEVEL).
pub(crate) struct Hardware {
    /// Owned by the kernel once initialised; only handed over by pointer.
    timer: UnsafeCell<KTIMER>,
    dpc: UnsafeCell<KDPC>,
    /// The timer and DPC were initialised (a value dropped before that, when it could not be
    /// moved into pool, has no timer to stop).
    initialized: AtomicBool,
    /// The pin that holds the hardware, or NULL.
    pin: AtomicPtr<KSPIN>,
    /// The frame interrupt runs (set by `start`, cleared by `stop` before it cancels).
    running: AtomicBool,
    /// The interrupt time at `start`, and the frame interval (100 ns units).
    start_time: AtomicU64,
    interval: AtomicI64,
    /// Frame times elapsed since the pin started.
    ticks: AtomicU32,
    /// Frame times the pin has handled (filled or dropped).
    handled: AtomicU32,
    /// Frame times for which the pin's queue had no buffer.
    drops: AtomicU32,
}

// SAFETY: the timer and DPC are only touched by the kernel routines (which synchronise them);
// everything else is atomics.
unsafe impl Sync for Hardware {}
// SAFETY: as above; the hardware is not tied to a thread.
unsafe impl Send for Hardware {}

impl Hardware {
    /// Hardware with nothing initialised yet; [`Hardware::initialize`] must run once it is at
    /// its final address.
    pub(crate) const fn new() -> Self {
        Self {
            // SAFETY: KTIMER and KDPC are plain data; all zero is their state before
            // initialisation.
            timer: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            // SAFETY: as above.
            dpc: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            initialized: AtomicBool::new(false),
            pin: AtomicPtr::new(ptr::null_mut()),
            running: AtomicBool::new(false),
            start_time: AtomicU64::new(0),
            interval: AtomicI64::new(0),
            ticks: AtomicU32::new(0),
            handled: AtomicU32::new(0),
            drops: AtomicU32::new(0),
        }
    }

    /// Initialises the timer and the DPC. IRQL <= DISPATCH_LEVEL.
    ///
    /// # Safety
    ///
    /// `self` is at its final address (in pool) for the rest of its life, and this runs once.
    pub(crate) unsafe fn initialize(&self) {
        // SAFETY: the timer lies inside `self`, which does not move (this function's contract).
        unsafe { ks_sys::KeInitializeTimerEx(self.timer.get(), ks_sys::NotificationTimer) };
        let context: PVOID = ptr::from_ref(self).cast_mut().cast();
        // SAFETY: as above, for the DPC; its context is `self`, which outlives every DPC (the
        // drop cancels the timer and flushes the DPCs).
        unsafe { ks_sys::KeInitializeDpc(self.dpc.get(), Some(frame_interrupt), context) };
        self.initialized.store(true, Ordering::Release);
    }

    /// Gives the hardware to `pin` if no other pin holds it. PASSIVE_LEVEL.
    pub(crate) fn acquire(&self, pin: *mut KSPIN) -> bool {
        let taken = self
            .pin
            .compare_exchange(ptr::null_mut(), pin, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if taken {
            self.ticks.store(0, Ordering::Relaxed);
            self.handled.store(0, Ordering::Relaxed);
            self.drops.store(0, Ordering::Relaxed);
        }
        taken
    }

    /// Takes the hardware back from `pin`. PASSIVE_LEVEL, the timer stopped.
    pub(crate) fn release(&self, pin: *mut KSPIN) {
        let _ =
            self.pin.compare_exchange(pin, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Starts the frame interrupt, one tick every `interval` (100 ns units, at least 1), the
    /// first one interval from now. PASSIVE_LEVEL.
    pub(crate) fn start(&self, interval: i64) {
        let interval = interval.max(1);
        // SAFETY: no arguments; any IRQL.
        let now = unsafe { ks_sys::KeQueryUnbiasedInterruptTime() };
        self.start_time.store(now, Ordering::Relaxed);
        self.interval.store(interval, Ordering::Relaxed);
        self.running.store(true, Ordering::Release);
        self.arm(1, now);
    }

    /// Sets the one-shot timer for tick `tick`, due at `start + tick * interval`; at once (after
    /// 100 ns) if that is past. IRQL <= DISPATCH_LEVEL.
    fn arm(&self, tick: u32, now: u64) {
        let start = self.start_time.load(Ordering::Relaxed);
        let interval = self.interval.load(Ordering::Relaxed).unsigned_abs();
        let due = start.saturating_add(u64::from(tick).saturating_mul(interval));
        let wait = i64::try_from(due.saturating_sub(now)).unwrap_or(i64::MAX).max(1);
        // Negative: relative to now, in 100 ns units.
        let due = LARGE_INTEGER { QuadPart: -wait };
        // SAFETY: the timer and DPC were initialised (`initialize`) and live as long as `self`.
        unsafe { ks_sys::KeSetTimerEx(self.timer.get(), due, 0, self.dpc.get()) };
    }

    /// Stops the frame interrupt and waits until no DPC runs or is queued. PASSIVE_LEVEL.
    ///
    /// A DPC that started before `running` was cleared may re-arm the timer once: the second
    /// cancel takes that back, and the second flush waits for a DPC it may already have queued
    /// (which sees `running` cleared and does nothing).
    pub(crate) fn stop(&self) {
        self.running.store(false, Ordering::Release);
        for _ in 0..2 {
            // SAFETY: the timer was initialised; cancelling an unset timer does nothing.
            unsafe { ks_sys::KeCancelTimer(self.timer.get()) };
            // SAFETY: no arguments; PASSIVE_LEVEL (this function's contract).
            unsafe { ks_sys::KeFlushQueuedDpcs() };
        }
    }

    /// The presentation time of frame `number` (from 0): its interval's start, from the
    /// stream's start, in 100 ns units.
    pub(crate) fn presentation_time(&self, number: u32) -> i64 {
        self.interval.load(Ordering::Relaxed).saturating_mul(i64::from(number))
    }

    /// The frame times not yet handled, as the range of their numbers, marked handled.
    /// DISPATCH_LEVEL, from the pin's process callback (never concurrently with itself).
    pub(crate) fn take_due(&self) -> core::ops::Range<u32> {
        let ticks = self.ticks.load(Ordering::Acquire);
        let handled = self.handled.swap(ticks, Ordering::AcqRel);
        handled..ticks
    }

    /// Counts frame times that found no buffer.
    pub(crate) fn count_drops(&self, frames: u32) {
        self.drops.fetch_add(frames, Ordering::Relaxed);
    }

    /// Frame times since the pin started.
    pub(crate) fn ticks(&self) -> u32 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Frame times that found no buffer since the pin started.
    pub(crate) fn drops(&self) -> u32 {
        self.drops.load(Ordering::Relaxed)
    }
}

impl Drop for Hardware {
    /// Stops the timer for good, if it was ever initialised. PASSIVE_LEVEL.
    fn drop(&mut self) {
        if self.initialized.load(Ordering::Acquire) {
            self.stop();
        }
    }
}

/// The DPC of the frame interrupt. DISPATCH_LEVEL.
///
/// # Safety
///
/// Only the kernel calls it, for the DPC `Hardware::initialize` set up, with the hardware as
/// its context.
unsafe extern "C" fn frame_interrupt(
    _dpc: *mut KDPC,
    context: PVOID,
    _system_argument1: PVOID,
    _system_argument2: PVOID,
) {
    // SAFETY: the context is the hardware, alive while its DPC can run (its drop stops the
    // timer and flushes the DPCs first).
    let Some(hardware) = (unsafe { context.cast::<Hardware>().as_ref() }) else {
        return;
    };
    if !hardware.running.load(Ordering::Acquire) {
        return; // stopped: neither a tick nor another timer
    }
    let ticks = hardware.ticks.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
    // SAFETY: no arguments; any IRQL.
    let now = unsafe { ks_sys::KeQueryUnbiasedInterruptTime() };
    hardware.arm(ticks.wrapping_add(1), now);
    let pin = hardware.pin.load(Ordering::Acquire);
    if !pin.is_null() {
        // SAFETY: the pin holds the hardware until it stops the timer and flushes the DPCs
        // (its transition to STOP), so it is alive here. FALSE: process now, at DISPATCH_LEVEL,
        // as the pin's KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING allows.
        unsafe { ks_sys::KsPinAttemptProcessing(pin, 0) };
    }
}
