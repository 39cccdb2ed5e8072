//! A pin's queue of frames, its leading-edge stream pointer, processing, and the pipe that
//! circulates frames between the pin's allocator and a consumer.
//!
//! The queue holds the frames the pipe gave the pin, oldest first; the leading edge is the
//! oldest. When the driver advances the leading edge to a frame's end, or ejects it, the frame
//! is complete: it leaves the queue for the consumer's thread, which looks at it and hands it
//! back; the pipe then frees it to the allocator and allocates a frame to queue in its place
//! (both at DISPATCH_LEVEL), as long as the pin is out of STOP.

use std::{
    collections::VecDeque,
    ptr::NonNull,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Instant,
};

use ks_sys::{
    BOOLEAN, KSSTREAM_HEADER, KSSTREAM_POINTER, KSSTREAM_POINTER_OFFSET, KSSTREAM_POINTER_STATE,
    KSSTREAM_POINTER_STATE_LOCKED, PKSPIN, PKSSTREAM_POINTER, ULONG,
};

use crate::irql::DISPATCH_LEVEL;

use crate::ks::DispatchAllocator;

/// One frame in a pin's queue.
struct Queued {
    /// Its header (`KSSTREAM_HEADER`, then the extended header the pin asked for with
    /// `KSPIN.StreamHeaderSize`): a leaked box of 8-byte words, so that the pointer the driver
    /// writes through (the stream pointer's `StreamHeader`) is not derived from a Rust
    /// reference and stays put while the frame is queued. Freed by `Drop`. For an output pin,
    /// `DataUsed` is how far the driver has written.
    header: NonNull<[u64]>,
    frame: NonNull<u8>,
}

// SAFETY: a frame and its header are plain memory with one owner at a time (the queue, then the
// consumer).
unsafe impl Send for Queued {}

impl Queued {
    /// A zeroed header of `size` bytes (at least a `KSSTREAM_HEADER`) for `frame`.
    fn new(frame: NonNull<u8>, size: u32, extent: u32) -> Self {
        let size = (size as usize).max(size_of::<KSSTREAM_HEADER>());
        let words = vec![0u64; size.div_ceil(8)].into_boxed_slice();
        let header = NonNull::from(Box::leak(words));
        let this = Self { header, frame };
        let stream_header = this.header_ptr();
        // SAFETY: the fresh buffer is 8-byte aligned, at least a `KSSTREAM_HEADER` long, and
        // nothing else has its address yet.
        unsafe {
            stream_header.write(KSSTREAM_HEADER {
                Size: u32::try_from(size).unwrap_or(u32::MAX),
                TypeSpecificFlags: 0,
                PresentationTime: ks_sys::KSTIME { Time: 0, Numerator: 1, Denominator: 1 },
                Duration: 0,
                FrameExtent: extent,
                DataUsed: 0,
                Data: frame.as_ptr().cast(),
                OptionsFlags: 0,
                Reserved: 0,
            });
        }
        this
    }

    /// The `KSSTREAM_HEADER` at the start of the header buffer.
    fn header_ptr(&self) -> *mut KSSTREAM_HEADER {
        self.header.as_ptr().cast()
    }

    /// A copy of the `KSSTREAM_HEADER`. With the queue's lock held (the driver writes the
    /// header only while the frame is at the locked leading edge, from the pin's processing).
    fn header(&self) -> KSSTREAM_HEADER {
        // SAFETY: the buffer is live, aligned and holds a `KSSTREAM_HEADER` (`new`).
        unsafe { self.header_ptr().read() }
    }

    /// The bytes after the `KSSTREAM_HEADER`, as many as its `Size` says (within the buffer).
    fn extended(&self) -> Vec<u8> {
        let len = self.header.len() * 8;
        let size = (self.header().Size as usize).min(len);
        // SAFETY: the buffer has `len >= size` initialised bytes and is live.
        let bytes = unsafe { std::slice::from_raw_parts(self.header.as_ptr().cast::<u8>(), size) };
        bytes.get(size_of::<KSSTREAM_HEADER>()..).unwrap_or_default().to_vec()
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        // SAFETY: leaked from a Box in `new`, freed once, here.
        drop(unsafe { Box::from_raw(self.header.as_ptr()) });
    }
}

