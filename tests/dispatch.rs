//! The `KSALLOCATOR_DISPATCH` tables called through their C function pointers, exactly as
//! AVStream calls them (ks-host's `DispatchAllocator`), on the user-mode host: the default
//! allocator, the request held against the pin and the budget, deleting with frames outstanding,
//! a driver's own allocator, the `KsCreateDefaultAllocatorEx` path, bad input, and a
//! fault-injection sweep over `InitializeAllocator`.

extern crate ks_host;

use std::ptr::{self, NonNull};

use ks_allocator::{
    AllocatorRequest, Budget, DEFAULT_DISPATCH, DefaultAllocator, Error, FramePool, PinAllocator,
    PinConstraints, PoolConfig, dispatch_table,
    framing::{FramingEx, FramingItem, FramingRange, ItemFlags, MemoryType, OptionFlags, PoolType},
    pool::FrameMemory,
};
use ks_host::{Session, ks::AllocatorCreateRequest, ks::DispatchAllocator};
use ks_sys::{
    KSALLOCATOR_DISPATCH, KSALLOCATOR_FRAMING, KSPIN, KSPIN_DESCRIPTOR_EX, NTSTATUS, PVOID,
    STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER,
};

fn framing(frames: u32, frame_size: u32, alignment: u32) -> KSALLOCATOR_FRAMING {
    ks_allocator::framing::Framing::request(
        OptionFlags::SYSTEM_MEMORY,
        PoolType::NON_PAGED,
        frames,
        frame_size,
        alignment,
    )
    .to_raw()
}

fn paged(frames: u32, frame_size: u32) -> KSALLOCATOR_FRAMING {
    KSALLOCATOR_FRAMING { PoolType: ks_sys::PagedPool, ..framing(frames, frame_size, 0) }
}

/// A pin as AVStream hands it to `InitializeAllocator`: a `KSPIN` whose descriptor has `flags`
/// and, optionally, a framing.
struct TestPin {
    pin: Box<KSPIN>,
    _descriptor: Box<KSPIN_DESCRIPTOR_EX>,
    _framing: Option<Box<FramingEx<1>>>,
}

impl TestPin {
    fn new(flags: u32, framing: Option<FramingEx<1>>) -> Self {
        let framing = framing.map(Box::new);
        // SAFETY: plain-data C structures; zero is a valid value for each field.
        let mut descriptor: Box<KSPIN_DESCRIPTOR_EX> = Box::new(unsafe { std::mem::zeroed() });
        descriptor.Flags = flags;
        descriptor.AllocatorFraming = framing.as_ref().map_or(ptr::null(), |f| f.as_raw());
        // SAFETY: as above.
        let mut pin: Box<KSPIN> = Box::new(unsafe { std::mem::zeroed() });
        pin.Descriptor = &raw const *descriptor;
        Self { pin, _descriptor: descriptor, _framing: framing }
    }

    /// A pin without flags or framing.
    fn plain() -> Self {
        Self::new(0, None)
    }

    fn as_ptr(&mut self) -> *mut KSPIN {
        &raw mut *self.pin
    }
}

/// `InitializeAllocator` through `table`, as AVStream calls it.
fn initialize(
    table: &'static KSALLOCATOR_DISPATCH,
    pin: &mut TestPin,
    framing: KSALLOCATOR_FRAMING,
) -> Result<DispatchAllocator, NTSTATUS> {
    // SAFETY: a live test pin (its descriptor and framing included) that outlives the allocator
    // in every test below.
    unsafe { DispatchAllocator::initialize(table, pin.as_ptr(), &framing) }
}

