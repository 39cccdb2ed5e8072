//! The host's DMA: adapters and common buffers with their contracts, the physical address space
//! (scattered pool pages, contiguous common buffers), mappings, and the checker that refuses a
//! device's writes outside them, shown to catch a wrong address, an overrun, a write after
//! completion and a write to freed memory.

use ks_host::{
    Session,
    dma::{self, MapError, PhysicalDevice, Run},
};
use ks_sys::{
    DEVICE_DESCRIPTION, DEVICE_DESCRIPTION_VERSION2, DMA_OPERATIONS, LARGE_INTEGER, PAGE_SIZE,
    PDMA_ADAPTER, PHYSICAL_ADDRESS, PVOID,
};

const PAGE: usize = PAGE_SIZE as usize;
const TAG: u32 = u32::from_le_bytes(*b"DmaT");

/// A 64-bit (or 32-bit) scatter/gather bus master's description.
fn description(dma64: bool) -> DEVICE_DESCRIPTION {
    // SAFETY: plain data; all zero is a valid description to fill in.
    let mut description: DEVICE_DESCRIPTION = unsafe { std::mem::zeroed() };
    description.Version = DEVICE_DESCRIPTION_VERSION2;
    description.Master = 1;
    description.ScatterGather = 1;
    description.Dma32BitAddresses = 1;
    description.Dma64BitAddresses = u8::from(dma64);
    description.InterfaceType = ks_sys::PCIBus;
    description.MaximumLength = 1 << 20;
    description
}

fn adapter(pdo: &PhysicalDevice, dma64: bool) -> (PDMA_ADAPTER, u32) {
    let mut description = description(dma64);
    let mut registers = 0;
    // SAFETY: a PDO the host made, a description and a ULONG of this frame.
    let adapter =
        unsafe { dma::IoGetDmaAdapter(pdo.as_ptr(), &raw mut description, &raw mut registers) };
    assert!(!adapter.is_null(), "a bus master gets an adapter");
    (adapter, registers)
}

fn operations(adapter: PDMA_ADAPTER) -> DMA_OPERATIONS {
    // SAFETY: a live adapter.
    let table = unsafe { (*adapter).DmaOperations };
    // SAFETY: its operations live as long as it does.
    unsafe { *table }
}

/// A common buffer: its virtual and logical addresses.
fn common_buffer(adapter: PDMA_ADAPTER, bytes: u32) -> (*mut u8, u64) {
    let mut logical = LARGE_INTEGER { QuadPart: 0 };
    let allocate = operations(adapter).AllocateCommonBuffer.expect("modelled");
    // SAFETY: a live adapter and a PHYSICAL_ADDRESS of this frame, at PASSIVE_LEVEL.
    let memory = unsafe { allocate(adapter, bytes, &raw mut logical, 0) };
    assert!(!memory.is_null());
    // SAFETY: written by the routine.
    (memory.cast(), u64::try_from(unsafe { logical.QuadPart }).unwrap())
}

fn free_common_buffer(adapter: PDMA_ADAPTER, bytes: u32, logical: u64, memory: *mut u8) {
    let free = operations(adapter).FreeCommonBuffer.expect("modelled");
    let logical = LARGE_INTEGER { QuadPart: i64::try_from(logical).unwrap() };
    // SAFETY: the arguments of the allocation (or deliberately not, in the tests that say so).
    unsafe { free(adapter, bytes, logical, memory.cast(), 0) };
}

fn put(adapter: PDMA_ADAPTER) {
    let put = operations(adapter).PutDmaAdapter.expect("modelled");
    // SAFETY: a live adapter, given back once.
    unsafe { put(adapter) };
}

fn physical(address: u64) -> PHYSICAL_ADDRESS {
    LARGE_INTEGER { QuadPart: i64::try_from(address).unwrap() }
}

/// What a device sees at `address` (NULL if it may not reach it).
fn view(address: u64) -> *mut u8 {
    dma::MmGetVirtualForPhysical(physical(address)).cast()
}

fn physical_of(memory: *const u8) -> u64 {
    let address = dma::MmGetPhysicalAddress(memory.cast_mut().cast());
    // SAFETY: every bit pattern is an i64.
    u64::try_from(unsafe { address.QuadPart }).unwrap()
}

