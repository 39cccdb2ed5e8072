//! The simulated hardware: a scatter/gather DMA capture engine with a frame interrupt.
//!
//! The pin programs frames into the engine ([`Hardware::program`]): each is a slot holding the
//! frame's scatter/gather elements, copied from its `KSMAPPING`s into the engine's own table,
//! and the stream pointer clone that keeps the frame until it is done. A kernel timer's DPC
//! plays the frame interrupt: each tick is one frame time, in which the engine writes the next
//! programmed frame by DMA — the static picture of the format (synthesized once, at
//! [`Hardware::prepare`], into the engine's own memory) copied over the whole frame, then the
//! parts that move drawn span by span ([`render`]) — and completes it (its header stamped, its
//! clone deleted, as avshws completes its mappings in its DPC), or counts a drop when nothing
//! is programmed. Then it asks AVStream to process the pin, which programs the frames that
//! arrived meanwhile. The DPC's work is bounded: one copy of a frame, a few thousand pixels and
//! one completion.
//!
//! The engine writes frames only through the logical addresses it was programmed with
//! ([`bus`]), never through a frame's virtual address.
//!
//! Slots form a single-producer, single-consumer ring: the pin's processing (never concurrent
//! with itself) programs, the DPC (never concurrent with itself) fills and completes.
//! `programmed` and `completed` only grow, each written by one side and read by the other with
//! acquire/release ordering; a slot is the producer's from its completion until it is published
//! again.
//!
//! Tick `n` (from 1) is due at `start + n * interval` on the interrupt-time clock
//! (`KeQueryUnbiasedInterruptTime`, 100 ns units), as avshws re-arms its timer at an absolute
//! time: each DPC sets the one-shot timer for the next tick's due time, so the frame rate is the
//! format's exactly (29.97 fps is 29.97, not the 30.3 a period truncated to 33 ms gives) and a
//! late DPC does not delay the ticks after it. Frame `n` (from 0) is the picture of the interval
//! that ends at tick `n + 1`: its presentation time is `n * interval` from the start.
//!
//! The hardware belongs to the device, from its first start to its removal. One pin at a time
//! may hold it.

use core::{
    cell::UnsafeCell,
    ptr,
    sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU32, AtomicU64, Ordering},
};

use ks_allocator::PoolBytes;
use ks_sys::{KDPC, KSMAPPING, KSPIN, KTIMER, LARGE_INTEGER, PKSSTREAM_POINTER, PVOID};

use crate::{
    POOL_TAG,
    bus::{self, Element, Table},
    format::{ImageFormat, MAX_STRIDE},
    render,
};

/// Frames the engine holds programmed at once.
pub(crate) const SLOTS: usize = 8;
/// Scatter/gather elements the engine's table holds: enough for [`SLOTS`] frames of the largest
/// format in scattered pages.
pub(crate) const ELEMENTS: usize = 4096;

/// One programmed frame.
#[derive(Clone, Copy)]
struct Slot {
    /// The clone that holds the frame (`PKSSTREAM_POINTER`).
    clone: PKSSTREAM_POINTER,
    /// Its elements: `count` of them from `first` in the table (never across the table's end),
    /// and the elements it took from the ring (its own, and those skipped to avoid the end).
    first: usize,
    count: usize,
    reserved: usize,
}

const EMPTY_SLOT: Slot = Slot { clone: ptr::null_mut(), first: 0, count: 0, reserved: 0 };

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
    /// Frame times with nothing programmed.
    drops: AtomicU32,
    /// The engine's memory, from `prepare` to `unprepare` (written at PASSIVE_LEVEL with the
    /// frame interrupt stopped): the format and its static picture, a line buffer the DPC draws
    /// the moving parts into, and the table of elements ([`ELEMENTS`] of
    /// [`Element::SIZE`] bytes), in pool so that the hardware itself stays small.
    format: UnsafeCell<Option<ImageFormat>>,
    memory: UnsafeCell<Option<EngineMemory>>,
    /// The ring of programmed frames.
    slots: UnsafeCell<[Slot; SLOTS]>,
    /// Frames programmed by the pin, and written and completed by the DPC (each only grows).
    programmed: AtomicU32,
    completed: AtomicU32,
    /// Elements used so far (only grows; the table is a ring).
    elements_used: AtomicU64,
    /// Elements of completed frames (only grows).
    elements_freed: AtomicU64,
}