#[test]
fn default_dispatch_allocates_n_frames_then_null_and_deletes_without_leaks() {
    let host = Session::begin();
    let mut pin = TestPin::plain();
    let allocator = initialize(DEFAULT_DISPATCH, &mut pin, framing(4, 230_400, 0x3F)).unwrap();
    assert!(host.live().count >= 3, "context, bookkeeping and frames");
    let calls = ks_host::pool::allocation_calls();
    let frames: Vec<NonNull<u8>> = (0..4).map(|_| allocator.allocate().unwrap()).collect();
    assert!(frames.iter().all(|f| (f.as_ptr() as usize).trailing_zeros() >= 6));
    assert_eq!(allocator.allocate(), None, "the fifth allocation finds nothing");
    for frame in &frames {
        allocator.free(*frame);
    }
    assert!(allocator.allocate().is_some(), "frames come back");
    assert_eq!(ks_host::pool::allocation_calls(), calls, "Allocate never calls the system pool");
    drop(allocator);
    assert!(host.take_output().len() == 1, "the frame still out at delete is reported");
    if cfg!(debug_assertions) {
        assert_eq!(host.take_violations().len(), 1, "and stops in the debugger");
    }
    assert_eq!(ks_allocator::retired_allocators().allocators, 1, "and its memory kept");
    // SAFETY: the frame still out is not used any more.
    unsafe { ks_allocator::release_retired_allocators() };
    assert!(host.live().is_empty(), "{}", host.live());
}

#[test]
fn an_uncapped_request_is_preallocated_and_allocate_never_grows_it() {
    let host = Session::begin();
    let mut pin = TestPin::plain();
    let allocator = initialize(DEFAULT_DISPATCH, &mut pin, framing(0, 4096, 0)).unwrap();
    let calls = ks_host::pool::allocation_calls();
    let uncapped = PoolConfig::DEFAULT.uncapped_frames as usize;
    let frames: Vec<NonNull<u8>> = std::iter::from_fn(|| allocator.allocate()).collect();
    assert_eq!(frames.len(), uncapped, "Frames = 0 gets the budget's documented count");
    assert_eq!(ks_host::pool::allocation_calls(), calls, "no pool call from Allocate");
    for frame in frames {
        allocator.free(frame);
    }
    drop(allocator);
    assert!(host.live().is_empty() && host.take_output().is_empty());
}

/// Review finding 5: `DeleteAllocator` with frames still out freed their memory, so a consumer
/// still writing them corrupted whatever reused it. The allocator is now kept (memory and all),
/// reported, counted, off its pin but under the driver's ceiling, until the driver releases it.
#[test]
fn delete_with_frames_outstanding_keeps_their_memory_until_released() {
    let host = Session::begin();
    let mut pin = TestPin::plain();
    let allocator = initialize(DEFAULT_DISPATCH, &mut pin, framing(3, 1 << 20, 0xFFF)).unwrap();
    let frames: Vec<NonNull<u8>> = (0..3).map(|_| allocator.allocate().unwrap()).collect();
    let live = ks_allocator::live_allocators();
    assert_eq!(ks_allocator::live_allocators_on(pin.as_ptr()), 1);
    drop(allocator);
    let output = host.take_output();
    assert_eq!(output.len(), 1);
    assert_eq!(output[0].level, ks_sys::DPFLTR_ERROR_LEVEL);
    assert!(output[0].text.contains("deleted with 3 frames outstanding"), "{}", output[0].text);
    assert!(
        output[0].text.contains("are kept until release_retired_allocators()"),
        "{}",
        output[0].text
    );
    let violations = host.take_violations();
    if cfg!(debug_assertions) {
        assert!(
            matches!(&violations[..], [v] if v.routine == "DbgBreakPoint"),
            "debug builds stop in the debugger: {violations:?}"
        );
    } else {
        assert!(violations.is_empty());
    }
    // The consumer's late writes land in memory that is still the frames'.
    for frame in &frames {
        // SAFETY: the retired allocator keeps the frames' memory: 1 MiB each.
        unsafe { frame.as_ptr().write_bytes(0xA5, 1 << 20) };
    }
    let retired = ks_allocator::retired_allocators();
    assert_eq!((retired.allocators, retired.frames), (1, 3));
    assert!(retired.bytes >= 3 << 20);
    assert!(!host.live().is_empty(), "kept: {}", host.live());
    assert_eq!(ks_allocator::live_allocators(), live, "still counted for the driver");
    assert_eq!(ks_allocator::live_allocators_on(pin.as_ptr()), 0, "no longer the pin's");
    // SAFETY: the consumer is done with the frames.
    let released = unsafe { ks_allocator::release_retired_allocators() };
    assert_eq!(released, retired);
    assert_eq!(ks_allocator::retired_allocators(), ks_allocator::RetiredStats::default());
    assert_eq!(ks_allocator::live_allocators(), live - 1);
    assert!(host.live().is_empty(), "{}", host.live());
    assert!(host.take_output().is_empty(), "released quietly: the frames were reclaimed");
}

