//! A pin's queue of frames, its leading-edge stream pointer and clones, processing, and the
//! pipe that circulates frames between the pin's allocator and a consumer.
//!
//! The queue holds the frames the pipe gave the pin, oldest first. The leading edge is at the
//! oldest frame it has not yet left; the driver leaves a frame by advancing to its end or
//! ejecting it. A frame completes once the edge has left it and no clone refers to it, in queue
//! order: it leaves the queue for the consumer's thread, which looks at it and hands it back;
//! the pipe then gives it back to where it came from and takes a frame to queue in its place
//! (both at DISPATCH_LEVEL), as long as the pin is out of STOP.
//!
//! Frames come from one of the places they come from on Windows ([`Source`]): an allocator (the
//! pin's own, through its `KSPIN_DISPATCH.Allocator`, or one the downstream side owns, made
//! through the default-allocator path), or a user-mode client's own buffers, sent as read
//! requests, each locked and mapped, with no allocator at all ([`ClientBuffers`]).
//!
//! For a pin with `KSPIN_FLAG_GENERATE_MAPPINGS` on a device that registered its DMA adapter
//! (`KsDeviceRegisterAdapterObject`), each frame is mapped when it is queued ([`crate::dma::map`],
//! runs of at most the registered maximum) into a table of `KSMAPPING`s the registered stride
//! apart; the stream pointer's `OffsetOut.Data` is then the current mapping (the C union's
//! `Mappings`), and `Count` and `Remaining` count mappings. Before it is mapped, a capture
//! pin's frame is filled with [`UNWRITTEN`], so that a byte the device did not write shows. The
//! mappings end when the frame completes.

use std::{
    alloc::Layout,
    collections::VecDeque,
    ptr::NonNull,
    sync::{
        Arc, Condvar, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Instant,
};

use ks_sys::{
    BOOLEAN, KSMAPPING, KSSTREAM_HEADER, KSSTREAM_POINTER, KSSTREAM_POINTER_OFFSET,
    KSSTREAM_POINTER_STATE, KSSTREAM_POINTER_STATE_LOCKED, NTSTATUS, PFNKSSTREAMPOINTER, PKSPIN,
    PKSSTREAM_POINTER, STATUS_DEVICE_NOT_READY, STATUS_INSUFFICIENT_RESOURCES,
    STATUS_INVALID_PARAMETER, STATUS_SUCCESS, ULONG,
};

use crate::irql::DISPATCH_LEVEL;

use crate::ks::DispatchAllocator;

/// What a capture pin's frame holds when it is mapped for its device.
pub const UNWRITTEN: u8 = 0xCD;

/// A DMA adapter a device registered with `KsDeviceRegisterAdapterObject`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Registered {
    /// The adapter (`PADAPTER_OBJECT`, a `DMA_ADAPTER`), by address.
    pub(crate) adapter: usize,
    /// The longest mapping.
    pub(crate) max_bytes: u32,
    /// Bytes from one table entry to the next.
    pub(crate) stride: u32,
}

/// How a pin's frames are mapped, while its pipe runs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mapper {
    pub(crate) registered: Registered,
    /// The pin's id, for the mappings' labels.
    pub(crate) pin: u32,
    /// Fill each frame with [`UNWRITTEN`] first (a capture pin).
    pub(crate) poison: bool,
}

/// The mappings of one queued frame.
struct FrameMappings {
    set: Option<crate::dma::MappingSet>,
    /// The table: `count` entries `stride` bytes apart, a `KSMAPPING` at the start of each.
    table: Box<[u64]>,
    count: u32,
    stride: u32,
}

impl FrameMappings {
    /// The entry `index` (may be `count`: one past the end). The stride is a multiple of 8, so
    /// every entry is 8-byte aligned, as a `KSMAPPING` needs.
    fn entry(&self, index: u32) -> *mut u64 {
        let words = index as usize * self.stride as usize / 8;
        self.table.as_ptr().cast_mut().wrapping_add(words)
    }
}

/// One frame in a pin's queue.
pub(super) struct Queued {
    /// Its header (`KSSTREAM_HEADER`, then the extended header the pin asked for with
    /// `KSPIN.StreamHeaderSize`): a leaked box of 8-byte words, so that the pointer the driver
    /// writes through (the stream pointer's `StreamHeader`) is not derived from a Rust
    /// reference and stays put while the frame is queued. Freed by `Drop`. For an output pin,
    /// `DataUsed` is how far the driver has written.
    pub(super) header: NonNull<[u64]>,
    pub(super) frame: NonNull<u8>,
    /// Its number in the pipe, from 0.
    pub(super) id: u64,
    mappings: Option<FrameMappings>,
    /// Mappings the leading edge has advanced over.
    mappings_used: u32,
    /// The leading edge has left it.
    pub(super) passed: bool,
    /// Clones that refer to it.
    clones: u32,
    /// For a frame delivered from upstream (an input pin's, or an in-place output pin's): its
    /// way back to the pipe it came from.
    release: Option<Release>,
    /// For an input pin's frame: bytes the filter has consumed.
    pub(super) consumed: u32,
}

// SAFETY: a frame and its header are plain memory with one owner at a time (the queue, then the
// consumer).
unsafe impl Send for Queued {}