#[test]
fn a_bus_master_gets_an_adapter_and_a_contiguous_common_buffer() {
    let _host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, registers) = adapter(&pdo, true);
    assert_eq!(registers, (1 << 20) / PAGE_SIZE + 1, "one per page of the maximum, plus one");
    assert!(operations(adapter).Size as usize >= size_of::<DMA_OPERATIONS>());
    let bytes = 5 * PAGE_SIZE + 100;
    let (memory, logical) = common_buffer(adapter, bytes);
    assert_eq!(memory.addr() % PAGE, 0, "page aligned");
    assert!(logical >= 1 << 32, "a 64-bit adapter's common buffer may lie above 4 GiB");
    for page in 0..6 {
        // SAFETY: inside the buffer.
        let at = unsafe { memory.add(page * PAGE + 7) };
        assert_eq!(physical_of(at), logical + (page * PAGE) as u64 + 7, "contiguous");
    }
    let stats = dma::stats();
    assert_eq!((stats.adapters, stats.common_buffers), (1, 1));
    assert_eq!(stats.common_buffer_bytes, bytes as usize);
    free_common_buffer(adapter, bytes, logical, memory);
    put(adapter);
    assert_eq!(dma::stats().adapters, 0);
}

#[test]
fn a_32_bit_adapter_s_common_buffer_lies_below_4_gib_and_pool_above_is_refused() {
    let _host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, false);
    let (memory, logical) = common_buffer(adapter, PAGE_SIZE);
    assert!(logical + PAGE as u64 <= 1 << 32);
    let pool = ks_host::pool::ExAllocatePoolWithTag(ks_sys::NonPagedPoolNx, 64, TAG);
    let refused = dma::map(adapter, pool.cast(), 64, 4096, "pool frame");
    assert!(matches!(refused, Err(MapError::Above4GiB(_))), "{refused:?}");
    ks_host::pool::ExFreePoolWithTag(pool, TAG);
    free_common_buffer(adapter, PAGE_SIZE, logical, memory);
    put(adapter);
}

#[test]
fn adapters_are_refused_for_what_the_host_does_not_model_or_a_wrong_device_object() {
    let host = Session::begin();
    let pdo = PhysicalDevice::new();
    let mut registers = 0;
    let mut system_dma = description(true);
    system_dma.Master = 0;
    // SAFETY: valid pointers of this frame.
    let none =
        unsafe { dma::IoGetDmaAdapter(pdo.as_ptr(), &raw mut system_dma, &raw mut registers) };
    assert!(none.is_null(), "system DMA is not modelled");
    assert!(host.take_violations().is_empty(), "not modelled is not a driver bug");
    let mut not_a_pdo = [0_u64; 41];
    let mut good = description(true);
    // SAFETY: as above; the "device object" is memory the host did not make.
    let none = unsafe {
        dma::IoGetDmaAdapter(not_a_pdo.as_mut_ptr().cast(), &raw mut good, &raw mut registers)
    };
    assert!(none.is_null());
    let violations = host.take_violations();
    assert!(
        violations.iter().any(|v| v.detail.contains("not a physical device object")),
        "{violations:?}"
    );
    // SAFETY: as above, with the map-register count missing.
    let none = unsafe { dma::IoGetDmaAdapter(pdo.as_ptr(), &raw mut good, std::ptr::null_mut()) };
    assert!(none.is_null());
    assert_eq!(host.take_violations().len(), 1);
}

#[test]
fn the_failure_schedule_fails_adapters_and_common_buffers() {
    let _host = Session::begin();
    let pdo = PhysicalDevice::new();
    ks_host::pool::fail_nth(1);
    let mut description = description(true);
    let mut registers = 0;
    // SAFETY: valid pointers of this frame.
    let none =
        unsafe { dma::IoGetDmaAdapter(pdo.as_ptr(), &raw mut description, &raw mut registers) };
    assert!(none.is_null(), "the first allocation fails");
    let (adapter, _) = adapter(&pdo, true);
    ks_host::pool::fail_nth(1);
    let mut logical = LARGE_INTEGER { QuadPart: 0 };
    let allocate = operations(adapter).AllocateCommonBuffer.unwrap();
    // SAFETY: a live adapter and a PHYSICAL_ADDRESS of this frame.
    let memory = unsafe { allocate(adapter, 4096, &raw mut logical, 0) };
    assert!(memory.is_null());
    assert_eq!(ks_host::pool::failed_allocations(), 2);
    put(adapter);
}