/// Review finding 4: nothing bounded how many allocators one pin or the driver had alive. The
/// budget's ceilings refuse one more, reported like every other refusal, and a deletion gives
/// the place back.
#[test]
fn allocators_per_pin_and_per_driver_have_a_ceiling() {
    let host = Session::begin();
    let mut pin = TestPin::plain();
    let per_pin = PoolConfig::DEFAULT.max_allocators_per_pin as usize;
    let mut held: Vec<DispatchAllocator> = (0..per_pin)
        .map(|_| initialize(DEFAULT_DISPATCH, &mut pin, framing(2, 4096, 0)).unwrap())
        .collect();
    assert_eq!(ks_allocator::live_allocators_on(pin.as_ptr()) as usize, per_pin);
    let refused = initialize(DEFAULT_DISPATCH, &mut pin, framing(2, 4096, 0));
    assert_eq!(refused.err(), Some(ks_sys::STATUS_INSUFFICIENT_RESOURCES));
    let output = host.take_output();
    assert!(output[0].text.contains("the pin has 4 allocators alive"), "{}", output[0].text);
    // Another pin is not affected; the first gets its place back when one is deleted.
    let mut other = TestPin::plain();
    let on_other = initialize(DEFAULT_DISPATCH, &mut other, framing(2, 4096, 0)).unwrap();
    held.pop();
    held.push(initialize(DEFAULT_DISPATCH, &mut pin, framing(2, 4096, 0)).unwrap());
    drop(on_other);
    drop(held);
    assert_eq!(ks_allocator::live_allocators_on(pin.as_ptr()), 0);
    // The driver-wide ceiling: pins of their own, 64 at most.
    let before = ks_allocator::live_allocators() as usize;
    let ceiling = PoolConfig::DEFAULT.max_allocators as usize;
    let mut pins: Vec<TestPin> = (0..=ceiling).map(|_| TestPin::plain()).collect();
    let mut all = Vec::new();
    let mut refusals = 0;
    for pin in &mut pins {
        match initialize(DEFAULT_DISPATCH, pin, framing(1, 64, 0)) {
            Ok(allocator) => all.push(allocator),
            Err(status) => {
                assert_eq!(status, ks_sys::STATUS_INSUFFICIENT_RESOURCES);
                refusals += 1;
            }
        }
    }
    assert_eq!(all.len(), ceiling - before);
    assert_eq!(refusals, pins.len() - all.len());
    let output = host.take_output();
    assert!(output.iter().all(|r| r.text.contains("the driver has")), "{output:?}");
    drop(all);
    assert_eq!(ks_allocator::live_allocators() as usize, before);
    assert!(host.live().is_empty(), "{}", host.live());
}

#[test]
fn paged_frames_are_refused_for_pins_that_need_nonpaged_frames() {
    let host = Session::begin();
    for flags in
        [ks_sys::KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING, ks_sys::KSPIN_FLAG_GENERATE_MAPPINGS]
    {
        let mut pin = TestPin::new(flags, None);
        let result = initialize(DEFAULT_DISPATCH, &mut pin, paged(2, 4096));
        assert_eq!(result.err(), Some(STATUS_INVALID_PARAMETER), "flags {flags:#x}");
        let output = host.take_output();
        assert_eq!(output.len(), 1, "{output:?}");
        assert!(output[0].text.contains("allocator request for"), "{}", output[0].text);
        assert!(output[0].text.contains("must be non-paged"), "{}", output[0].text);
        // Non-paged frames are fine for the same pin.
        let allocator = initialize(DEFAULT_DISPATCH, &mut pin, framing(2, 4096, 0)).unwrap();
        drop(allocator);
    }
    // An ordinary pin may have paged frames.
    let mut pin = TestPin::plain();
    let allocator = initialize(DEFAULT_DISPATCH, &mut pin, paged(2, 4096)).unwrap();
    // SAFETY: the context DEFAULT_DISPATCH stores is a DefaultAllocator.
    let context = unsafe { &*allocator.context().cast::<DefaultAllocator>() };
    assert!(context.pool().memory().is_paged());
    drop(allocator);
    assert!(host.live().is_empty(), "{}", host.live());
}