/// A completed frame, as the consumer sees it.
pub struct Completed {
    /// The frame's header as the driver left it.
    pub header: KSSTREAM_HEADER,
    /// The extended header after it (as many bytes as `KSPIN.StreamHeaderSize` asked for beyond
    /// the `KSSTREAM_HEADER`; empty when the pin asked for none).
    pub extended: Vec<u8>,
    frame: NonNull<u8>,
    /// When the driver completed it.
    pub completed: Instant,
}

// SAFETY: as for `Queued`.
unsafe impl Send for Completed {}

impl Completed {
    /// The `KS_FRAME_INFO` extended header, if the frame has one (a `KSSTREAM_HEADER.Size`
    /// that holds it and `ExtendedHeaderSize` set by the driver).
    #[must_use]
    pub fn frame_info(&self) -> Option<ks_sys::KS_FRAME_INFO> {
        let bytes = self.extended.get(..size_of::<ks_sys::KS_FRAME_INFO>())?;
        // SAFETY: `bytes` has `size_of::<KS_FRAME_INFO>()` bytes; the structure is plain data
        // (integers, handles and a rectangle), valid for any bit pattern; read unaligned.
        let info = unsafe { bytes.as_ptr().cast::<ks_sys::KS_FRAME_INFO>().read_unaligned() };
        (info.ExtendedHeaderSize as usize >= size_of::<ks_sys::KS_FRAME_INFO>()).then_some(info)
    }

    /// The frame's valid bytes (`DataUsed`).
    #[must_use]
    pub fn data(&self) -> &[u8] {
        // SAFETY: `DataUsed <= FrameExtent`, the frame's size (the host clamps what the driver
        // reports), and nothing else touches the frame while the consumer has it.
        unsafe { std::slice::from_raw_parts(self.frame.as_ptr(), self.header.DataUsed as usize) }
    }
}

/// What a consumer does with each completed frame, on the pipe's consumer thread.
pub type Consumer = Box<dyn FnMut(&Completed) + Send>;

/// The queue and the pipe of one pin, shared with the consumer's thread.
#[derive(Default)]
pub(crate) struct Shared {
    queue: Mutex<VecDeque<Queued>>,
    /// Frames may be queued (the pin is out of STOP).
    active: AtomicBool,
    allocator: Mutex<Option<Arc<DispatchAllocator>>>,
    /// The `FrameExtent` of the frames the pipe queues, and the size of their headers.
    frame_size: Mutex<u32>,
    header_size: Mutex<u32>,
    /// The consumer's channel while the pipe exists.
    sender: Mutex<Option<mpsc::Sender<Completed>>>,
    /// Frames with the consumer, not yet given back.
    in_flight: Mutex<usize>,
    returned: Condvar,
}

impl Shared {
    /// The allocator's context, while the pipe has an allocator.
    pub(crate) fn allocator_context(&self) -> Option<ks_sys::PVOID> {
        crate::lock(&self.allocator).as_ref().map(|allocator| allocator.context())
    }

    /// Frames in the queue.
    pub(crate) fn queued(&self) -> usize {
        crate::lock(&self.queue).len()
    }

    /// Allocates a frame and queues it, if the pin is active; `false` if not or if the
    /// allocator has none. DISPATCH_LEVEL.
    ///
    /// The queue's lock is held from the check of `active` to the push, and [`Pipe::stop`]
    /// clears `active` under the same lock before it drains the queue: a frame given back while
    /// the pin stops cannot be replaced by one queued after the drain (which would still be
    /// out when the allocator is deleted).
    fn queue_new_frame(&self, allocator: &DispatchAllocator) -> bool {
        let mut queue = crate::lock(&self.queue);
        if !self.active.load(Ordering::Acquire) {
            return false;
        }
        let Some(frame) = allocator.allocate() else {
            return false;
        };
        let extent = *crate::lock(&self.frame_size);
        let header_size = *crate::lock(&self.header_size);
        queue.push_back(Queued::new(frame, header_size, extent));
        true
    }

