//! Filter-centric processing: a filter whose `KSFILTER_DISPATCH.Process` is set processes for
//! all its pins at once, as "Filter-Centric Processing" describes it.
//!
//! The filter processes when every pin it has open can: the pin is in a processing state
//! (PAUSE or RUN; RUN only with `KSPIN_FLAG_PROCESS_IN_RUN_STATE_ONLY`) and has a frame ahead
//! of its leading edge (unless `KSPIN_FLAG_FRAMES_NOT_REQUIRED_FOR_PROCESSING`), and each pin
//! factory has its `InstancesNecessary` pins. A frame reaching one of its pins, or a pin
//! reaching a processing state, asks for processing; a worker thread of the filter runs it at
//! PASSIVE_LEVEL (the host does not model `KSFILTER_FLAG_DISPATCH_LEVEL_PROCESSING`: such a
//! filter is a violation), with the filter's processing mutex held and every pin's processing
//! marked as running (so that the stream pointer routines accept the calls `Process` makes).
//!
//! Each call gets a `KSPROCESSPIN` per open pin, in a `KSPROCESSPIN_INDEXENTRY` per pin factory
//! (in id order): the leading edge locked at the pin's first frame; for an input pin the bytes
//! not yet consumed (`Data`, `BytesAvailable`), for an output pin the room not yet filled; the
//! frame's `OptionsFlags`; `InPlaceCounterpart` for the two pins of an in-place transform the
//! graph runs as one pipe (the output pin's frame is then the input's own, delivered to both).
//! After the call each pin's edge advances by `BytesUsed` (clamped to what was available, a
//! violation beyond it), and leaves the frame when it is used up or `Terminate` is set; frames
//! complete in order. `STATUS_SUCCESS` processes again while every pin can; anything else waits
//! for the next frame. `DelegateBranch` and `CopySource` (splitters) are NULL: graphs here are
//! chains.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::{JoinHandle, ThreadId},
};

use ks_sys::{
    KSFILTER, KSPIN, KSPROCESSPIN, KSPROCESSPIN_INDEXENTRY, PKSPROCESSPIN, STATUS_SUCCESS,
};

use super::object;

/// The processing of one filter-centric filter: its processing mutex and its worker.
pub(crate) struct FilterProcessing {
    /// The thread processing the filter, if any (the processing mutex).
    processor: Mutex<Option<ThreadId>>,
    /// Processing was asked for since the worker last looked.
    again: AtomicBool,
    worker: Mutex<Option<(mpsc::Sender<()>, JoinHandle<()>)>>,
}

impl FilterProcessing {
    /// The processing of `filter`, with its worker thread.
    pub(crate) fn new(filter: *mut KSFILTER) -> Arc<Self> {
        let this = Arc::new(Self {
            processor: Mutex::new(None),
            again: AtomicBool::new(false),
            worker: Mutex::new(None),
        });
        let (sender, receiver) = mpsc::channel::<()>();
        let address = filter.expose_provenance();
        let me = Arc::clone(&this);
        let worker = std::thread::Builder::new()
            .name("ks-host filter worker".to_owned())
            .spawn(move || {
                let filter = std::ptr::with_exposed_provenance_mut::<KSFILTER>(address);
                for () in receiver {
                    // SAFETY: the filter joins this thread before it goes away.
                    unsafe { me.run(filter) };
                }
            })
            .expect("the host starts the filter's worker thread");
        *crate::lock(&this.worker) = Some((sender, worker));
        this
    }

    /// Asks for processing (a frame arrived, or a pin reached a processing state). Any IRQL.
    pub(crate) fn request(&self) {
        self.again.store(true, Ordering::SeqCst);
        if let Some((sender, _)) = &*crate::lock(&self.worker) {
            let _ = sender.send(());
        }
    }

    /// Ends the worker. PASSIVE_LEVEL, before the filter goes away.
    pub(crate) fn end(&self) {
        let worker = crate::lock(&self.worker).take();
        if let Some((sender, worker)) = worker {
            drop(sender);
            let _ = worker.join();
        }
    }