#[test]
fn requests_beyond_the_budget_are_refused_before_anything_is_allocated() {
    let host = Session::begin();
    let mut pin = TestPin::plain();
    let calls = ks_host::pool::allocation_calls();
    // 65535 frames of 64 KiB would be 4 GiB of non-paged pool.
    let cases = [
        (framing(65_535, 64 << 10, 0), "Frames 65535 exceeds the allocator budget of 1024 frames"),
        (framing(1024, 1 << 20, 0), "exceed the allocator budget of 67108864 bytes"),
        (framing(2, u32::MAX, 0xFFF), "exceed the allocator budget"),
    ];
    for (request, message) in cases {
        let result = initialize(DEFAULT_DISPATCH, &mut pin, request);
        assert_eq!(result.err(), Some(STATUS_INSUFFICIENT_RESOURCES), "{request:?}");
        let output = host.take_output();
        assert!(output[0].text.contains(message), "{}", output[0].text);
    }
    assert_eq!(ks_host::pool::allocation_calls(), calls, "nothing was allocated");
    assert!(host.live().is_empty());
}

#[test]
fn frames_larger_than_the_pins_physical_maximum_are_refused() {
    let host = Session::begin();
    // The avshws capture pin after KsEdit: exactly 153600-byte frames.
    let declared = FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)
        .with_flags(ItemFlags::SYSTEM_MEMORY.union(ItemFlags::PREFERENCES_ONLY))
        .with_frames(2)
        .with_exact_size(153_600)]);
    let mut pin = TestPin::new(0, Some(declared));
    let result = initialize(DEFAULT_DISPATCH, &mut pin, framing(2, 153_601, 0));
    assert_eq!(result.err(), Some(STATUS_INVALID_PARAMETER));
    let output = host.take_output();
    assert!(
        output[0].text.contains("FrameSize 153601 exceeds the pin framing's largest physical"),
        "{}",
        output[0].text
    );
    // The pin's own request (what negotiation gives for it) is accepted.
    let sink = FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)]);
    let plan = ks_allocator::negotiate(&declared.view(), &sink.view()).unwrap();
    let allocator = initialize(DEFAULT_DISPATCH, &mut pin, plan.framing.to_raw()).unwrap();
    let frame = allocator.allocate().unwrap();
    allocator.free(frame);
    drop(allocator);
    // A pin whose framing takes any size does not limit the request.
    let any =
        FramingEx::new([FramingItem::new(MemoryType::KERNEL_NONPAGED)
            .with_physical_range(FramingRange::DONT_CARE)]);
    let mut pin = TestPin::new(0, Some(any));
    drop(initialize(DEFAULT_DISPATCH, &mut pin, framing(2, 1 << 20, 0)).unwrap());
    assert!(host.live().is_empty() && host.take_output().is_empty());
}

#[test]
fn bad_frees_through_the_table_are_harmless() {
    let host = Session::begin();
    let mut pin = TestPin::plain();
    let allocator = initialize(DEFAULT_DISPATCH, &mut pin, framing(2, 4096, 0)).unwrap();
    let frame = allocator.allocate().unwrap();
    allocator.free(frame);
    allocator.free(frame); // double
    allocator.free_raw(frame.as_ptr().wrapping_add(8).cast()); // interior
    allocator.free_raw(ptr::null_mut()); // NULL is ignored
    let mut local = 0u8;
    allocator.free_raw((&raw mut local).cast()); // foreign
    let again = [allocator.allocate().unwrap(), allocator.allocate().unwrap()];
    assert_ne!(again[0], again[1]);
    assert!(allocator.allocate().is_none());
    assert_eq!(host.take_output().len(), 3, "double, interior and foreign are each reported");
    for frame in again {
        allocator.free(frame);
    }
}

