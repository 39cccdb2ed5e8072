//! The `KSALLOCATOR_DISPATCH` tables called through their C function pointers, exactly as
//! ks.sys calls them, on the user-mode host: the default allocator, a vendor allocator, the
//! `KsCreateDefaultAllocatorEx` path, bad input, and a fault-injection sweep over
//! `InitializeAllocator`.

extern crate ks_host;

use std::ptr::{self, NonNull};

use ks_allocator::{
    DEFAULT_DISPATCH, DefaultAllocator, Error, FramePool, PinAllocator, PoolConfig,
    dispatch::AllocatorOwner,
    dispatch_table,
    framing::{Framing, OptionFlags, PoolType},
    pool::FrameMemory,
};
use ks_host::{Session, ks::AllocatorCreateRequest};
use ks_sys::{
    KSALLOCATOR_DISPATCH, KSALLOCATOR_FRAMING, KSPIN, NTSTATUS, PVOID,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
};

const SENTINEL: PVOID = 0x5EED as PVOID;

fn framing(frames: u32, frame_size: u32, alignment: u32) -> KSALLOCATOR_FRAMING {
    Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, frames, frame_size, alignment)
        .to_raw()
}

/// A pin object for the callbacks' `Pin` argument; the allocator only keeps its address.
fn pin() -> Box<KSPIN> {
    // SAFETY: KSPIN is plain data (pointers, integers, GUIDs); all zeros is a valid value.
    Box::new(unsafe { std::mem::zeroed() })
}

/// Calls `InitializeAllocator` through the table; returns the status and the context.
fn initialize(
    table: &KSALLOCATOR_DISPATCH,
    pin: &mut KSPIN,
    mut framing: KSALLOCATOR_FRAMING,
) -> (NTSTATUS, PVOID) {
    let mut context = SENTINEL;
    let initialize = table.InitializeAllocator.expect("InitializeAllocator");
    // SAFETY: what ks.sys passes: a pin, a framing it owns for the call, an out-pointer.
    let status = unsafe { initialize(pin, &raw mut framing, &raw mut context) };
    (status, context)
}

fn allocate(table: &KSALLOCATOR_DISPATCH, context: PVOID) -> PVOID {
    // SAFETY: a live context from InitializeAllocator.
    unsafe { table.Allocate.expect("Allocate")(context) }
}

fn free(table: &KSALLOCATOR_DISPATCH, context: PVOID, frame: PVOID) {
    // SAFETY: a live context from InitializeAllocator.
    unsafe { table.Free.expect("Free")(context, frame) }
}

fn delete(table: &KSALLOCATOR_DISPATCH, context: PVOID) {
    // SAFETY: a live context from InitializeAllocator, deleted once.
    unsafe { table.DeleteAllocator.expect("DeleteAllocator")(context) }
}

#[test]
fn default_dispatch_allocates_n_frames_then_null_and_deletes_without_leaks() {
    let host = Session::begin();
    let mut pin = pin();
    let table = DEFAULT_DISPATCH;
    let (status, context) = initialize(table, &mut pin, framing(4, 230_400, 0x3F));
    assert_eq!(status, STATUS_SUCCESS);
    assert_ne!(context, SENTINEL);
    assert!(host.live().count >= 3, "context, bookkeeping and frames");

    let frames: Vec<PVOID> = (0..4).map(|_| allocate(table, context)).collect();
    assert!(frames.iter().all(|f| !f.is_null() && (*f as usize).trailing_zeros() >= 6));
    assert!(allocate(table, context).is_null(), "the fifth allocation finds nothing");
    ks_host::irql::at_dispatch(|| {
        for frame in &frames {
            free(table, context, *frame);
        }
        assert!(!allocate(table, context).is_null(), "Allocate works at DISPATCH_LEVEL");
    });
    delete(table, context);
    assert!(host.live().is_empty(), "{}", host.live());
}

#[test]
fn delete_releases_frames_still_outstanding() {
    let host = Session::begin();
    let mut pin = pin();
    let (status, context) = initialize(DEFAULT_DISPATCH, &mut pin, framing(3, 1 << 20, 0xFFF));
    assert_eq!(status, STATUS_SUCCESS);
    for _ in 0..3 {
        assert!(!allocate(DEFAULT_DISPATCH, context).is_null());
    }
    delete(DEFAULT_DISPATCH, context);
    assert!(host.live().is_empty(), "{}", host.live());
}