// SAFETY: the timer and DPC are only touched by the kernel routines (which synchronise them);
// the slots and elements follow the ring's protocol (module documentation); the format, scene
// and span are written only with the frame interrupt stopped (the span only by the DPC, which
// never runs concurrently with itself); everything else is atomics.
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
            drops: AtomicU32::new(0),
            format: UnsafeCell::new(None),
            memory: UnsafeCell::new(None),
            slots: UnsafeCell::new([EMPTY_SLOT; SLOTS]),
            programmed: AtomicU32::new(0),
            completed: AtomicU32::new(0),
            elements_used: AtomicU64::new(0),
            elements_freed: AtomicU64::new(0),
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
            self.drops.store(0, Ordering::Relaxed);
        }
        taken
    }

    /// Whether a pin holds the hardware (it is out of STOP: its frames are mapped for DMA).
    pub(crate) fn in_use(&self) -> bool {
        !self.pin.load(Ordering::Acquire).is_null()
    }

    /// Takes the hardware back from `pin`. PASSIVE_LEVEL, the timer stopped.
    pub(crate) fn release(&self, pin: *mut KSPIN) {
        let _ =
            self.pin.compare_exchange(pin, ptr::null_mut(), Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Sets the engine up for `format`, with memory for the static picture of any format whose
    /// frames take up to `capacity` bytes (the frames of the pin's allocator), and synthesizes
    /// the picture. PASSIVE_LEVEL, the frame interrupt stopped.
    ///
    /// # Errors
    ///
    /// `INSUFFICIENT_RESOURCES` when there is no pool memory for the engine, or the format's
    /// rows do not fit the engine's line buffer.
    pub(crate) fn prepare(&self, format: &ImageFormat, capacity: usize) -> ks_allocator::Result {
        if format.stride() > MAX_STRIDE {
            return Err(ks_allocator::Error::INSUFFICIENT_RESOURCES);
        }
        let no_memory = || ks_allocator::Error::INSUFFICIENT_RESOURCES;
        let scene_len = capacity.max(format.image_size());
        let scene = PoolBytes::new(scene_len, POOL_TAG).ok_or_else(no_memory)?;
        let mut span = PoolBytes::new(MAX_STRIDE, POOL_TAG).ok_or_else(no_memory)?;
        let mut table = PoolBytes::new(ELEMENTS * Element::SIZE, POOL_TAG).ok_or_else(no_memory)?;
        let (span_ptr, table_ptr) = (span.as_mut_ptr(), table.as_mut_ptr());
        let memory = EngineMemory { scene, _span: span, _table: table, span_ptr, table_ptr };
        // SAFETY: the frame interrupt is stopped (this function's contract): nothing reads them.
        unsafe { *self.memory.get() = Some(memory) };
        self.reformat(format)
    }

    /// Takes a new format (another pitch of the same picture, at most the capacity
    /// [`prepare`](Self::prepare) was given): its static picture is synthesized again.
    /// PASSIVE_LEVEL, the frame interrupt stopped.
    ///
    /// # Errors
    ///
    /// `INVALID_DEVICE_STATE` when the engine is not prepared or the format's frames are
    /// larger than its capacity or its rows than its line buffer.
    pub(crate) fn reformat(&self, format: &ImageFormat) -> ks_allocator::Result {
        // SAFETY: the frame interrupt is stopped (this function's contract): nothing reads it.
        let current = unsafe { *self.format.get() };
        if current == Some(*format) {
            return Ok(());
        }
        // SAFETY: as above.
        let Some(memory) = (unsafe { (*self.memory.get()).as_mut() }) else {
            return Err(ks_allocator::Error::INVALID_DEVICE_STATE);
        };
        if format.stride() > MAX_STRIDE || format.image_size() > memory.scene.len() {
            return Err(ks_allocator::Error::INVALID_DEVICE_STATE);
        }
        let _ = render::render_static(format, &mut memory.scene);
        // SAFETY: as above.
        unsafe { *self.format.get() = Some(*format) };
        Ok(())
    }

    /// Frees the static picture. PASSIVE_LEVEL, the frame interrupt stopped.
    pub(crate) fn unprepare(&self) {
        // SAFETY: the frame interrupt is stopped (this function's contract): nothing reads them.
        unsafe { *self.format.get() = None };
        // SAFETY: as above.
        unsafe { *self.memory.get() = None };
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

    /// Frame times since the pin started.
    pub(crate) fn ticks(&self) -> u32 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Frame times with nothing programmed (and frames given back empty) since the pin
    /// started.
    pub(crate) fn drops(&self) -> u32 {
        self.drops.load(Ordering::Relaxed)
    }

    /// Counts a frame the pin gave back empty (it could not hold a picture).
    pub(crate) fn count_drop(&self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
    }

    /// Where a frame of `count` elements goes in the table, and the elements it takes from the
    /// ring (a frame never crosses the table's end: the rest of the table is skipped).
    fn placement(&self, count: usize) -> (usize, usize) {
        let used = self.elements_used.load(Ordering::Relaxed);
        #[expect(clippy::cast_possible_truncation, reason = "a position in the ring")]
        let at = (used % ELEMENTS as u64) as usize;
        if at + count <= ELEMENTS { (at, count) } else { (0, ELEMENTS - at + count) }
    }

    /// Whether a frame of `count` elements can be programmed now (a free slot and room in the
    /// table). From the pin's processing.
    pub(crate) fn has_room(&self, count: usize) -> bool {
        let programmed = self.programmed.load(Ordering::Relaxed);
        let completed = self.completed.load(Ordering::Acquire);
        let used = self.elements_used.load(Ordering::Relaxed);
        let freed = self.elements_freed.load(Ordering::Acquire);
        let (_, reserved) = self.placement(count);
        count <= ELEMENTS
            && (programmed.wrapping_sub(completed) as usize) < SLOTS
            && used.saturating_sub(freed) + reserved as u64 <= ELEMENTS as u64
    }

    /// Programs a frame: its mappings (`count` entries `stride` bytes apart from `mappings`)
    /// into the element table, and the clone that holds it. From the pin's processing
    /// (PASSIVE_LEVEL), after [`has_room`](Self::has_room) said yes.
    ///
    /// # Safety
    ///
    /// `mappings` points at `count` readable entries `stride` bytes apart, each starting with a
    /// `KSMAPPING`; the caller is the pin's processing.
    pub(crate) unsafe fn program(
        &self,
        clone: PKSSTREAM_POINTER,
        mappings: *const u8,
        count: usize,
        stride: usize,
    ) {
        let used = self.elements_used.load(Ordering::Relaxed);
        let (first, reserved) = self.placement(count);
        // SAFETY: the producer owns the elements past `used` until it publishes the slot (ring
        // protocol; `has_room` guaranteed they are free); the table changes only with the frame
        // interrupt stopped.
        let Some(memory) = (unsafe { &*self.memory.get() }) else { return };
        // SAFETY: the elements from `first` are inside the table (`placement`) and the
        // producer's alone (ring protocol): no other slice of them exists.
        let out = unsafe { memory.elements_mut(first, count) };
        for index in 0..count {
            let entry = mappings.wrapping_add(index * stride);
            // SAFETY: the caller's contract: a readable KSMAPPING (read unaligned: the table is
            // AVStream's).
            let mapping = unsafe { entry.cast::<KSMAPPING>().read_unaligned() };
            let element = Element {
                address: u64::try_from(mapping.PhysicalAddress).unwrap_or(u64::MAX),
                bytes: mapping.ByteCount,
            };
            if let Some(out) = out.get_mut(index * Element::SIZE..) {
                element.store(out);
            }
        }
        self.elements_used.store(used + reserved as u64, Ordering::Relaxed);
        let programmed = self.programmed.load(Ordering::Relaxed);
        // SAFETY: the slot at `programmed` is free (`has_room`), the producer's until published.
        let slots = unsafe { &mut *self.slots.get() };
        if let Some(slot) = slots.get_mut(programmed as usize % SLOTS) {
            *slot = Slot { clone, first, count, reserved };
        }
        self.programmed.store(programmed.wrapping_add(1), Ordering::Release);
    }

    /// Takes every programmed frame back, written or not (the pin stops): their clones, for the
    /// pin to delete, by `f`. PASSIVE_LEVEL, the frame interrupt stopped.
    pub(crate) fn take_all(&self, mut f: impl FnMut(PKSSTREAM_POINTER)) {
        let programmed = self.programmed.load(Ordering::Acquire);
        let mut completed = self.completed.load(Ordering::Relaxed);
        while completed != programmed {
            // SAFETY: the frame interrupt is stopped: no consumer reads the slots.
            if let Some(slot) = unsafe { (*self.slots.get()).get(completed as usize % SLOTS) } {
                f(slot.clone);
            }
            completed = completed.wrapping_add(1);
        }
        self.completed.store(programmed, Ordering::Release);
        self.elements_freed.store(self.elements_used.load(Ordering::Relaxed), Ordering::Release);
    }

    /// Writes frame `number` into the next programmed slot and completes it, if there is one;
    /// counts a drop otherwise. The DPC, at DISPATCH_LEVEL.
    fn fill_next(&self, number: u32) {
        let completed = self.completed.load(Ordering::Relaxed);
        if completed == self.programmed.load(Ordering::Acquire) {
            self.drops.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // SAFETY: the slot at `completed` was published (`programmed` acquired above) and is the
        // consumer's until `completed` moves past it; its elements likewise.
        let slot = unsafe { (*self.slots.get()).get(completed as usize % SLOTS).copied() };
        if let Some(slot) = slot {
            let written = self.write_frame(slot.first, slot.count, number);
            // SAFETY: the format changes only with the frame interrupt stopped.
            if let Some(format) = unsafe { *self.format.get() } {
                // SAFETY: the slot's clone, made by the pin and not yet deleted; deleted once.
                unsafe {
                    crate::pin::complete(slot.clone, &format, written.then_some(number), self);
                };
            }
            self.elements_freed.fetch_add(slot.reserved as u64, Ordering::Release);
        }
        self.completed.store(completed.wrapping_add(1), Ordering::Release);
    }

    /// Writes frame `number` by DMA through `count` elements from `first`: the static picture,
    /// then the moving spans. Whether the whole picture was written (the frame held it and the
    /// bus reached every element). The DPC.
    fn write_frame(&self, first: usize, count: usize, number: u32) -> bool {
        // SAFETY: the format and the engine's memory change only with the frame interrupt
        // stopped; the DPC is the interrupt, never concurrent with itself (so its use of the line
        // buffer is exclusive), and the slot's elements are the consumer's while it fills it.
        let (Some(format), Some(memory)) =
            (unsafe { *self.format.get() }, unsafe { (*self.memory.get()).as_ref() })
        else {
            return false;
        };
        if first + count > ELEMENTS {
            return false;
        }
        // SAFETY: the slot's elements are inside the table and the consumer's while it fills
        // the slot (ring protocol): the producer writes only others.
        let list = Table(unsafe { memory.elements(first, count) });
        // SAFETY: only the DPC uses the line buffer, and it never runs concurrently with itself.
        let span = unsafe { memory.span() };
        let Some(scene) = memory.scene.get(..format.image_size()) else { return false };
        let capacity: u64 = list.iter().map(|e| u64::from(e.bytes)).sum();
        if capacity < scene.len() as u64 {
            return false;
        }
        if bus::write_at(list, 0, scene).is_err() {
            return false;
        }
        for region in render::moving_regions(&format, number) {
            for y in region.top..region.bottom {
                let Some((at, len)) =
                    render::render_span(&format, number, y, region.left, region.right, span)
                else {
                    continue;
                };
                let Some(bytes) = span.get(..len) else { return false };
                if bus::write_at(list, at, bytes).is_err() {
                    return false;
                }
            }
        }
        true
    }
}

/// The engine's own memory (see [`Hardware`]). The line buffer and the table are reached only
/// through their pointers, in the parts each side owns.
struct EngineMemory {
    scene: PoolBytes,
    _span: PoolBytes,
    _table: PoolBytes,
    span_ptr: *mut u8,
    table_ptr: *mut u8,
}

impl EngineMemory {
    /// The line buffer.
    ///
    /// # Safety
    ///
    /// The caller is the DPC (its only user), and the result is gone before it returns.
    #[expect(clippy::mut_from_ref, reason = "the DPC is the line buffer's only user")]
    unsafe fn span(&self) -> &mut [u8] {
        // SAFETY: `MAX_STRIDE` bytes of `_span`, used only by the DPC (the caller's contract).
        unsafe { core::slice::from_raw_parts_mut(self.span_ptr, MAX_STRIDE) }
    }

    /// Elements `first..first + count` of the table, to read.
    ///
    /// # Safety
    ///
    /// `first + count <= ELEMENTS`, and nobody writes them while the result lives.
    unsafe fn elements(&self, first: usize, count: usize) -> &[u8] {
        // SAFETY: inside the table (the caller's contract), not written meanwhile.
        unsafe {
            core::slice::from_raw_parts(
                self.table_ptr.wrapping_add(first * Element::SIZE),
                count * Element::SIZE,
            )
        }
    }

    /// Elements `first..first + count` of the table, to write.
    ///
    /// # Safety
    ///
    /// `first + count <= ELEMENTS`, and nobody else uses them while the result lives.
    #[expect(clippy::mut_from_ref, reason = "the ring protocol gives each side its own elements")]
    unsafe fn elements_mut(&self, first: usize, count: usize) -> &mut [u8] {
        // SAFETY: inside the table, used by nobody else (the caller's contract).
        unsafe {
            core::slice::from_raw_parts_mut(
                self.table_ptr.wrapping_add(first * Element::SIZE),
                count * Element::SIZE,
            )
        }
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

/// The DPC of the frame interrupt: one frame time, one frame written (or a drop), then the pin
/// is asked to process. DISPATCH_LEVEL.
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
    // Frame `ticks - 1` is the picture of the interval that just ended.
    hardware.fill_next(ticks.wrapping_sub(1));
    let pin = hardware.pin.load(Ordering::Acquire);
    if !pin.is_null() {
        // SAFETY: the pin holds the hardware until it stops the timer and flushes the DPCs
        // (its transition to STOP), so it is alive here. TRUE: the pin processes at
        // PASSIVE_LEVEL, on AVStream's worker, not in this DPC.
        unsafe { ks_sys::KsPinAttemptProcessing(pin, 1) };
    }
}