#[test]
fn pool_pages_are_scattered_and_mappings_split_at_each_discontinuity_and_the_maximum() {
    let _host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, true);
    let bytes = 4 * PAGE;
    let pool = ks_host::pool::ExAllocatePoolWithTag(ks_sys::NonPagedPoolNx, bytes as u64, TAG)
        .cast::<u8>();
    let (set, runs) = dma::map(adapter, pool, bytes, 1 << 20, "pool frame").unwrap();
    assert_eq!(runs.len(), 4, "four pages, no two physically adjacent: {runs:x?}");
    assert!(runs.iter().all(|r| r.bytes == PAGE_SIZE));
    for pair in runs.windows(2) {
        assert_ne!(pair[0].physical + PAGE as u64, pair[1].physical);
    }
    dma::unmap(set);
    ks_host::pool::ExFreePoolWithTag(pool.cast(), TAG);

    let bytes = 256 * 1024;
    let (memory, logical) = common_buffer(adapter, bytes);
    let (set, runs) = dma::map(adapter, memory, bytes as usize, 64 * 1024, "big frame").unwrap();
    let expected: Vec<Run> =
        (0..4).map(|i| Run { physical: logical + i * 64 * 1024, bytes: 64 * 1024 }).collect();
    assert_eq!(runs, expected, "contiguous memory splits only at the maximum");
    dma::unmap(set);
    // A maximum smaller than a page splits inside pages, each run where the last ended.
    let (set, runs) = dma::map(adapter, memory, 4096, 1000, "small runs").unwrap();
    let expected: Vec<Run> = (0..5)
        .map(|i| Run { physical: logical + i * 1000, bytes: if i == 4 { 96 } else { 1000 } })
        .collect();
    assert_eq!(runs, expected);
    dma::unmap(set);
    let (set, _) = dma::map(adapter, memory, bytes as usize, 64 * 1024, "big frame").unwrap();
    let again = dma::map(adapter, memory, 16, 64 * 1024, "the same memory");
    assert_eq!(again, Err(MapError::AlreadyMapped(logical)));
    assert_eq!(dma::stats().max_mappings_per_set, 5);
    dma::unmap(set);
    free_common_buffer(adapter, bytes, logical, memory);
    put(adapter);
}

#[test]
fn a_device_s_writes_to_a_programmed_mapping_land_in_memory() {
    let _host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, true);
    let bytes = 3 * PAGE;
    let pool = ks_host::pool::ExAllocatePoolWithTag(ks_sys::NonPagedPoolNx, bytes as u64, TAG)
        .cast::<u8>();
    let (set, runs) = dma::map(adapter, pool, bytes, 1 << 20, "frame 0").unwrap();
    ks_host::irql::at_dispatch(|| {
        for (index, run) in runs.iter().enumerate() {
            let target = view(run.physical);
            assert!(!target.is_null());
            // SAFETY: the view covers the run (one page here).
            unsafe { target.write_bytes(u8::try_from(index).unwrap() + 1, run.bytes as usize) };
        }
    });
    // SAFETY: the frame's memory, which the test owns.
    let frame = unsafe { std::slice::from_raw_parts(pool, bytes) };
    assert!(frame.iter().all(|b| *b == 0xA5), "nothing lands before the device's writes commit");
    dma::commit();
    for (index, page) in frame.chunks(PAGE).enumerate() {
        assert!(page.iter().all(|b| usize::from(*b) == index + 1), "page {index}");
    }
    assert_eq!(dma::stats().bytes_written, bytes as u64);
    assert_eq!(dma::stats().violations, 0);
    dma::unmap(set);
    ks_host::pool::ExFreePoolWithTag(pool.cast(), TAG);
    put(adapter);
}

#[test]
fn a_wrong_address_is_refused_naming_what_it_hit() {
    let host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, true);
    let (memory, logical) = common_buffer(adapter, 2 * PAGE_SIZE);
    let (set, _) = dma::map(adapter, memory, PAGE, 1 << 20, "frame 1").unwrap();
    let outside = ks_host::irql::at_dispatch(|| view(logical + PAGE as u64 + 8));
    assert!(outside.is_null(), "the second page is not mapped");
    let nowhere = ks_host::irql::at_dispatch(|| view(0x1234_5000));
    assert!(nowhere.is_null());
    let violations = host.take_violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].detail.contains(&format!("{:#x}", logical + PAGE as u64 + 8)));
    assert!(violations[0].detail.contains("common buffer"), "{violations:?}");
    assert!(violations[1].detail.contains("no memory was ever given out"), "{violations:?}");
    assert_eq!(dma::stats().violations, 2);
    dma::unmap(set);
    free_common_buffer(adapter, 2 * PAGE_SIZE, logical, memory);
    put(adapter);
}