    /// A frame the consumer is done with: freed, and a fresh one queued while the pin is
    /// active. DISPATCH_LEVEL.
    fn give_back(&self, frame: NonNull<u8>) {
        let allocator = crate::lock(&self.allocator).clone();
        if let Some(allocator) = allocator {
            allocator.free(frame);
            self.queue_new_frame(&allocator);
        }
        let mut in_flight = crate::lock(&self.in_flight);
        *in_flight = in_flight.saturating_sub(1);
        self.returned.notify_all();
    }

    /// Takes the oldest frame out of the queue and sends it to the consumer. DISPATCH_LEVEL.
    fn complete_front(&self) {
        let Some(queued) = crate::lock(&self.queue).pop_front() else { return };
        let completed = Completed {
            header: queued.header(),
            extended: queued.extended(),
            frame: queued.frame,
            completed: Instant::now(),
        };
        *crate::lock(&self.in_flight) += 1;
        let sender = crate::lock(&self.sender).clone();
        let unsent = match sender {
            Some(sender) => sender.send(completed).err().map(|mpsc::SendError(c)| c),
            None => Some(completed),
        };
        if let Some(completed) = unsent {
            self.give_back(completed.frame);
        }
    }
}

/// The pipe of a connected pin: the consumer's thread, and the allocator while the pin is out
/// of STOP.
pub(crate) struct Pipe {
    shared: Arc<Shared>,
    consumer: Option<JoinHandle<()>>,
    /// Frames to queue when the pipe starts.
    frames: u32,
}

impl Pipe {
    pub(crate) fn new(shared: Arc<Shared>, frames: u32, mut consumer: Consumer) -> Self {
        let (sender, receiver) = mpsc::channel::<Completed>();
        *crate::lock(&shared.sender) = Some(sender);
        let back = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ks-host consumer".to_owned())
            .spawn(move || {
                let mut alive = true;
                for completed in receiver {
                    // A consumer that panics (a failed assertion in a test) gets no more frames,
                    // but every frame is still given back, so STOP does not wait forever.
                    if alive {
                        let run = std::panic::AssertUnwindSafe(|| consumer(&completed));
                        alive = std::panic::catch_unwind(run).is_ok();
                    }
                    crate::irql::at_dispatch(|| back.give_back(completed.frame));
                }
            })
            .expect("the host starts the consumer thread");
        Self { shared, consumer: Some(thread), frames }
    }

    /// Takes the allocator and queues the first frames (STOP to ACQUIRE). PASSIVE_LEVEL; the
    /// frames are allocated at DISPATCH_LEVEL.
    pub(crate) fn start(&self, allocator: DispatchAllocator, frame_size: u32, header_size: u32) {
        *crate::lock(&self.shared.frame_size) = frame_size;
        *crate::lock(&self.shared.header_size) = header_size;
        let allocator = Arc::new(allocator);
        *crate::lock(&self.shared.allocator) = Some(Arc::clone(&allocator));
        self.shared.active.store(true, Ordering::Release);
        crate::irql::at_dispatch(|| {
            for _ in 0..self.frames {
                if !self.shared.queue_new_frame(&allocator) {
                    break;
                }
            }
        });
    }