#[test]
fn invalid_framings_and_pointers_fail_without_touching_the_context() {
    let _host = Session::begin();
    let mut pin = TestPin::plain();
    let bad = [
        framing(2, 0, 0),
        framing(2, 100, 6),
        framing(2, 100, 0x1FFF),
        KSALLOCATOR_FRAMING { OptionsFlags: 0x4000_0000, ..framing(2, 100, 0) },
        KSALLOCATOR_FRAMING { PoolType: 7, ..framing(2, 100, 0) },
    ];
    for request in bad {
        // The host records a violation if *Context is written on failure.
        let result = initialize(DEFAULT_DISPATCH, &mut pin, request);
        assert_eq!(result.err(), Some(STATUS_INVALID_PARAMETER), "{request:?}");
    }
    let initialize = DEFAULT_DISPATCH.InitializeAllocator.unwrap();
    let sentinel: PVOID = ptr::without_provenance_mut(0x5EED);
    let mut context = sentinel;
    let mut raw = framing(2, 100, 0);
    // SAFETY: NULL framing / NULL context are what the trampoline must reject.
    unsafe {
        assert_eq!(
            initialize(pin.as_ptr(), ptr::null_mut(), &raw mut context),
            STATUS_INVALID_PARAMETER
        );
    }
    // SAFETY: as above.
    unsafe {
        assert_eq!(
            initialize(pin.as_ptr(), &raw mut raw, ptr::null_mut()),
            STATUS_INVALID_PARAMETER
        );
    }
    assert_eq!(context, sentinel);
}

#[test]
fn fault_injection_sweep_over_initialize_allocator() {
    let host = Session::begin();
    let mut pin = TestPin::plain();
    for raw in [framing(4, 153_600, 0), framing(0, 4096, 0xFFF)] {
        let mut failures = 0;
        for n in 1.. {
            ks_host::pool::fail_nth(n);
            let result = initialize(DEFAULT_DISPATCH, &mut pin, raw);
            ks_host::pool::clear_failures();
            match result {
                Ok(allocator) => {
                    assert!(n > 1);
                    drop(allocator);
                    assert!(host.live().is_empty());
                    break;
                }
                Err(status) => {
                    failures += 1;
                    assert_eq!(status, STATUS_INSUFFICIENT_RESOURCES, "allocation {n}");
                    assert!(host.live().is_empty(), "allocation {n} leaked: {}", host.live());
                }
            }
        }
        assert_eq!(failures, 3, "frames, bookkeeping and context: each failure point was hit");
    }
}

#[test]
fn the_stream_class_path_serves_allocator_objects() {
    let host = Session::begin();
    let mut request = AllocatorCreateRequest::new(&framing(3, 8192, 7));
    let owner: PVOID = ptr::without_provenance_mut(0xF117);
    let create = |request: &mut AllocatorCreateRequest, constraints| {
        // SAFETY: the IRP of a live allocator create request.
        unsafe {
            ks_allocator::dispatch::create_allocator_object::<DefaultAllocator>(
                request.irp(),
                owner,
                constraints,
            )
        }
    };
    assert_eq!(create(&mut request, PinConstraints::NONE), Ok(()));
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
        assert_eq!(create(&mut request, PinConstraints::NONE), Err(Error::INVALID_PARAMETER));
        assert!(request.allocator().is_none());
    }
    // The filter's pin constraints hold here too.
    let mut request = AllocatorCreateRequest::new(&paged(2, 4096));
    let dispatch_pin = PinConstraints::NONE.with_nonpaged_only(true);
    assert_eq!(create(&mut request, dispatch_pin), Err(Error::INVALID_PARAMETER));
    assert!(host.take_output()[0].text.contains("must be non-paged"));
    // And InitializeAllocator's failure is the create's failure.
    ks_host::pool::fail_all();
    let mut request = AllocatorCreateRequest::new(&framing(3, 64, 0));
    let result = create(&mut request, PinConstraints::NONE);
    ks_host::pool::clear_failures();
    assert_eq!(result, Err(Error::INSUFFICIENT_RESOURCES));
    assert!(request.allocator().is_none());
    assert!(host.live().is_empty());
}

fn bytes_of(framing: &KSALLOCATOR_FRAMING) -> Vec<u8> {
    ks_allocator::framing::Framing::from_raw(framing).to_bytes().to_vec()
}

/// A driver's own allocator: frames from a device buffer, with a budget of its own, built into a
/// dispatch table with one line.
struct DeviceAllocator {
    pool: FramePool<Bump>,
}

struct Bump {
    region: std::sync::Mutex<Option<(usize, usize)>>,
}