#[test]
fn an_overrun_past_a_mapping_is_refused_and_not_written() {
    let host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, true);
    let (memory, logical) = common_buffer(adapter, PAGE_SIZE);
    let (set, runs) = dma::map(adapter, memory, 100, 1 << 20, "frame 2").unwrap();
    assert_eq!(runs, [Run { physical: logical, bytes: 100 }]);
    ks_host::irql::at_dispatch(|| {
        let target = view(logical);
        // SAFETY: a view is a page; the device writes 20 bytes more than it was given.
        unsafe { target.write_bytes(0x42, 120) };
    });
    dma::commit();
    // SAFETY: the common buffer, which the test owns.
    let bytes = unsafe { std::slice::from_raw_parts(memory, 200) };
    assert!(bytes[..100].iter().all(|b| *b == 0x42), "the mapping is written");
    assert!(bytes[100..].iter().all(|b| *b == 0xA5), "nothing past it");
    let violations = host.take_violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    let detail = &violations[0].detail;
    assert!(detail.contains("20 bytes"), "{detail}");
    assert!(detail.contains(&format!("{:#x}", logical + 100)), "{detail}");
    assert!(detail.contains("past the end of the mapping"), "{detail}");
    assert!(detail.contains("frame 2"), "{detail}");
    dma::unmap(set);
    free_common_buffer(adapter, PAGE_SIZE, logical, memory);
    put(adapter);
}

#[test]
fn a_write_after_the_frame_completed_is_refused() {
    let host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, true);
    let (memory, logical) = common_buffer(adapter, PAGE_SIZE);
    let (set, _) = dma::map(adapter, memory, PAGE, 1 << 20, "frame 3").unwrap();
    // The device got its view while the frame was programmed, and wrote after it completed.
    let target = ks_host::irql::at_dispatch(|| view(logical));
    dma::unmap(set);
    // SAFETY: the view is the host's page, valid until the commit.
    unsafe { target.write_bytes(0x17, 16) };
    dma::commit();
    // And a device that asks again after completion gets nothing.
    assert!(ks_host::irql::at_dispatch(|| view(logical)).is_null());
    // SAFETY: the common buffer, which the test owns.
    assert!(unsafe { std::slice::from_raw_parts(memory, 16) }.iter().all(|b| *b == 0xA5));
    let violations = host.take_violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(
        violations.iter().all(|v| v.detail.contains("frame 3, which completed")),
        "{violations:?}"
    );
    free_common_buffer(adapter, PAGE_SIZE, logical, memory);
    put(adapter);
}

#[test]
fn freed_memory_cannot_be_reached_and_mapped_memory_cannot_be_freed() {
    let host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, true);
    let (memory, logical) = common_buffer(adapter, PAGE_SIZE);
    let (set, _) = dma::map(adapter, memory, 64, 1 << 20, "frame 4").unwrap();
    free_common_buffer(adapter, PAGE_SIZE, logical, memory);
    put(adapter);
    let violations = host.take_violations();
    assert_eq!(violations.len(), 2, "{violations:?}");
    assert!(violations[0].detail.contains("while the mapping"), "{violations:?}");
    assert!(violations[1].detail.contains("1 common buffer(s) and 1 mapping set(s)"));
    assert_eq!(dma::stats().common_buffers, 1, "kept: the device may still write it");

    let pool = ks_host::pool::ExAllocatePoolWithTag(ks_sys::NonPagedPoolNx, 64, TAG);
    let (pool_set, _) = dma::map(adapter, pool.cast(), 64, 1 << 20, "frame 5").unwrap();
    ks_host::pool::ExFreePoolWithTag(pool, TAG);
    let violations = host.take_violations();
    assert!(violations[0].detail.contains("while a device may still write it"), "{violations:?}");
    assert_eq!(ks_host::pool::live().count, 1, "left allocated");
    dma::unmap(pool_set);
    ks_host::pool::ExFreePoolWithTag(pool, TAG);

    dma::unmap(set);
    free_common_buffer(adapter, PAGE_SIZE, logical, memory);
    assert!(ks_host::irql::at_dispatch(|| view(logical)).is_null());
    let violations = host.take_violations();
    assert!(violations[0].detail.contains("completed"), "{violations:?}");
    put(adapter);
}