    /// Stops queueing, frees the queued frames, waits for the consumer to give back the frames
    /// it has, and deletes the allocator (to STOP). PASSIVE_LEVEL, with no processing running.
    pub(crate) fn stop(&self) {
        let queued: Vec<Queued> = {
            let mut queue = crate::lock(&self.shared.queue);
            self.shared.active.store(false, Ordering::Release);
            queue.drain(..).collect()
        };
        let allocator = crate::lock(&self.shared.allocator).clone();
        if let Some(allocator) = &allocator {
            crate::irql::at_dispatch(|| {
                for frame in queued {
                    allocator.free(frame.frame);
                }
            });
        }
        drop(allocator);
        let mut in_flight = crate::lock(&self.shared.in_flight);
        while *in_flight > 0 {
            in_flight = self
                .shared
                .returned
                .wait(in_flight)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(in_flight);
        // The last reference: DeleteAllocator runs here, at PASSIVE_LEVEL.
        drop(crate::lock(&self.shared.allocator).take());
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        self.stop();
        drop(crate::lock(&self.shared.sender).take());
        if let Some(consumer) = self.consumer.take() {
            let _ = consumer.join();
        }
    }
}

/// The leading-edge stream pointer of a pin: the `KSSTREAM_POINTER` handed to the driver.
pub(crate) struct Edge {
    pointer: KSSTREAM_POINTER,
    locked: bool,
}

impl Edge {
    pub(crate) fn new(pin: PKSPIN) -> Self {
        let empty = KSSTREAM_POINTER_OFFSET { Data: std::ptr::null_mut(), Count: 0, Remaining: 0 };
        Self {
            pointer: KSSTREAM_POINTER {
                Context: std::ptr::null_mut(),
                Pin: pin,
                StreamHeader: std::ptr::null_mut(),
                Offset: std::ptr::null_mut(),
                OffsetIn: empty,
                OffsetOut: empty,
            },
            locked: false,
        }
    }
}

/// The pin state behind a stream pointer the host handed out, with its edge.
///
/// # Safety
///
/// `pointer` is NULL or a stream pointer of a live host pin, used by its processing thread.
unsafe fn edge_of<'a>(
    routine: &'static str,
    pointer: PKSSTREAM_POINTER,
) -> Option<(&'a super::PinState, &'a mut Edge)> {
    crate::verifier::require_irql_at_most(routine, DISPATCH_LEVEL);
    if pointer.is_null() {
        crate::verifier::report(routine, "NULL stream pointer".to_owned());
        return None;
    }
    // SAFETY: the caller's contract: a live stream pointer of a host pin.
    let pin = unsafe { (*pointer).Pin };
    // SAFETY: as above: its pin is live.
    let Some(state) = (unsafe { super::object::pin_object(pin) }) else {
        crate::verifier::report(routine, format!("{pointer:p} is not a stream pointer of a pin"));
        return None;
    };
    if !state.processing_held() {
        crate::verifier::report(routine, "called outside the pin's processing".to_owned());
        return None;
    }
    // SAFETY: only the pin's processing (checked above, serialised by the host) touches the
    // edge.
    let edge = unsafe { &mut *state.edge.get() };
    if !std::ptr::eq(&raw const edge.pointer, pointer) {
        crate::verifier::report(routine, format!("{pointer:p} is not the pin's leading edge"));
        return None;
    }
    Some((state, edge))
}

/// Every how many attempts to lock a leading edge over a queued frame fail (0: none), and the
/// attempts so far.
static LOCK_FAILURES: std::sync::Mutex<(u64, u64)> = std::sync::Mutex::new((0, 0));

/// Makes every `every`th attempt to lock a pin's leading edge fail while frames are queued
/// (`KsPinGetLeadingEdgeStreamPointer` with `KSSTREAM_POINTER_STATE_LOCKED` returns NULL), as
/// AVStream's does when it cannot lock the frame (its documentation: "an attempt to lock the
/// leading edge failed"); the frame stays queued. 0 turns it off; a session starts with it off.
pub fn fail_leading_edge_locks(every: u64) {
    *crate::lock(&LOCK_FAILURES) = (every, 0);
}

/// Leading-edge locks failed on purpose since [`fail_leading_edge_locks`] was last called.
#[must_use]
pub fn failed_leading_edge_locks() -> u64 {
    let (every, attempts) = *crate::lock(&LOCK_FAILURES);
    attempts.checked_div(every).unwrap_or(0)
}

/// Whether this lock attempt is one to fail.
fn lock_fails() -> bool {
    let mut failures = crate::lock(&LOCK_FAILURES);
    let (every, attempts) = &mut *failures;
    if *every == 0 {
        return false;
    }
    *attempts += 1;
    attempts.is_multiple_of(*every)
}