impl Queued {
    /// A zeroed header of `size` bytes (at least a `KSSTREAM_HEADER`) for `frame`.
    fn new(frame: NonNull<u8>, size: u32, extent: u32, id: u64) -> Self {
        let size = (size as usize).max(size_of::<KSSTREAM_HEADER>());
        let words = vec![0u64; size.div_ceil(8)].into_boxed_slice();
        let header = NonNull::from(Box::leak(words));
        let this = Self {
            header,
            frame,
            id,
            mappings: None,
            mappings_used: 0,
            passed: false,
            clones: 0,
            release: None,
            consumed: 0,
        };
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

    /// Maps the frame for the device (see the module documentation). The frame is left
    /// unmapped, and the failure reported, if the memory cannot be mapped.
    fn map(&mut self, mapper: &Mapper, extent: u32) -> Result<(), String> {
        if mapper.poison {
            // SAFETY: the frame is `extent` bytes the pipe owns until it completes.
            unsafe { self.frame.as_ptr().write_bytes(UNWRITTEN, extent as usize) };
        }
        let label = format!("frame {} of pin {}", self.id, mapper.pin);
        let registered = mapper.registered;
        let (set, runs) = crate::dma::map(
            std::ptr::with_exposed_provenance_mut(registered.adapter),
            self.frame.as_ptr(),
            extent as usize,
            registered.max_bytes,
            &label,
        )
        .map_err(|error| format!("{label} cannot be mapped: {error}"))?;
        let count = u32::try_from(runs.len()).unwrap_or(u32::MAX);
        let bytes = runs.len() * registered.stride as usize;
        let mappings = FrameMappings {
            set: Some(set),
            table: vec![0u64; bytes.div_ceil(8)].into_boxed_slice(),
            count,
            stride: registered.stride,
        };
        for (index, run) in runs.iter().enumerate() {
            let entry =
                mappings.entry(u32::try_from(index).unwrap_or(u32::MAX)).cast::<KSMAPPING>();
            // The largest power of two the address is a multiple of, up to a page.
            let alignment = 1_u64 << run.physical.trailing_zeros().min(12);
            // SAFETY: the entry lies inside the table (index < count, stride >= a KSMAPPING,
            // 8-byte aligned).
            unsafe {
                entry.write(KSMAPPING {
                    PhysicalAddress: i64::try_from(run.physical).unwrap_or(i64::MAX),
                    ByteCount: run.bytes,
                    Alignment: u32::try_from(alignment).unwrap_or(4096),
                });
            }
        }
        self.mappings = Some(mappings);
        Ok(())
    }

    /// Ends the frame's mappings: its device may no longer reach it.
    fn unmap(&mut self) {
        if let Some(set) = self.mappings.as_mut().and_then(|m| m.set.take()) {
            crate::dma::unmap(set);
        }
    }

    /// The `KSSTREAM_HEADER` at the start of the header buffer.
    pub(super) fn header_ptr(&self) -> *mut KSSTREAM_HEADER {
        self.header.as_ptr().cast()
    }

    /// A copy of the `KSSTREAM_HEADER`. With the queue's lock held (the driver writes the
    /// header only while the frame is at the locked leading edge, from the pin's processing, or
    /// through a clone).
    pub(super) fn header(&self) -> KSSTREAM_HEADER {
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

    /// The offset a stream pointer at this frame has: the bytes not yet filled, or the mappings
    /// not yet used; `Data` only when `locked`.
    fn offset(&self, locked: bool) -> KSSTREAM_POINTER_OFFSET {
        if let Some(mappings) = &self.mappings {
            let used = self.mappings_used.min(mappings.count);
            let data = if locked { mappings.entry(used).cast() } else { std::ptr::null_mut() };
            return KSSTREAM_POINTER_OFFSET {
                Data: data,
                Count: mappings.count,
                Remaining: mappings.count - used,
            };
        }
        let header = self.header();
        let written = header.DataUsed.min(header.FrameExtent);
        let remaining = header.FrameExtent - written;
        let data = if locked {
            self.frame.as_ptr().wrapping_add(written as usize)
        } else {
            std::ptr::null_mut()
        };
        KSSTREAM_POINTER_OFFSET { Data: data, Count: remaining, Remaining: remaining }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.unmap();
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
    /// A delivered frame's way back upstream.
    release: Option<Release>,
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

/// What passes a completed frame on to the next pin of a graph, with its way back upstream
/// (dropped when that pin is done with it). On the pipe's consumer thread.
pub(crate) type Forward = Box<dyn FnMut(Completed, Release) + Send>;

/// Where a pin's completed frames go.
pub(crate) enum Downstream {
    /// To a consumer, which looks at each and hands it back.
    Consumer(Consumer),
    /// To the next pin of a graph.
    Forward(Forward),
}

/// A clone of a stream pointer (`KsStreamPointerClone`): the `KSSTREAM_POINTER` the driver
/// gets, then its context bytes, in a leaked box of 8-byte words freed by
/// `KsStreamPointerDelete` (or by the pipe at STOP, reported).
struct Clone {
    memory: NonNull<[u64]>,
    /// The frame it refers to.
    frame: u64,
}

// SAFETY: plain memory with one owner (the pin's clone list).
unsafe impl Send for Clone {}

impl Clone {
    fn pointer(&self) -> PKSSTREAM_POINTER {
        self.memory.as_ptr().cast()
    }
}

impl Drop for Clone {
    fn drop(&mut self) {
        // SAFETY: leaked from a Box when the clone was made, freed once, here.
        drop(unsafe { Box::from_raw(self.memory.as_ptr()) });
    }
}

/// A user-mode client's buffers: what it sends down as read requests (each buffer described by
/// a stream header, locked and mapped into system space). Host memory the "client" owns, at the
/// alignment the pin's framing asks for; handed out and back like frames, freed when the pipe
/// stops.
pub(crate) struct ClientBuffers {
    buffers: Vec<NonNull<u8>>,
    layout: Layout,
    /// The buffers not in a request now.
    idle: Mutex<Vec<NonNull<u8>>>,
}

// SAFETY: the buffers are plain memory owned by this value; which ones are idle is behind a
// mutex.
unsafe impl Send for ClientBuffers {}
// SAFETY: as above.
unsafe impl Sync for ClientBuffers {}

impl ClientBuffers {
    /// `count` buffers of `size` bytes aligned to `alignment` (a power of two), or `None` when
    /// the host has no memory for them.
    pub(crate) fn new(count: u32, size: u32, alignment: usize) -> Option<Self> {
        let layout = Layout::from_size_align(size.max(1) as usize, alignment.max(16)).ok()?;
        let mut buffers: Vec<NonNull<u8>> = Vec::with_capacity(count as usize);
        for _ in 0..count {
            // SAFETY: the layout has a non-zero size.
            let Some(buffer) = NonNull::new(unsafe { std::alloc::alloc(layout) }) else {
                for buffer in buffers {
                    // SAFETY: allocated just above with this layout.
                    unsafe { std::alloc::dealloc(buffer.as_ptr(), layout) };
                }
                return None;
            };
            buffers.push(buffer);
        }
        let idle = Mutex::new(buffers.clone());
        Some(Self { buffers, layout, idle })
    }

    /// Bytes of each buffer.
    pub(crate) fn size(&self) -> usize {
        self.layout.size()
    }
}

impl Drop for ClientBuffers {
    fn drop(&mut self) {
        for buffer in &self.buffers {
            // SAFETY: allocated by `new` with this layout; the pipe stopped, so no request holds
            // it.
            unsafe { std::alloc::dealloc(buffer.as_ptr(), self.layout) };
        }
    }
}

/// Where a pipe's frames come from.
pub(crate) enum Source {
    /// An allocator's frames: the pin's own, or the downstream side's.
    Allocator(DispatchAllocator),
    /// A user-mode client's buffers.
    Client(ClientBuffers),
    /// Frames delivered from upstream ([`Shared::deliver`]): an input pin's, or the output pin
    /// of an in-place transform, which passes its input's frames on. None of its own.
    Delivered,
}

impl Source {
    /// A frame (an idle buffer), or `None`. DISPATCH_LEVEL.
    fn take(&self) -> Option<NonNull<u8>> {
        match self {
            Self::Allocator(allocator) => allocator.allocate(),
            Self::Client(client) => crate::lock(&client.idle).pop(),
            Self::Delivered => None,
        }
    }

    /// Gives a frame back. DISPATCH_LEVEL.
    fn give(&self, frame: NonNull<u8>) {
        match self {
            Self::Allocator(allocator) => allocator.free(frame),
            Self::Client(client) => crate::lock(&client.idle).push(frame),
            Self::Delivered => {}
        }
    }

    /// The allocator's context, for an allocator.
    fn context(&self) -> Option<ks_sys::PVOID> {
        match self {
            Self::Allocator(allocator) => Some(allocator.context()),
            Self::Client(_) | Self::Delivered => None,
        }
    }
}

/// The queue and the pipe of one pin, shared with the consumer's thread.
#[derive(Default)]
pub(crate) struct Shared {
    pub(super) queue: Mutex<VecDeque<Queued>>,
    /// The pin's clones, oldest first. Locked after the queue when both are.
    clones: Mutex<Vec<Clone>>,
    /// Frames may be queued (the pin is out of STOP).
    active: AtomicBool,
    source: Mutex<Option<Arc<Source>>>,
    /// The `FrameExtent` of the frames the pipe queues, and the size of their headers.
    frame_size: Mutex<u32>,
    header_size: Mutex<u32>,
    /// How frames are mapped for the device, for a pin that generates mappings.
    mapper: Mutex<Option<Mapper>>,
    /// Frames queued so far (their numbers).
    next_id: AtomicU64,
    /// Bumped whenever the leading edge leaves a frame or a frame completes.
    progress: AtomicU64,
    /// The consumer's channel while the pipe exists.
    sender: Mutex<Option<mpsc::Sender<Completed>>>,
    /// Frames with the consumer, not yet given back.
    in_flight: Mutex<usize>,
    returned: Condvar,
    /// Called after a frame is queued, outside the queue's lock: a filter-centric filter's
    /// pins ask their filter to process.
    arrival: Mutex<Option<Arrival>>,
}

/// What a pin does when a frame reaches its queue.
pub(crate) type Arrival = Arc<dyn Fn() + Send + Sync>;

/// A frame's way home: when the last clone is dropped (the last pin downstream that holds the
/// frame is done with it), the frame goes back to the pipe it came from, at DISPATCH_LEVEL,
/// which gives it back to its source and queues another.
#[derive(Clone)]
pub(crate) struct Release(
    #[expect(dead_code, reason = "held only for its drop, which sends the frame home")]
    Arc<ReleaseInner>,
);

struct ReleaseInner {
    shared: Arc<Shared>,
    frame: NonNull<u8>,
}

// SAFETY: the frame pointer is only handed back to its pipe, which owns the frame's memory.
unsafe impl Send for ReleaseInner {}
// SAFETY: as above; nothing reads through it.
unsafe impl Sync for ReleaseInner {}

impl Drop for ReleaseInner {
    fn drop(&mut self) {
        let (shared, frame) = (&self.shared, self.frame);
        crate::irql::at_dispatch(|| shared.give_back(frame));
    }
}

impl Shared {
    /// The allocator's context, while the pipe has an allocator.
    pub(crate) fn allocator_context(&self) -> Option<ks_sys::PVOID> {
        crate::lock(&self.source).as_ref().and_then(|source| source.context())
    }

    /// Frames in the queue (at or behind the leading edge).
    pub(crate) fn queued(&self) -> usize {
        crate::lock(&self.queue).len()
    }

    /// Frames the leading edge has not left yet: what the pin can process.
    pub(crate) fn ahead(&self) -> usize {
        crate::lock(&self.queue).iter().filter(|frame| !frame.passed).count()
    }

    /// A number that changes whenever the edge leaves a frame or a frame completes.
    pub(crate) fn progress(&self) -> u64 {
        self.progress.load(Ordering::Acquire)
    }

    /// Takes a frame from the source and queues it, if the pin is active; `false` if not or if
    /// the source has none. DISPATCH_LEVEL.
    ///
    /// `active` is checked again under the queue's lock before the push, and [`Pipe::stop`]
    /// clears it under the same lock before it drains the queue: a frame given back while the
    /// pin stops cannot be replaced by one queued after the drain (which would still be out when
    /// the allocator is deleted); one taken meanwhile goes back to the source, before the
    /// consumer's `give_back` counts itself done (`stop` waits for that).
    fn queue_new_frame(&self, source: &Source) -> bool {
        if !self.active.load(Ordering::Acquire) {
            return false;
        }
        let Some(frame) = source.take() else {
            return false;
        };
        let extent = *crate::lock(&self.frame_size);
        let header_size = *crate::lock(&self.header_size);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut queued = Queued::new(frame, header_size, extent, id);
        // Mapped outside the queue's lock: the pin's processing and its DPC use the queue
        // meanwhile.
        if let Some(mapper) = *crate::lock(&self.mapper)
            && let Err(problem) = queued.map(&mapper, extent)
        {
            crate::verifier::report("AVStream (GENERATE_MAPPINGS)", problem);
            drop(queued);
            source.give(frame);
            return false;
        }
        let mut queue = crate::lock(&self.queue);
        if !self.active.load(Ordering::Acquire) {
            drop(queue);
            drop(queued);
            source.give(frame);
            return false;
        }
        queue.push_back(queued);
        drop(queue);
        self.arrived();
        true
    }

    /// Sets what the pin does when a frame reaches its queue.
    pub(crate) fn set_arrival(&self, arrival: Option<Arrival>) {
        *crate::lock(&self.arrival) = arrival;
    }

    fn arrived(&self) {
        let arrival = crate::lock(&self.arrival).clone();
        if let Some(arrival) = arrival {
            arrival();
        }
    }

    /// Queues a frame another pin completed (its header and extended header as `completed`
    /// has them), if the pin is active: it goes back upstream when `release` and every clone of
    /// it are dropped. An output pin's copy (an in-place transform's) starts empty: its
    /// `DataUsed` is what the filter writes. Returns `false`, dropping `release`, when the pin is
    /// not active. IRQL <= DISPATCH_LEVEL.
    pub(crate) fn deliver(&self, completed: &Completed, release: Release, output: bool) -> bool {
        if !self.active.load(Ordering::Acquire) {
            return false;
        }
        let header_size = *crate::lock(&self.header_size);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let source = completed.header;
        let mut queued = Queued::new(completed.frame, header_size, source.FrameExtent, id);
        let header = queued.header_ptr();
        // SAFETY: the fresh header buffer holds a KSSTREAM_HEADER; nothing else has its
        // address yet.
        let size = unsafe { (*header).Size };
        // SAFETY: as above.
        unsafe {
            header.write(KSSTREAM_HEADER {
                Size: size,
                DataUsed: if output { 0 } else { source.DataUsed },
                ..source
            });
        }
        let room = (queued.header.len() * 8).saturating_sub(size_of::<KSSTREAM_HEADER>());
        let extended = completed.extended.get(..completed.extended.len().min(room)).unwrap_or(&[]);
        let after = header.wrapping_add(1).cast::<u8>();
        // SAFETY: `room` bytes follow the KSSTREAM_HEADER in the buffer; `extended` fits.
        unsafe { after.copy_from_nonoverlapping(extended.as_ptr(), extended.len()) };
        queued.release = Some(release);
        {
            let mut queue = crate::lock(&self.queue);
            if !self.active.load(Ordering::Acquire) {
                return false; // `queued` and its release drop: the frame goes back
            }
            queue.push_back(queued);
        }
        self.arrived();
        true
    }

    /// A delivered frame has left this pin's consumer stage (passed on downstream).
    fn forwarded(&self) {
        let mut in_flight = crate::lock(&self.in_flight);
        *in_flight = in_flight.saturating_sub(1);
        self.returned.notify_all();
    }

    /// A frame the consumer is done with: given back to its source, and a fresh one queued
    /// while the pin is active. DISPATCH_LEVEL.
    fn give_back(&self, frame: NonNull<u8>) {
        let source = crate::lock(&self.source).clone();
        if let Some(source) = source {
            source.give(frame);
            self.queue_new_frame(&source);
        }
        let mut in_flight = crate::lock(&self.in_flight);
        *in_flight = in_flight.saturating_sub(1);
        self.returned.notify_all();
    }

    /// Completes the frames at the front of the queue that the edge left and no clone holds,
    /// in order: each goes to the consumer. DISPATCH_LEVEL.
    fn complete_ready(&self) {
        loop {
            let queued = {
                let mut queue = crate::lock(&self.queue);
                match queue.front() {
                    Some(front) if front.passed && front.clones == 0 => queue.pop_front(),
                    _ => None,
                }
            };
            let Some(mut queued) = queued else { return };
            queued.unmap();
            self.progress.fetch_add(1, Ordering::AcqRel);
            let completed = Completed {
                header: queued.header(),
                extended: queued.extended(),
                frame: queued.frame,
                completed: Instant::now(),
                release: queued.release.take(),
            };
            drop(queued);
            *crate::lock(&self.in_flight) += 1;
            let sender = crate::lock(&self.sender).clone();
            let unsent = match sender {
                Some(sender) => sender.send(completed).err().map(|mpsc::SendError(c)| c),
                None => Some(completed),
            };
            if let Some(completed) = unsent {
                // No pipe to take it: a delivered frame goes back upstream (its release drops),
                // a frame of this pipe's source back to the source.
                let frame = completed.frame;
                let delivered = completed.release.is_some();
                drop(completed);
                if delivered {
                    self.forwarded();
                } else {
                    self.give_back(frame);
                }
            }
        }
    }

    /// The edge leaves the frame it is at: it completes when no clone holds it.
    pub(super) fn leave(&self, id: u64) {
        if let Some(frame) = crate::lock(&self.queue).iter_mut().find(|f| f.id == id) {
            frame.passed = true;
        }
        self.progress.fetch_add(1, Ordering::AcqRel);
        self.complete_ready();
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
    pub(crate) fn new(shared: Arc<Shared>, frames: u32, downstream: Downstream) -> Self {
        let (sender, receiver) = mpsc::channel::<Completed>();
        *crate::lock(&shared.sender) = Some(sender);
        let back = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ks-host consumer".to_owned())
            .spawn(move || {
                let mut downstream = downstream;
                let mut alive = true;
                for mut completed in receiver {
                    // A frame delivered from upstream goes on with its way back; a frame of this
                    // pipe's source gets one, to this pipe.
                    let delivered = completed.release.take();
                    let forwarded = delivered.is_some();
                    let release = delivered.unwrap_or_else(|| {
                        Release(Arc::new(ReleaseInner {
                            shared: Arc::clone(&back),
                            frame: completed.frame,
                        }))
                    });
                    match &mut downstream {
                        // A consumer that panics (a failed assertion in a test) gets no more
                        // frames, but every frame is still given back, so STOP does not wait
                        // forever.
                        Downstream::Consumer(consumer) => {
                            if alive {
                                let run = std::panic::AssertUnwindSafe(|| consumer(&completed));
                                alive = std::panic::catch_unwind(run).is_ok();
                            }
                            drop(release);
                        }
                        Downstream::Forward(forward) => forward(completed, release),
                    }
                    if forwarded {
                        back.forwarded();
                    }
                }
            })
            .expect("the host starts the consumer thread");
        Self { shared, consumer: Some(thread), frames }
    }

    /// Takes the source (an allocator, or a client's buffers) and queues the first frames
    /// (STOP to ACQUIRE), mapping them with `mapper` if the pin generates mappings.
    /// PASSIVE_LEVEL; the frames are taken at DISPATCH_LEVEL.
    pub(crate) fn start(
        &self,
        source: Source,
        frame_size: u32,
        header_size: u32,
        mapper: Option<Mapper>,
    ) {
        *crate::lock(&self.shared.frame_size) = frame_size;
        *crate::lock(&self.shared.header_size) = header_size;
        *crate::lock(&self.shared.mapper) = mapper;
        let source = Arc::new(source);
        *crate::lock(&self.shared.source) = Some(Arc::clone(&source));
        self.shared.active.store(true, Ordering::Release);
        crate::irql::at_dispatch(|| {
            for _ in 0..self.frames {
                if !self.shared.queue_new_frame(&source) {
                    break;
                }
            }
        });
    }

    /// Stops queueing, gives the queued frames back, waits for the consumer to give back the
    /// frames it has, and ends the source: the allocator is deleted, a client's buffers freed
    /// (to STOP). PASSIVE_LEVEL, with no processing running.
    /// Clones the driver still holds are a violation (AVStream would wait for them forever):
    /// they are deleted.
    pub(crate) fn stop(&self) {
        let (queued, clones): (Vec<Queued>, Vec<Clone>) = {
            let mut queue = crate::lock(&self.shared.queue);
            self.shared.active.store(false, Ordering::Release);
            let clones = std::mem::take(&mut *crate::lock(&self.shared.clones));
            (queue.drain(..).collect(), clones)
        };
        if !clones.is_empty() {
            crate::verifier::report(
                "AVStream (to STOP)",
                format!(
                    "the driver still holds {} stream pointer clone(s) (KsStreamPointerDelete \
                     them when the pin stops)",
                    clones.len()
                ),
            );
        }
        drop(clones);
        let source = crate::lock(&self.shared.source).clone();
        crate::irql::at_dispatch(|| {
            for mut frame in queued {
                frame.unmap();
                if let Some(source) = &source {
                    source.give(frame.frame);
                }
            }
        });
        drop(source);
        let mut in_flight = crate::lock(&self.shared.in_flight);
        while *in_flight > 0 {
            in_flight = self
                .shared
                .returned
                .wait(in_flight)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(in_flight);
        *crate::lock(&self.shared.mapper) = None;
        // The last reference: DeleteAllocator runs here, at PASSIVE_LEVEL.
        drop(crate::lock(&self.shared.source).take());
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
    /// The frame it is at, while locked.
    frame: Option<u64>,
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
            frame: None,
        }
    }

    /// The stream pointer, as the driver gets it.
    pub(super) fn pointer_mut(&mut self) -> PKSSTREAM_POINTER {
        &raw mut self.pointer
    }

    /// Puts the edge at `frame` (locked or not), or empties it.
    pub(super) fn place(&mut self, frame: Option<&Queued>, locked: bool, output: bool) {
        let Some(frame) = frame else {
            self.locked = false;
            self.frame = None;
            return;
        };
        self.pointer.StreamHeader = frame.header_ptr();
        self.locked = locked;
        self.frame = locked.then_some(frame.id);
        let offset = frame.offset(locked);
        if output {
            self.pointer.OffsetOut = offset;
            self.pointer.Offset = &raw mut self.pointer.OffsetOut;
        } else {
            self.pointer.OffsetIn = offset;
            self.pointer.Offset = &raw mut self.pointer.OffsetIn;
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

/// `KsPinGetLeadingEdgeStreamPointer`: the pin's leading edge at the oldest frame it has not
/// left, or NULL if there is none (or the lock is made to fail: [`fail_leading_edge_locks`]).
/// With `KSSTREAM_POINTER_STATE_LOCKED` the offsets describe the frame's bytes not yet filled
/// (or its mappings not yet used). IRQL <= DISPATCH_LEVEL, from the pin's processing.
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
    let Some(front) = queue.iter().find(|frame| !frame.passed) else {
        edge.place(None, false, state.is_output());
        return std::ptr::null_mut();
    };
    if State == KSSTREAM_POINTER_STATE_LOCKED && lock_fails() {
        edge.place(None, false, state.is_output());
        return std::ptr::null_mut();
    }
    edge.place(Some(front), State == KSSTREAM_POINTER_STATE_LOCKED, state.is_output());
    &raw mut edge.pointer
}

/// Advances the locked edge by `used` bytes (or mappings); the edge leaves its frame when it
/// reaches the frame's end or `eject` is set. Returns whether it left it.
fn advance_edge(
    routine: &'static str,
    state: &super::PinState,
    edge: &mut Edge,
    used: ULONG,
    eject: bool,
) -> bool {
    let Some(id) = edge.frame else {
        return false;
    };
    let mut queue = crate::lock(&state.shared.queue);
    let Some(frame) = queue.iter_mut().find(|f| f.id == id) else {
        return false;
    };
    let at_end = if let Some(mappings) = &frame.mappings {
        let remaining = mappings.count - frame.mappings_used.min(mappings.count);
        if used > remaining {
            crate::verifier::report(
                routine,
                format!("advanced {used} mappings with {remaining} left in the frame"),
            );
        }
        frame.mappings_used = frame.mappings_used.saturating_add(used.min(remaining));
        frame.mappings_used >= mappings.count
    } else {
        let header = frame.header_ptr();
        // SAFETY: the frame's header is live and aligned; the driver, which may write it
        // through its stream pointer, is inside this call (the edge is locked and advanced
        // only from the pin's processing), so nothing else accesses it now.
        let current = unsafe { header.read() };
        let (extent, used_before) = (current.FrameExtent, current.DataUsed);
        let remaining = extent - used_before.min(extent);
        if used > remaining {
            crate::verifier::report(
                routine,
                format!("advanced {used} bytes with {remaining} left in the frame"),
            );
        }
        let data_used = used_before.saturating_add(used.min(remaining));
        // SAFETY: as above.
        unsafe { (*header).DataUsed = data_used };
        data_used >= extent
    };
    let leave = at_end || eject;
    if !leave {
        let frame = &*frame;
        edge.place(Some(frame), true, state.is_output());
    }
    drop(queue);
    if leave {
        state.shared.leave(id);
    }
    leave
}

/// `KsStreamPointerAdvanceOffsetsAndUnlock`: the driver consumed `InUsed` input bytes or
/// filled `OutUsed` output bytes (mappings, for a pin that generates them) at the edge; the
/// edge leaves the frame when it is full or `Eject` is set; the edge is unlocked. IRQL <=
/// DISPATCH_LEVEL.
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
    advance_edge(ROUTINE, state, edge, used, Eject != 0);
    edge.locked = false;
    edge.frame = None;
}

/// `KsStreamPointerAdvanceOffsets`: as [`KsStreamPointerAdvanceOffsetsAndUnlock`], but the edge
/// stays locked: when it leaves its frame it moves to the next one and locks it, or returns
/// `STATUS_DEVICE_NOT_READY` (unlocked) when there is none. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
///
/// `StreamPointer` is a locked stream pointer the host handed out.
// SAFETY: no other symbol of a host process is named `KsStreamPointerAdvanceOffsets`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsStreamPointerAdvanceOffsets(
    StreamPointer: PKSSTREAM_POINTER,
    InUsed: ULONG,
    OutUsed: ULONG,
    Eject: BOOLEAN,
) -> NTSTATUS {
    const ROUTINE: &str = "KsStreamPointerAdvanceOffsets";
    // SAFETY: the caller's contract.
    let Some((state, edge)) = (unsafe { edge_of(ROUTINE, StreamPointer) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if !edge.locked {
        return STATUS_DEVICE_NOT_READY;
    }
    let used = if state.is_output() { OutUsed } else { InUsed };
    if !advance_edge(ROUTINE, state, edge, used, Eject != 0) {
        return STATUS_SUCCESS;
    }
    let queue = crate::lock(&state.shared.queue);
    let next = queue.iter().find(|frame| !frame.passed);
    let found = next.is_some();
    edge.place(next, found, state.is_output());
    if found { STATUS_SUCCESS } else { STATUS_DEVICE_NOT_READY }
}

/// `KsStreamPointerUnlock`: unlocks the edge; with `Eject` it leaves its frame. IRQL <=
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
    if Eject != 0
        && let Some(id) = edge.frame
    {
        state.shared.leave(id);
    }
    edge.locked = false;
    edge.frame = None;
}

/// The pin state of a stream pointer's pin.
///
/// # Safety
///
/// `pointer` is NULL or a stream pointer of a live host pin (its edge or a clone).
unsafe fn pin_of<'a>(
    routine: &'static str,
    pointer: PKSSTREAM_POINTER,
) -> Option<&'a super::PinState> {
    crate::verifier::require_irql_at_most(routine, DISPATCH_LEVEL);
    if pointer.is_null() {
        crate::verifier::report(routine, "NULL stream pointer".to_owned());
        return None;
    }
    // SAFETY: the caller's contract.
    let pin = unsafe { (*pointer).Pin };
    // SAFETY: as above: its pin is live.
    let state = unsafe { super::object::pin_object(pin) };
    if state.is_none() {
        crate::verifier::report(routine, format!("{pointer:p} is not a stream pointer of a pin"));
    }
    state
}

/// `KsStreamPointerClone`: a new stream pointer at the same frame, in the same lock state,
/// with `ContextSize` bytes of zeroed context (`Context`), which holds the frame until
/// `KsStreamPointerDelete`. The source is the leading edge (locked) or another clone.
/// `STATUS_INSUFFICIENT_RESOURCES` when the failure schedule fails it. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
///
/// `StreamPointer` is a stream pointer the host handed out; `CloneStreamPointer` writable.
// SAFETY: no other symbol of a host process is named `KsStreamPointerClone`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsStreamPointerClone(
    StreamPointer: PKSSTREAM_POINTER,
    CancelCallback: PFNKSSTREAMPOINTER,
    ContextSize: ULONG,
    CloneStreamPointer: *mut PKSSTREAM_POINTER,
) -> NTSTATUS {
    const ROUTINE: &str = "KsStreamPointerClone";
    // SAFETY: the caller's contract.
    let Some(state) = (unsafe { pin_of(ROUTINE, StreamPointer) }) else {
        return STATUS_INVALID_PARAMETER;
    };
    if CloneStreamPointer.is_null() {
        crate::verifier::report(ROUTINE, "CloneStreamPointer is NULL".to_owned());
        return STATUS_INVALID_PARAMETER;
    }
    // The cancel callback runs when AVStream cancels the frame; the host never cancels one
    // (frames are taken back only at STOP, after the driver deleted its clones).
    let _ = CancelCallback;
    let edge = state.edge.get();
    // SAFETY: only the edge's address is compared.
    let from_edge = std::ptr::eq(unsafe { &raw const (*edge).pointer }, StreamPointer);
    let frame = if from_edge {
        if !state.processing_held() {
            crate::verifier::report(
                ROUTINE,
                "the edge cloned outside the pin's processing".to_owned(),
            );
            return STATUS_INVALID_PARAMETER;
        }
        // SAFETY: the pin's processing (checked above) is the edge's only user.
        unsafe { (*edge).frame }
    } else {
        crate::lock(&state.shared.clones)
            .iter()
            .find(|clone| std::ptr::eq(clone.pointer(), StreamPointer))
            .map(|clone| clone.frame)
    };
    let Some(frame) = frame else {
        crate::verifier::report(
            ROUTINE,
            format!("{StreamPointer:p} is not a locked leading edge or a clone of this pin"),
        );
        return STATUS_INVALID_PARAMETER;
    };
    if crate::pool::scheduled_failure(None) {
        return STATUS_INSUFFICIENT_RESOURCES;
    }
    let words = (size_of::<KSSTREAM_POINTER>() + ContextSize as usize).div_ceil(8);
    let memory = NonNull::from(Box::leak(vec![0u64; words].into_boxed_slice()));
    let clone = Clone { memory, frame };
    let pointer = clone.pointer();
    let queue = crate::lock(&state.shared.queue);
    let Some(queued) = queue.iter().find(|f| f.id == frame) else {
        return STATUS_INVALID_PARAMETER;
    };
    // SAFETY: the source is a live stream pointer (the caller's contract), read by value.
    let source = unsafe { StreamPointer.read() };
    let context = if ContextSize == 0 {
        std::ptr::null_mut()
    } else {
        pointer.cast::<u8>().wrapping_add(size_of::<KSSTREAM_POINTER>()).cast()
    };
    // SAFETY: the clone's fresh memory holds a KSSTREAM_POINTER, 8-byte aligned.
    unsafe {
        pointer.write(KSSTREAM_POINTER {
            Context: context,
            Pin: source.Pin,
            StreamHeader: queued.header_ptr(),
            Offset: std::ptr::null_mut(),
            OffsetIn: source.OffsetIn,
            OffsetOut: source.OffsetOut,
        });
    }
    let offset = if state.is_output() {
        // SAFETY: as above; only the field's address is taken.
        unsafe { &raw mut (*pointer).OffsetOut }
    } else {
        // SAFETY: as above.
        unsafe { &raw mut (*pointer).OffsetIn }
    };
    // SAFETY: as above.
    unsafe { (*pointer).Offset = offset };
    drop(queue);
    {
        let mut queue = crate::lock(&state.shared.queue);
        if let Some(queued) = queue.iter_mut().find(|f| f.id == frame) {
            queued.clones += 1;
        }
        crate::lock(&state.shared.clones).push(clone);
    }
    // SAFETY: checked non-NULL; the caller's pointer.
    unsafe { CloneStreamPointer.write(pointer) };
    STATUS_SUCCESS
}

/// `KsStreamPointerDelete`: deletes a clone; its frame completes once the edge has left it and
/// no other clone holds it. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
///
/// `StreamPointer` is a clone the host handed out.
// SAFETY: no other symbol of a host process is named `KsStreamPointerDelete`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsStreamPointerDelete(StreamPointer: PKSSTREAM_POINTER) {
    const ROUTINE: &str = "KsStreamPointerDelete";
    // SAFETY: the caller's contract.
    let Some(state) = (unsafe { pin_of(ROUTINE, StreamPointer) }) else { return };
    let removed = {
        let mut queue = crate::lock(&state.shared.queue);
        let mut clones = crate::lock(&state.shared.clones);
        let index = clones.iter().position(|clone| std::ptr::eq(clone.pointer(), StreamPointer));
        index.map(|index| {
            let clone = clones.remove(index);
            if let Some(frame) = queue.iter_mut().find(|f| f.id == clone.frame) {
                frame.clones -= 1;
            }
            clone
        })
    };
    match removed {
        Some(clone) => {
            drop(clone);
            state.shared.complete_ready();
        }
        None => crate::verifier::report(
            ROUTINE,
            format!("{StreamPointer:p} is not a clone of this pin (the edge, or deleted twice)"),
        ),
    }
}

/// `KsPinGetFirstCloneStreamPointer`: the pin's oldest clone, or NULL. IRQL <= DISPATCH_LEVEL.
///
/// # Safety
///
/// `Pin` is a live pin the host made.
// SAFETY: no other symbol of a host process is named `KsPinGetFirstCloneStreamPointer`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsPinGetFirstCloneStreamPointer(Pin: PKSPIN) -> PKSSTREAM_POINTER {
    const ROUTINE: &str = "KsPinGetFirstCloneStreamPointer";
    crate::verifier::require_irql_at_most(ROUTINE, DISPATCH_LEVEL);
    // SAFETY: the caller's contract.
    let Some(state) = (unsafe { super::object::pin_object(Pin) }) else {
        crate::verifier::report(ROUTINE, format!("{Pin:p} is not a pin"));
        return std::ptr::null_mut();
    };
    crate::lock(&state.shared.clones).first().map_or(std::ptr::null_mut(), Clone::pointer)
}

/// `KsStreamPointerGetNextClone`: the clone made after `StreamPointer`, or NULL. IRQL <=
/// DISPATCH_LEVEL.
///
/// # Safety
///
/// `StreamPointer` is a clone the host handed out.
// SAFETY: no other symbol of a host process is named `KsStreamPointerGetNextClone`; ks-sys
// declares it with exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn KsStreamPointerGetNextClone(
    StreamPointer: PKSSTREAM_POINTER,
) -> PKSSTREAM_POINTER {
    const ROUTINE: &str = "KsStreamPointerGetNextClone";
    // SAFETY: the caller's contract.
    let Some(state) = (unsafe { pin_of(ROUTINE, StreamPointer) }) else {
        return std::ptr::null_mut();
    };
    let clones = crate::lock(&state.shared.clones);
    let Some(index) = clones.iter().position(|clone| std::ptr::eq(clone.pointer(), StreamPointer))
    else {
        crate::verifier::report(ROUTINE, format!("{StreamPointer:p} is not a clone of this pin"));
        return std::ptr::null_mut();
    };
    clones.get(index + 1).map_or(std::ptr::null_mut(), Clone::pointer)
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