    /// Processes while asked and able to.
    ///
    /// # Safety
    ///
    /// `filter` is a live filter the host made, with this processing.
    unsafe fn run(&self, filter: *mut KSFILTER) {
        while self.again.swap(false, Ordering::SeqCst) {
            loop {
                {
                    let mut processor = crate::lock(&self.processor);
                    if processor.is_some() {
                        break;
                    }
                    *processor = Some(std::thread::current().id());
                }
                // SAFETY: the caller's contract; the processing mutex is held.
                let again = unsafe { process_once(filter) };
                *crate::lock(&self.processor) = None;
                if !again {
                    break;
                }
            }
        }
    }
}

/// A pin of the filter during one call.
struct Taking<'a> {
    pin: *mut KSPIN,
    state: &'a super::PinState,
    factory: u32,
    /// The frame at its leading edge.
    frame: u64,
}

/// One call of the filter's `Process`, if every pin can; returns whether to call again.
///
/// # Safety
///
/// `filter` is a live filter the host made; the caller holds its processing mutex.
unsafe fn process_once(filter: *mut KSFILTER) -> bool {
    // SAFETY: the caller's contract.
    let Some(filter_state) = (unsafe { object::filter_object(filter) }) else {
        return false;
    };
    // SAFETY: the filter is live; its descriptor is the driver's static.
    let descriptor = unsafe { (*filter).Descriptor };
    // SAFETY: the driver's static descriptor and dispatch table.
    let Some(process) = (unsafe { descriptor.as_ref() })
        .and_then(|d| unsafe { d.Dispatch.as_ref() })
        .and_then(|d| d.Process)
    else {
        return false;
    };
    // SAFETY: as above.
    let descriptor = unsafe { &*descriptor };
    let me = std::thread::current().id();
    let mut taking: Vec<Taking<'_>> = Vec::new();
    let ready = {
        let instances = crate::lock(&filter_state.instances);
        let mut ready = true;
        for (factory, open) in (0u32..).zip(instances.iter()) {
            let Some(pin_descriptor) = super::pin_descriptor(descriptor, factory) else {
                ready = false;
                break;
            };
            if open.len() < pin_descriptor.InstancesNecessary as usize {
                ready = false;
                break;
            }
            for &address in open {
                let pin = std::ptr::with_exposed_provenance_mut::<KSPIN>(address);
                // SAFETY: a pin of the filter, in its instance list while live.
                let Some(state) = (unsafe { object::pin_object(pin) }) else {
                    ready = false;
                    break;
                };
                let mut processor = crate::lock(&state.processor);
                if processor.is_some() || !state.may_process() {
                    ready = false;
                    break;
                }
                *processor = Some(me);
                drop(processor);
                taking.push(Taking { pin, state, factory, frame: 0 });
            }
            if !ready {
                break;
            }
        }
        ready
    };
    let release = |taking: &[Taking<'_>]| {
        for t in taking {
            *crate::lock(&t.state.processor) = None;
        }
    };
    if !ready || taking.is_empty() {
        release(&taking);
        return false;
    }
    let Some(mut pins) = process_pins(&mut taking) else {
        release(&taking);
        return false; // FRAMES_NOT_REQUIRED pin without a frame: not modelled further
    };
    let base = pins.as_mut_ptr();
    for (i, t) in taking.iter().enumerate() {
        let counterpart = *crate::lock(&t.state.in_place);
        let found = counterpart
            .and_then(|address| taking.iter().position(|other| other.pin.addr() == address));
        if let (Some(j), Some(pin)) = (found, pins.get_mut(i)) {
            pin.InPlaceCounterpart = base.wrapping_add(j);
        }
    }
    // The index: per pin factory, pointers to its process pins.
    let mut pointers: Vec<PKSPROCESSPIN> =
        (0..taking.len()).map(|i| base.wrapping_add(i)).collect();
    let pointer_base = pointers.as_mut_ptr();
    let factories = descriptor.PinDescriptorsCount;
    let mut index: Vec<KSPROCESSPIN_INDEXENTRY> = Vec::with_capacity(factories as usize);
    for factory in 0..factories {
        let first = taking.iter().position(|t| t.factory == factory);
        let count = taking.iter().filter(|t| t.factory == factory).count();
        index.push(KSPROCESSPIN_INDEXENTRY {
            Pins: first.map_or(std::ptr::null_mut(), |i| pointer_base.wrapping_add(i)),
            Count: u32::try_from(count).unwrap_or(u32::MAX),
        });
    }
    // SAFETY: the driver's filter-centric callback with its live filter and an index of live
    // process pins, at PASSIVE_LEVEL, with the filter's processing mutex held.
    let status = unsafe { process(filter, index.as_mut_ptr()) };
    for (t, pin) in taking.iter().zip(&pins) {
        // SAFETY: as above: the edge is this processing's.
        let edge = unsafe { &mut *t.state.edge.get() };
        edge.place(None, false, t.state.is_output());
        let leave = finish(t, pin);
        *crate::lock(&t.state.processor) = None;
        if leave {
            t.state.shared.leave(t.frame);
        }
    }
    drop(pointers);
    status == STATUS_SUCCESS
}