/// `KsPinGetLeadingEdgeStreamPointer`: the pin's leading edge at its oldest queued frame, or
/// NULL if the queue is empty (or the lock is made to fail: [`fail_leading_edge_locks`]). With
/// `KSSTREAM_POINTER_STATE_LOCKED` the offsets describe the frame's bytes not yet filled. IRQL
/// <= DISPATCH_LEVEL, from the pin's processing.
///
/// # Safety
///
/// `Pin` is a live pin the host made.
// SAFETY: no other symbol of a host process is named `KsPinGetLeadingEdgeStreamPointer`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsPinGetLeadingEdgeStreamPointer(
    Pin: PKSPIN,
    State: KSSTREAM_POINTER_STATE,
) -> PKSSTREAM_POINTER {
    const ROUTINE: &str = "KsPinGetLeadingEdgeStreamPointer";
    crate::verifier::require_irql_at_most(ROUTINE, DISPATCH_LEVEL);
    // SAFETY: the caller's contract.
    let Some(state) = (unsafe { super::object::pin_object(Pin) }) else {
        crate::verifier::report(ROUTINE, format!("{Pin:p} is not a pin"));
        return std::ptr::null_mut();
    };
    if !state.processing_held() {
        crate::verifier::report(ROUTINE, "called outside the pin's processing".to_owned());
        return std::ptr::null_mut();
    }
    // SAFETY: the pin's processing (checked above) is the edge's only user.
    let edge = unsafe { &mut *state.edge.get() };
    let queue = crate::lock(&state.shared.queue);
    let Some(front) = queue.front() else {
        edge.locked = false;
        return std::ptr::null_mut();
    };
    if State == KSSTREAM_POINTER_STATE_LOCKED && lock_fails() {
        edge.locked = false;
        return std::ptr::null_mut();
    }
    let header = front.header();
    let written = header.DataUsed.min(header.FrameExtent);
    let remaining = header.FrameExtent - written;
    edge.pointer.StreamHeader = front.header_ptr();
    edge.locked = State == KSSTREAM_POINTER_STATE_LOCKED;
    let data = if edge.locked {
        front.frame.as_ptr().wrapping_add(written as usize)
    } else {
        std::ptr::null_mut()
    };
    let offset = KSSTREAM_POINTER_OFFSET { Data: data, Count: remaining, Remaining: remaining };
    if state.is_output() {
        edge.pointer.OffsetOut = offset;
        edge.pointer.Offset = &raw mut edge.pointer.OffsetOut;
    } else {
        edge.pointer.OffsetIn = offset;
        edge.pointer.Offset = &raw mut edge.pointer.OffsetIn;
    }
    &raw mut edge.pointer
}

/// `KsStreamPointerAdvanceOffsetsAndUnlock`: the driver consumed `InUsed` input bytes or
/// filled `OutUsed` output bytes at the edge; the frame completes when it is full or `Eject` is
/// set; the edge is unlocked. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
///
/// `StreamPointer` is a locked stream pointer the host handed out.
// SAFETY: no other symbol of a host process is named `KsStreamPointerAdvanceOffsetsAndUnlock`;
// ks-sys declares it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsStreamPointerAdvanceOffsetsAndUnlock(
    StreamPointer: PKSSTREAM_POINTER,
    InUsed: ULONG,
    OutUsed: ULONG,
    Eject: BOOLEAN,
) {
    const ROUTINE: &str = "KsStreamPointerAdvanceOffsetsAndUnlock";
    // SAFETY: the caller's contract.
    let Some((state, edge)) = (unsafe { edge_of(ROUTINE, StreamPointer) }) else { return };
    if !edge.locked {
        crate::verifier::report(ROUTINE, "the stream pointer is not locked".to_owned());
        return;
    }
    let used = if state.is_output() { OutUsed } else { InUsed };
    let full = {
        let mut queue = crate::lock(&state.shared.queue);
        let Some(front) = queue.front_mut() else {
            edge.locked = false;
            return;
        };
        let header = front.header_ptr();
        // SAFETY: the front frame's header is live and aligned; the driver, which may write it
        // through its stream pointer, is inside this call (the edge is locked and unlocked only
        // here, from the pin's processing), so nothing else accesses it now.
        let current = unsafe { header.read() };
        let (extent, used_before) = (current.FrameExtent, current.DataUsed);
        let remaining = extent - used_before.min(extent);
        if used > remaining {
            crate::verifier::report(
                ROUTINE,
                format!("advanced {used} bytes with {remaining} left in the frame"),
            );
        }
        let data_used = used_before.saturating_add(used.min(remaining));
        // SAFETY: as above.
        unsafe { (*header).DataUsed = data_used };
        data_used >= extent
    };
    edge.locked = false;
    if full || Eject != 0 {
        state.shared.complete_front();
    }
}