#[test]
fn a_common_buffer_freed_with_other_arguments_is_refused_naming_them() {
    let host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, true);
    let (memory, logical) = common_buffer(adapter, 3000);
    free_common_buffer(adapter, 4096, logical + 1, memory);
    let violations = host.take_violations();
    assert_eq!(violations.len(), 1);
    assert!(violations[0].detail.contains("Length 4096 (allocated 3000)"), "{violations:?}");
    assert!(violations[0].detail.contains("LogicalAddress"), "{violations:?}");
    free_common_buffer(adapter, 3000, logical, memory);
    free_common_buffer(adapter, 3000, logical, memory);
    let violations = host.take_violations();
    assert!(violations[0].detail.contains("freed twice"), "{violations:?}");
    // The operation as the driver kept it: the adapter's table is gone after the first call.
    let put_dma_adapter = operations(adapter).PutDmaAdapter.unwrap();
    put(adapter);
    // SAFETY: the host's routine checks the adapter before it touches it.
    unsafe { put_dma_adapter(adapter) };
    assert!(host.take_violations()[0].detail.contains("given back twice"));
}

#[test]
fn the_routines_keep_their_irql() {
    let host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, true);
    let allocate = operations(adapter).AllocateCommonBuffer.unwrap();
    let mut logical = LARGE_INTEGER { QuadPart: 0 };
    let memory: PVOID = ks_host::irql::at_dispatch(|| {
        // SAFETY: valid arguments, at the wrong IRQL on purpose.
        unsafe { allocate(adapter, 4096, &raw mut logical, 0) }
    });
    assert!(memory.is_null());
    let violations = host.take_violations();
    assert_eq!(violations[0].routine, "AllocateCommonBuffer");
    put(adapter);
}

#[test]
fn a_session_reports_adapters_and_common_buffers_left() {
    let result = std::panic::catch_unwind(|| {
        let _host = Session::begin();
        let pdo = PhysicalDevice::new();
        let (adapter, _) = adapter(&pdo, true);
        let _ = common_buffer(adapter, 8192);
    });
    let message = result.expect_err("the session reports the leaks");
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("1 DMA adapter(s) never given back"), "{text}");
    assert!(text.contains("common buffer leaked: 8192 bytes"), "{text}");
}

/// A device that writes one byte pattern at a physical address from its DPC.
#[repr(C)]
struct Device {
    timer: ks_sys::KTIMER,
    dpc: ks_sys::KDPC,
    target: u64,
}

unsafe extern "C" fn interrupt(_dpc: *mut ks_sys::KDPC, context: PVOID, _a: PVOID, _b: PVOID) {
    // SAFETY: the context is the Device the test keeps alive until the DPCs are flushed.
    let device = unsafe { &*context.cast::<Device>() };
    let target = view(device.target);
    if !target.is_null() {
        // SAFETY: a view holds the rest of its page; 32 bytes fit.
        unsafe { target.write_bytes(0x5E, 32) };
    }
}

#[test]
fn what_a_device_writes_from_its_dpc_lands_when_the_dpc_returns() {
    let host = Session::begin();
    let pdo = PhysicalDevice::new();
    let (adapter, _) = adapter(&pdo, true);
    let (memory, logical) = common_buffer(adapter, PAGE_SIZE);
    let (set, _) = dma::map(adapter, memory, 32, 1 << 20, "frame 6").unwrap();
    // SAFETY: plain data, initialised by the routines below.
    let mut device: Box<Device> = Box::new(unsafe { std::mem::zeroed() });
    device.target = logical;
    let context: PVOID = (&raw mut *device).cast();
    ks_host::ke::KeInitializeTimerEx(&raw mut device.timer, ks_sys::NotificationTimer);
    // SAFETY: the DPC lives in the boxed device until the flush below.
    unsafe { ks_host::ke::KeInitializeDpc(&raw mut device.dpc, Some(interrupt), context) };
    let _ = ks_host::ke::take_dpc_durations();
    let soon = LARGE_INTEGER { QuadPart: -1 };
    ks_host::ke::KeSetTimerEx(&raw mut device.timer, soon, 0, &raw mut device.dpc);
    while ks_host::ke::take_dpc_durations().is_empty() {
        std::thread::yield_now();
    }
    ks_host::ke::KeFlushQueuedDpcs();
    // SAFETY: the common buffer, which the test owns.
    let bytes = unsafe { std::slice::from_raw_parts(memory, 40) };
    assert!(bytes[..32].iter().all(|b| *b == 0x5E), "{bytes:x?}");
    assert!(bytes[32..].iter().all(|b| *b == 0xA5));
    assert!(host.take_violations().is_empty());
    dma::unmap(set);
    free_common_buffer(adapter, PAGE_SIZE, logical, memory);
    put(adapter);
}