#[test]
fn bad_frees_through_the_table_are_harmless() {
    let host = Session::begin();
    let mut pin = pin();
    let (_, context) = initialize(DEFAULT_DISPATCH, &mut pin, framing(2, 4096, 0));
    let frame = allocate(DEFAULT_DISPATCH, context);
    free(DEFAULT_DISPATCH, context, frame);
    free(DEFAULT_DISPATCH, context, frame); // double
    free(DEFAULT_DISPATCH, context, frame.cast::<u8>().wrapping_add(8).cast()); // interior
    free(DEFAULT_DISPATCH, context, ptr::null_mut()); // NULL is ignored
    let mut local = 0u8;
    free(DEFAULT_DISPATCH, context, (&raw mut local).cast()); // foreign
    let again = [allocate(DEFAULT_DISPATCH, context), allocate(DEFAULT_DISPATCH, context)];
    assert!(again.iter().all(|f| !f.is_null()) && again[0] != again[1]);
    assert!(allocate(DEFAULT_DISPATCH, context).is_null());
    assert_eq!(host.take_output().len(), 3, "double, interior and foreign are each reported");
    delete(DEFAULT_DISPATCH, context);
}

#[test]
fn invalid_framings_and_pointers_fail_without_touching_the_context() {
    let _host = Session::begin();
    let mut pin = pin();
    let bad = [
        framing(2, 0, 0),
        framing(2, 100, 6),
        framing(2, 100, 0x1FFF),
        KSALLOCATOR_FRAMING { OptionsFlags: 0x4000_0000, ..framing(2, 100, 0) },
        KSALLOCATOR_FRAMING { PoolType: 7, ..framing(2, 100, 0) },
    ];
    for framing in bad {
        let (status, context) = initialize(DEFAULT_DISPATCH, &mut pin, framing);
        assert_eq!(status, STATUS_INVALID_PARAMETER, "{framing:?}");
        assert_eq!(context, SENTINEL, "*Context is written only on success");
    }
    let initialize = DEFAULT_DISPATCH.InitializeAllocator.unwrap();
    let mut context = SENTINEL;
    let mut raw = framing(2, 100, 0);
    // SAFETY: NULL framing / NULL context are what the trampoline must reject.
    unsafe {
        assert_eq!(
            initialize(&raw mut *pin, ptr::null_mut(), &raw mut context),
            STATUS_INVALID_PARAMETER
        );
    }
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            initialize(&raw mut *pin, &raw mut raw, ptr::null_mut()),
            STATUS_INVALID_PARAMETER
        );
    }
    assert_eq!(context, SENTINEL);
}

#[test]
fn fault_injection_sweep_over_initialize_allocator() {
    let host = Session::begin();
    let mut pin = pin();
    for raw in [framing(4, 153_600, 0), framing(0, 4096, 0xFFF)] {
        let mut failures = 0;
        for n in 1.. {
            ks_host::pool::fail_nth(n);
            let (status, context) = initialize(DEFAULT_DISPATCH, &mut pin, raw);
            ks_host::pool::clear_failures();
            if status == STATUS_SUCCESS {
                assert!(n > 1);
                delete(DEFAULT_DISPATCH, context);
                assert!(host.live().is_empty());
                break;
            }
            failures += 1;
            assert_eq!(status, STATUS_INSUFFICIENT_RESOURCES, "allocation {n}");
            assert_eq!(context, SENTINEL, "allocation {n}: *Context written on failure");
            assert!(host.live().is_empty(), "allocation {n} leaked: {}", host.live());
        }
        assert_eq!(failures, 3, "bookkeeping, frames and context: each failure point was hit");
    }
}

#[test]
fn paged_pool_type_gets_paged_frames() {
    let _host = Session::begin();
    let framing = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::PAGED, 2, 4096, 0);
    let allocator =
        DefaultAllocator::initialize(AllocatorOwner::from_ptr(ptr::null_mut()), &framing).unwrap();
    assert!(allocator.pool().memory().is_paged());
    assert!(!allocator.pool().usable_at_dispatch());
}