// SAFETY: hands out one 64-byte-aligned block from the system allocator and takes it back;
// usable anywhere.
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
    const BUDGET: PoolConfig = PoolConfig::DEFAULT.with_max_frames(4).with_max_bytes(64 << 10);

    fn initialize(request: &AllocatorRequest) -> ks_allocator::Result<Self> {
        let memory = Bump { region: std::sync::Mutex::new(None) };
        Ok(Self { pool: FramePool::new(request, memory)? })
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
fn a_driver_builds_a_table_from_its_own_allocator_and_budget() {
    let host = Session::begin();
    let mut pin = TestPin::plain();
    let allocator = initialize(DEVICE_DISPATCH, &mut pin, framing(2, 1000, 0x3F)).unwrap();
    let a = allocator.allocate().unwrap();
    let b = allocator.allocate().unwrap();
    assert!(allocator.allocate().is_none());
    // SAFETY: the context is the DeviceAllocator InitializeAllocator stored.
    let device = unsafe { &*allocator.context().cast::<DeviceAllocator>() };
    let (start, len) = device.pool.memory().region.lock().unwrap().unwrap();
    let (a_address, b_address) = (a.as_ptr() as usize, b.as_ptr() as usize);
    assert!(a_address >= start && b_address + 1000 <= start + len, "from the device block");
    allocator.free(a);
    allocator.free(b);
    drop(allocator);
    // Its budget, not the default one, bounds the requests it gets.
    assert_eq!(
        initialize(DEVICE_DISPATCH, &mut pin, framing(5, 1000, 0)).err(),
        Some(STATUS_INSUFFICIENT_RESOURCES)
    );
    assert_eq!(
        initialize(DEVICE_DISPATCH, &mut pin, framing(4, 32 << 10, 0)).err(),
        Some(STATUS_INSUFFICIENT_RESOURCES)
    );
    assert_eq!(host.take_output().len(), 2);
    assert!(host.live().is_empty());
}

/// A budget for `DefaultAllocator`: at most 2 frames.
struct TwoFrames;
impl Budget for TwoFrames {
    const CONFIG: PoolConfig = PoolConfig::DEFAULT.with_max_frames(2).with_uncapped_frames(2);
}

#[test]
fn the_default_allocator_takes_a_driver_budget() {
    let host = Session::begin();
    let table = dispatch_table::<DefaultAllocator<TwoFrames>>();
    let mut pin = TestPin::plain();
    assert_eq!(
        initialize(table, &mut pin, framing(3, 64, 0)).err(),
        Some(STATUS_INSUFFICIENT_RESOURCES)
    );
    let allocator = initialize(table, &mut pin, framing(0, 64, 0)).unwrap();
    let frames = [allocator.allocate().unwrap(), allocator.allocate().unwrap()];
    assert!(allocator.allocate().is_none(), "an uncapped request gets the budget's 2 frames");
    for frame in frames {
        allocator.free(frame);
    }
    drop(allocator);
    assert_eq!(host.take_output().len(), 1, "the refusal was reported");
}

#[test]
fn the_status_of_a_refusal_is_the_request_errors() {
    let host = Session::begin();
    // Every refusal through the table returns exactly what `Error::from(RequestError)` gives.
    let mut pin = TestPin::new(ks_sys::KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING, None);
    for raw in [framing(2, 0, 0), paged(2, 64), framing(5000, 64, 0)] {
        let expected = AllocatorRequest::new(
            &ks_allocator::framing::Framing::from_raw(&raw),
            &PinConstraints::NONE.with_nonpaged_only(true),
            &PoolConfig::DEFAULT,
        )
        .map(|_| ())
        .map_err(|error| Error::from(error).to_status());
        assert_eq!(initialize(DEFAULT_DISPATCH, &mut pin, raw).map(drop), expected, "{raw:?}");
    }
    let _ = host.take_output();
}

#[test]
fn paged_frames_asked_for_at_dispatch_level_are_violations() {
    let session = Session::begin();
    let paged = paged(2, 4096);
    // SAFETY: no pin (no constraints); the library's table.
    let allocator = unsafe {
        ks_host::ks::DispatchAllocator::initialize(DEFAULT_DISPATCH, std::ptr::null_mut(), &paged)
    }
    .unwrap();
    let frame = allocator.allocate().unwrap(); // at PASSIVE_LEVEL: fine
    let early = session.take_violations();
    assert!(early.is_empty(), "{early:?}");
    let second = ks_host::irql::at_dispatch(|| allocator.allocate()).unwrap();
    let violations = session.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].detail.contains("paged pool, at DISPATCH_LEVEL"), "{violations:?}");
    allocator.free(frame);
    allocator.free(second);
}