/// `KsStreamPointerUnlock`: unlocks the edge, completing its frame if `Eject` is set. IRQL <=
/// DISPATCH_LEVEL.
///
/// # Safety
///
/// `StreamPointer` is a locked stream pointer the host handed out.
// SAFETY: no other symbol of a host process is named `KsStreamPointerUnlock`; ks-sys declares
// it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsStreamPointerUnlock(
    StreamPointer: PKSSTREAM_POINTER,
    Eject: BOOLEAN,
) {
    const ROUTINE: &str = "KsStreamPointerUnlock";
    // SAFETY: the caller's contract.
    let Some((state, edge)) = (unsafe { edge_of(ROUTINE, StreamPointer) }) else { return };
    if !edge.locked {
        crate::verifier::report(ROUTINE, "the stream pointer is not locked".to_owned());
        return;
    }
    edge.locked = false;
    if Eject != 0 {
        state.shared.complete_front();
    }
}

/// `KsPinAcquireProcessingMutex`: no process callback of the pin runs until the mutex is
/// released. Not recursive. PASSIVE_LEVEL.
///
/// # Safety
///
/// `Pin` is a live pin the host made.
// SAFETY: no other symbol of a host process is named `KsPinAcquireProcessingMutex`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsPinAcquireProcessingMutex(Pin: PKSPIN) {
    const ROUTINE: &str = "KsPinAcquireProcessingMutex";
    crate::verifier::require_irql_at_most(ROUTINE, crate::irql::PASSIVE_LEVEL);
    // SAFETY: the caller's contract.
    match unsafe { super::object::pin_object(Pin) } {
        Some(state) => state.acquire_processing(),
        None => crate::verifier::report(ROUTINE, format!("{Pin:p} is not a pin")),
    }
}

/// `KsPinReleaseProcessingMutex`: releases the pin's processing mutex; processing asked for
/// meanwhile runs. PASSIVE_LEVEL.
///
/// # Safety
///
/// `Pin` is a live pin the host made.
// SAFETY: no other symbol of a host process is named `KsPinReleaseProcessingMutex`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsPinReleaseProcessingMutex(Pin: PKSPIN) {
    const ROUTINE: &str = "KsPinReleaseProcessingMutex";
    crate::verifier::require_irql_at_most(ROUTINE, crate::irql::PASSIVE_LEVEL);
    // SAFETY: the caller's contract.
    match unsafe { super::object::pin_object(Pin) } {
        Some(state) => state.release_processing(Pin),
        None => crate::verifier::report(ROUTINE, format!("{Pin:p} is not a pin")),
    }
}

/// `KsPinAttemptProcessing`: runs the pin's process callback if the pin may process now. A pin
/// with `KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING` is processed on the calling thread at
/// DISPATCH_LEVEL; any other pin at PASSIVE_LEVEL, on the calling thread when it is at
/// PASSIVE_LEVEL and `Asynchronous` is FALSE, else on the pin's worker thread. Calls while the
/// pin is processing make it process once more. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
///
/// `Pin` is a live pin the host made.
// SAFETY: no other symbol of a host process is named `KsPinAttemptProcessing`; ks-sys declares
// it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsPinAttemptProcessing(Pin: PKSPIN, Asynchronous: BOOLEAN) {
    const ROUTINE: &str = "KsPinAttemptProcessing";
    crate::verifier::require_irql_at_most(ROUTINE, DISPATCH_LEVEL);
    // SAFETY: the caller's contract.
    let Some(state) = (unsafe { super::object::pin_object(Pin) }) else {
        crate::verifier::report(ROUTINE, format!("{Pin:p} is not a pin"));
        return;
    };
    state.attempt_processing(Pin, Asynchronous != 0);
}