/// A process pin for each pin of the call, its leading edge locked at its first frame; `None`
/// if a pin has no frame.
fn process_pins(taking: &mut [Taking<'_>]) -> Option<Vec<KSPROCESSPIN>> {
    let mut pins: Vec<KSPROCESSPIN> = Vec::with_capacity(taking.len());
    for t in taking.iter_mut() {
        // SAFETY: only the pin's processing, marked as this thread's, uses its edge.
        let edge = unsafe { &mut *t.state.edge.get() };
        let queue = crate::lock(&t.state.shared.queue);
        let front = queue.iter().find(|frame| !frame.passed)?;
        t.frame = front.id;
        edge.place(Some(front), true, t.state.is_output());
        let header = front.header();
        let (data, available) = if t.state.is_output() {
            let written = header.DataUsed.min(header.FrameExtent);
            (front.frame.as_ptr().wrapping_add(written as usize), header.FrameExtent - written)
        } else {
            let consumed = front.consumed.min(header.DataUsed);
            (front.frame.as_ptr().wrapping_add(consumed as usize), header.DataUsed - consumed)
        };
        pins.push(KSPROCESSPIN {
            Pin: t.pin,
            StreamPointer: edge.pointer_mut(),
            InPlaceCounterpart: std::ptr::null_mut(),
            DelegateBranch: std::ptr::null_mut(),
            CopySource: std::ptr::null_mut(),
            Data: data.cast(),
            BytesAvailable: available,
            BytesUsed: 0,
            Flags: header.OptionsFlags,
            Terminate: 0,
        });
    }
    Some(pins)
}

/// Applies what `Process` said of one pin's frame; returns whether the edge leaves it.
fn finish(t: &Taking<'_>, pin: &KSPROCESSPIN) -> bool {
    const ROUTINE: &str = "AVStrMiniFilterProcess";
    let used = if pin.BytesUsed > pin.BytesAvailable {
        crate::verifier::report(
            ROUTINE,
            format!(
                "BytesUsed {} of pin {} is more than the {} bytes available",
                pin.BytesUsed,
                // SAFETY: a live pin of the filter.
                unsafe { (*t.pin).Id },
                pin.BytesAvailable
            ),
        );
        pin.BytesAvailable
    } else {
        pin.BytesUsed
    };
    let mut queue = crate::lock(&t.state.shared.queue);
    let Some(frame) = queue.iter_mut().find(|f| f.id == t.frame) else {
        return false;
    };
    let header = frame.header_ptr();
    // SAFETY: the frame's header, live and aligned; the driver's call has returned.
    let current = unsafe { header.read() };
    let used_up = if t.state.is_output() {
        let written = current.DataUsed.saturating_add(used).min(current.FrameExtent);
        // SAFETY: as above.
        unsafe { (*header).DataUsed = written };
        written >= current.FrameExtent
    } else {
        frame.consumed = frame.consumed.saturating_add(used).min(current.DataUsed);
        frame.consumed >= current.DataUsed
    };
    used_up || pin.Terminate != 0
}