#[test]
fn the_stream_class_path_serves_allocator_objects() {
    let host = Session::begin();
    let mut request = AllocatorCreateRequest::new(&framing(3, 8192, 7));
    let filter_context = 0xF117 as PVOID;
    // SAFETY: the IRP of a live allocator create request.
    let result = unsafe {
        ks_allocator::dispatch::create_allocator_object::<DefaultAllocator>(
            request.irp(),
            filter_context,
        )
    };
    assert_eq!(result, Ok(()));
    let object = request.allocator().expect("allocator object");
    let frames: Vec<NonNull<u8>> = std::iter::from_fn(|| object.allocate_frame()).collect();
    assert_eq!(frames.len(), 3);
    assert_eq!(object.status().AllocatedFrames, 3);
    for frame in frames {
        object.free_frame(frame);
    }
    assert_eq!(object.status().AllocatedFrames, 0);
    object.close();
    assert!(host.live().is_empty(), "{}", host.live());

    // Requests ks.sys rejects never reach the callbacks.
    for parameters in
        [vec![0u8; 20], bytes_of(&framing(3, 0, 0)), bytes_of(&framing(3, 64, 0x2000))]
    {
        let mut request = AllocatorCreateRequest::with_parameters(&parameters);
        // SAFETY: as above.
        let result = unsafe {
            ks_allocator::dispatch::create_allocator_object::<DefaultAllocator>(
                request.irp(),
                filter_context,
            )
        };
        assert_eq!(result, Err(Error::INVALID_PARAMETER));
        assert!(request.allocator().is_none());
    }
    // And InitializeAllocator's failure is the create's failure.
    ks_host::pool::fail_all();
    let mut request = AllocatorCreateRequest::new(&framing(3, 64, 0));
    // SAFETY: as above.
    let result = unsafe {
        ks_allocator::dispatch::create_allocator_object::<DefaultAllocator>(
            request.irp(),
            filter_context,
        )
    };
    ks_host::pool::clear_failures();
    assert_eq!(result, Err(Error::INSUFFICIENT_RESOURCES));
    assert!(request.allocator().is_none());
    assert!(host.live().is_empty());
}

fn bytes_of(framing: &KSALLOCATOR_FRAMING) -> Vec<u8> {
    Framing::from_raw(framing).to_bytes().to_vec()
}

/// A driver's own allocator: frames from a device buffer, built into a dispatch table with one
/// line.
struct DeviceAllocator {
    pool: FramePool<Bump>,
}

struct Bump {
    region: std::sync::Mutex<Option<(usize, usize)>>,
}

// SAFETY: hands out one 64-byte-aligned block of at most 64 KiB from the system allocator and
// takes it back; usable anywhere.
unsafe impl FrameMemory for Bump {
    fn usable_at_dispatch(&self) -> bool {
        true
    }
    fn alignment(&self, _: usize) -> usize {
        64
    }
    fn allocate(&self, bytes: usize) -> Option<NonNull<u8>> {
        let layout = std::alloc::Layout::from_size_align(bytes, 64).ok()?;
        // SAFETY: the pool never asks for 0 bytes.
        let block = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        *self.region.lock().unwrap() = Some((block.as_ptr() as usize, bytes));
        Some(block)
    }
    unsafe fn free(&self, block: NonNull<u8>, bytes: usize) {
        let layout = std::alloc::Layout::from_size_align(bytes, 64).unwrap();
        // SAFETY: allocated above with this layout.
        unsafe { std::alloc::dealloc(block.as_ptr(), layout) };
        *self.region.lock().unwrap() = None;
    }
}

impl PinAllocator for DeviceAllocator {
    fn initialize(owner: AllocatorOwner, framing: &Framing) -> ks_allocator::Result<Self> {
        let memory = Bump { region: std::sync::Mutex::new(None) };
        let pool = FramePool::new(
            framing,
            memory,
            PoolConfig::DEFAULT.with_owner(owner.as_ptr() as usize),
        )?;
        Ok(Self { pool })
    }
    fn allocate(&self) -> Option<NonNull<u8>> {
        self.pool.allocate()
    }
    fn free(&self, frame: NonNull<u8>) {
        let _ = self.pool.free(frame);
    }
}

static DEVICE_DISPATCH: &KSALLOCATOR_DISPATCH = dispatch_table::<DeviceAllocator>();

#[test]
fn a_driver_builds_a_table_from_its_own_allocator() {
    let host = Session::begin();
    let mut pin = pin();
    let (status, context) = initialize(DEVICE_DISPATCH, &mut pin, framing(2, 1000, 0x3F));
    assert_eq!(status, STATUS_SUCCESS);
    let a = allocate(DEVICE_DISPATCH, context);
    let b = allocate(DEVICE_DISPATCH, context);
    assert!(!a.is_null() && !b.is_null() && allocate(DEVICE_DISPATCH, context).is_null());
    // SAFETY: the context is the DeviceAllocator InitializeAllocator stored.
    let device = unsafe { &*context.cast::<DeviceAllocator>() };
    let (start, len) = device.pool.memory().region.lock().unwrap().unwrap();
    assert!(
        (a as usize) >= start && (b as usize) + 1000 <= start + len,
        "frames come from the device block"
    );
    free(DEVICE_DISPATCH, context, a);
    free(DEVICE_DISPATCH, context, b);
    delete(DEVICE_DISPATCH, context);
    assert!(host.live().is_empty());
}
