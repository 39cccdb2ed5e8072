//! Pool memory: `ExAllocatePool2`, `ExAllocatePoolWithTag` and `ExFreePoolWithTag`.
//!
//! Every allocation is tracked with its tag, size and pool (paged or not). The host keeps the
//! kernel's documented rules (Microsoft Learn, `ExAllocatePool2` and `ExAllocatePoolWithTag`):
//!
//! - requests of `PAGE_SIZE` or more are page aligned, smaller ones 16-byte aligned;
//! - `ExAllocatePool2` zeroes unless `POOL_FLAG_UNINITIALIZED`, needs exactly one pool kind, a
//!   non-zero size and a tag of one to four printable ASCII characters, and returns NULL
//!   otherwise; `ExAllocatePoolWithTag` does not zero (the host fills with `0xA5` so code that
//!   relies on zeroed memory shows);
//! - IRQL: at most DISPATCH_LEVEL, at most APC_LEVEL for paged pool; freeing likewise.
//!
//! Freeing a pointer the pool does not know (never allocated, or already freed) or with another
//! tag is a [violation](crate::verifier); the memory is then left alone.
//!
//! Special pool, as Driver Verifier's, always on: every block is followed by
//! [`GUARD_BYTES`] guard bytes, checked when it is freed (a write past the end is a violation),
//! and a freed block is filled with a poison byte and kept in a quarantine of recently freed
//! blocks before it goes back to the heap; if the poison changed by then (or when the session
//! ends), the block was written after it was freed, which is a violation too.
//!
//! The failure schedule makes chosen allocations return NULL, like Driver Verifier's
//! low-resources simulation: [`fail_nth`], [`fail_every`], [`fail_tag`], [`fail_all`], and
//! [`low_resources`], a seeded random fraction.

use std::{
    alloc::{Layout, alloc, alloc_zeroed, dealloc},
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    sync::Mutex,
};

use ks_sys::{
    PAGE_SIZE, POOL_FLAG_CACHE_ALIGNED, POOL_FLAG_NON_PAGED, POOL_FLAG_PAGED,
    POOL_FLAG_UNINITIALIZED, POOL_FLAGS, POOL_TYPE, PVOID, SIZE_T, ULONG,
};

use crate::irql::{APC_LEVEL, DISPATCH_LEVEL};

use crate::verifier;

/// Which pool an allocation came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// Non-paged pool: usable at DISPATCH_LEVEL.
    NonPaged,
    /// Paged pool: PASSIVE_LEVEL or APC_LEVEL only.
    Paged,
}

/// Guard bytes after every block, checked when it is freed.
pub const GUARD_BYTES: usize = 64;
/// What the guard bytes hold.
const GUARD: u8 = 0xF1;
/// What a freed block holds while it is in the quarantine.
const POISON: u8 = 0xDD;
/// Most blocks, and bytes, the quarantine of freed blocks keeps.
const QUARANTINE_BLOCKS: usize = 256;
const QUARANTINE_BYTES: usize = 64 << 20;

#[derive(Clone, Copy, Debug)]
struct Record {
    /// The heap layout: the block, its guard bytes, the alignment.
    layout: Layout,
    /// The bytes the driver asked for.
    bytes: usize,
    tag: ULONG,
    kind: PoolKind,
}

/// One rule of the failure schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Fail the `n`th allocation (1-based) counted from when the rule was set.
    Nth(u64),
    /// Fail every `k`th allocation (the `k`th, `2k`th, ...) counted from when the rule was set;
    /// `Every(0)` fails none.
    Every(u64),
    /// Fail every allocation with this tag.
    Tag(ULONG),
    /// Fail every allocation.
    All,
    /// Fail about `per_mille` of every 1000 allocations, chosen by a generator seeded with
    /// `seed` (the same seed fails the same calls).
    Random {
        /// Failures per 1000 calls.
        per_mille: u32,
        /// The generator's seed.
        seed: u64,
    },
}

/// SplitMix64: one well-mixed 64-bit value of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

#[derive(Default)]
struct PoolState {
    live: HashMap<usize, Record>,
    /// Freed blocks, oldest first, poisoned until they go back to the heap.
    quarantine: VecDeque<(usize, Record)>,
    quarantine_bytes: usize,
    /// Allocation calls since the schedule was last set.
    calls: u64,
    schedule: Vec<Failure>,
    failed: u64,
}

static POOL: Mutex<Option<PoolState>> = Mutex::new(None);

fn with_state<R>(f: impl FnOnce(&mut PoolState) -> R) -> R {
    let mut guard = crate::lock(&POOL);
    f(guard.get_or_insert_with(PoolState::default))
}

/// A pool tag as the four characters a debugger shows (`'KsAf'` for `0x6641734B`).
#[must_use]
pub fn tag_name(tag: ULONG) -> String {
    tag.to_le_bytes()
        .iter()
        .map(|&b| if (0x20..=0x7E).contains(&b) { b as char } else { '?' })
        .collect()
}

/// Pool usage of one tag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagUsage {
    /// Live allocations.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
}

/// Outstanding pool allocations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Live {
    /// Live allocations.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Usage by tag name.
    pub by_tag: BTreeMap<String, TagUsage>,
}

impl Live {
    /// Whether nothing is outstanding.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl fmt::Display for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} allocations, {} bytes", self.count, self.bytes)?;
        for (tag, usage) in &self.by_tag {
            write!(f, "; tag {tag}: {} allocations, {} bytes", usage.count, usage.bytes)?;
        }
        Ok(())
    }
}

/// Outstanding allocations: count, bytes and the same by tag.
#[must_use]
pub fn live() -> Live {
    with_state(|state| {
        let mut live = Live::default();
        for record in state.live.values() {
            live.count += 1;
            live.bytes += record.bytes;
            let usage = live.by_tag.entry(tag_name(record.tag)).or_default();
            usage.count += 1;
            usage.bytes += record.bytes;
        }
        live
    })
}

/// Allocation calls since the failure schedule was last set (or the session began), failed or
/// not.
#[must_use]
pub fn allocation_calls() -> u64 {
    with_state(|state| state.calls)
}

/// Allocations the failure schedule failed so far.
#[must_use]
pub fn failed_allocations() -> u64 {
    with_state(|state| state.failed)
}

/// Replaces the failure schedule and restarts the call count.
pub fn set_failures(schedule: &[Failure]) {
    with_state(|state| {
        state.schedule = schedule.to_vec();
        state.calls = 0;
    });
}

/// Fails the `n`th allocation (1-based) from now.
pub fn fail_nth(n: u64) {
    set_failures(&[Failure::Nth(n)]);
}

/// Fails every `k`th allocation from now.
pub fn fail_every(k: u64) {
    set_failures(&[Failure::Every(k)]);
}

/// Fails every allocation with `tag` from now.
pub fn fail_tag(tag: ULONG) {
    set_failures(&[Failure::Tag(tag)]);
}

/// Fails every allocation from now.
pub fn fail_all() {
    set_failures(&[Failure::All]);
}

/// Fails about `per_mille` of every 1000 allocations from now, chosen by a generator seeded with
/// `seed`, like Driver Verifier's low-resources simulation; prints the seed, so that a failure
/// can be replayed.
pub fn low_resources(per_mille: u32, seed: u64) {
    eprintln!("ks-host: low resources: failing about {per_mille} of 1000 allocations, seed {seed}");
    set_failures(&[Failure::Random { per_mille, seed }]);
}

/// Clears the failure schedule.
pub fn clear_failures() {
    set_failures(&[]);
}

/// Frees every outstanding allocation, empties the quarantine (checking it) and clears the
/// schedule (session start and end).
pub(crate) fn reset() -> Live {
    let leaked = live();
    with_state(|state| {
        for (address, record) in state.live.drain() {
            // SAFETY: every record was allocated by `allocate` below with exactly this layout
            // and has not been freed (it would have been removed from the map).
            unsafe { dealloc(address as *mut u8, record.layout) };
        }
        while let Some((address, record)) = state.quarantine.pop_front() {
            release(address, record);
        }
        *state = PoolState::default();
    });
    leaked
}

/// The bytes of a block the host owns (live or in the quarantine).
///
/// # Safety
///
/// `address` is a block of `allocate` that has not gone back to the heap, and `range` lies
/// inside its layout.
unsafe fn block<'a>(address: usize, range: std::ops::Range<usize>) -> &'a [u8] {
    // SAFETY: the range lies inside the block's layout (callers pass the block or its guard);
    // the block is the host's until `release` (this function's contract).
    unsafe { std::slice::from_raw_parts((address + range.start) as *const u8, range.len()) }
}

/// Gives a quarantined block back to the heap, reporting a write after free.
fn release(address: usize, record: Record) {
    // SAFETY: a quarantined block, not yet given back.
    let bytes = unsafe { block(address, 0..record.bytes) };
    if let Some(offset) = bytes.iter().position(|b| *b != POISON) {
        verifier::report(
            "ExFreePoolWithTag",
            format!(
                "{address:#x} (tag {}, {} bytes) was written after it was freed (first changed byte \
                 at offset {offset})",
                tag_name(record.tag),
                record.bytes
            ),
        );
    }
    // SAFETY: allocated by `allocate` with this layout, freed by the driver once and now given
    // back once (it left the quarantine).
    unsafe { dealloc(address as *mut u8, record.layout) };
}

fn valid_tag(tag: ULONG) -> bool {
    tag != 0 && tag.to_le_bytes().iter().all(|&b| b == 0 || (0x20..=0x7E).contains(&b))
}

/// Counts one allocation call and says whether the failure schedule fails it. The kernel's
/// other allocation sites (a DMA adapter, a common buffer) count here too, without a tag, so one
/// schedule fails every kind of allocation in turn.
pub(crate) fn scheduled_failure(tag: Option<ULONG>) -> bool {
    with_state(|state| {
        state.calls += 1;
        let calls = state.calls;
        let fail = state.schedule.iter().any(|rule| match *rule {
            Failure::Nth(n) => n == calls,
            Failure::Every(k) => k != 0 && calls.is_multiple_of(k),
            Failure::Tag(t) => Some(t) == tag,
            Failure::All => true,
            Failure::Random { per_mille, seed } => {
                mix(seed ^ mix(calls)) % 1000 < u64::from(per_mille)
            }
        });
        if fail {
            state.failed += 1;
        }
        fail
    })
}

/// The common allocation path: IRQL check, failure schedule, aligned allocation, tracking.
fn allocate(routine: &'static str, kind: PoolKind, bytes: SIZE_T, tag: ULONG, zero: bool) -> PVOID {
    // SIZE_T is 64 bits, as on x64; a size the host's address space cannot hold fails.
    let Ok(bytes) = usize::try_from(bytes) else {
        return std::ptr::null_mut();
    };
    let max_irql = if kind == PoolKind::Paged { APC_LEVEL } else { DISPATCH_LEVEL };
    if !verifier::require_irql_at_most(routine, max_irql) {
        return std::ptr::null_mut();
    }
    if scheduled_failure(Some(tag)) || bytes == 0 {
        return std::ptr::null_mut();
    }
    let align = if bytes >= PAGE_SIZE as usize { PAGE_SIZE as usize } else { 16 };
    let Some(Ok(layout)) =
        bytes.checked_add(GUARD_BYTES).map(|total| Layout::from_size_align(total, align))
    else {
        return std::ptr::null_mut();
    };
    let memory = if zero {
        // SAFETY: `layout` has a non-zero size (checked above).
        unsafe { alloc_zeroed(layout) }
    } else {
        // SAFETY: `layout` has a non-zero size (checked above).
        unsafe { alloc(layout) }
    };
    if memory.is_null() {
        return std::ptr::null_mut();
    }
    if !zero {
        // SAFETY: `memory` is a fresh allocation of `bytes` bytes and the guard.
        unsafe { memory.write_bytes(0xA5, bytes) };
    }
    // SAFETY: the guard bytes follow the block inside the layout.
    let guard = unsafe { memory.add(bytes) };
    // SAFETY: as above: `GUARD_BYTES` bytes of the layout.
    unsafe { guard.write_bytes(GUARD, GUARD_BYTES) };
    with_state(|state| state.live.insert(memory as usize, Record { layout, bytes, tag, kind }));
    memory.cast()
}

/// `ExAllocatePool2`: pool memory of the kind `Flags` names, zeroed unless
/// `POOL_FLAG_UNINITIALIZED`, or NULL. The host does not export it under its name: drivers find
/// it with `MmGetSystemRoutineAddress`, as drivers that also run on Windows before 10 version
/// 2004 must.
#[must_use]
pub extern "system" fn ExAllocatePool2(
    Flags: POOL_FLAGS,
    NumberOfBytes: SIZE_T,
    Tag: ULONG,
) -> PVOID {
    const ROUTINE: &str = "ExAllocatePool2";
    let kinds = Flags & (POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED | 0x80);
    let kind = match kinds {
        POOL_FLAG_NON_PAGED => PoolKind::NonPaged,
        POOL_FLAG_PAGED => PoolKind::Paged,
        _ => return std::ptr::null_mut(),
    };
    let known_required =
        POOL_FLAG_NON_PAGED | POOL_FLAG_PAGED | POOL_FLAG_UNINITIALIZED | POOL_FLAG_CACHE_ALIGNED;
    if Flags & 0xFFFF_FFFF & !known_required != 0 || !valid_tag(Tag) {
        return std::ptr::null_mut();
    }
    allocate(ROUTINE, kind, NumberOfBytes, Tag, Flags & POOL_FLAG_UNINITIALIZED == 0)
}

/// `ExAllocatePoolWithTag`: pool memory of a `POOL_TYPE`, not zeroed, or NULL.
// SAFETY: no other symbol of a host process is named `ExAllocatePoolWithTag`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
#[must_use]
pub extern "system" fn ExAllocatePoolWithTag(
    PoolType: POOL_TYPE,
    NumberOfBytes: SIZE_T,
    Tag: ULONG,
) -> PVOID {
    const ROUTINE: &str = "ExAllocatePoolWithTag";
    let kind = match PoolType {
        ks_sys::NonPagedPool
        | ks_sys::NonPagedPoolNx
        | ks_sys::NonPagedPoolCacheAligned
        | ks_sys::NonPagedPoolNxCacheAligned => PoolKind::NonPaged,
        ks_sys::PagedPool | ks_sys::PagedPoolCacheAligned => PoolKind::Paged,
        other => {
            verifier::report(ROUTINE, format!("unsupported POOL_TYPE {other}"));
            return std::ptr::null_mut();
        }
    };
    allocate(ROUTINE, kind, NumberOfBytes, Tag, false)
}

/// `ExFreePoolWithTag`: frees what one of the allocation routines returned, with its tag.
// SAFETY: no other symbol of a host process is named `ExFreePoolWithTag`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn ExFreePoolWithTag(P: PVOID, Tag: ULONG) {
    const ROUTINE: &str = "ExFreePoolWithTag";
    let mapped = with_state(|state| state.live.get(&(P as usize)).map(|record| record.bytes))
        .and_then(|bytes| crate::dma::mapped_within(P as usize, bytes));
    if let Some(mapping) = mapped {
        verifier::report(
            ROUTINE,
            format!("{P:p} is freed while a device may still write it ({mapping}); left allocated"),
        );
        return;
    }
    let removed = with_state(|state| {
        let record = *state.live.get(&(P as usize))?;
        if record.tag != Tag {
            return Some(Err(record));
        }
        state.live.remove(&(P as usize));
        Some(Ok(record))
    });
    match removed {
        None => verifier::report(
            ROUTINE,
            format!("{P:p} is not a live pool allocation (never allocated, or freed twice)"),
        ),
        Some(Err(record)) => verifier::report(
            ROUTINE,
            format!(
                "{P:p} was allocated with tag {} but freed with tag {}",
                tag_name(record.tag),
                tag_name(Tag)
            ),
        ),
        Some(Ok(record)) => {
            let max_irql = if record.kind == PoolKind::Paged { APC_LEVEL } else { DISPATCH_LEVEL };
            verifier::require_irql_at_most(ROUTINE, max_irql);
            crate::ke::check_free(P as usize, record.bytes);
            let address = P as usize;
            // SAFETY: a block of `allocate`, just removed from the live map, not yet released.
            let guard = unsafe { block(address, record.bytes..record.bytes + GUARD_BYTES) };
            let overrun = guard.iter().rposition(|b| *b != GUARD);
            if let Some(last) = overrun {
                verifier::report(
                    ROUTINE,
                    format!(
                        "{P:p} (tag {}, {} bytes) was written past its end (up to {} bytes past)",
                        tag_name(record.tag),
                        record.bytes,
                        last + 1
                    ),
                );
            }
            // SAFETY: the driver gave the block back; the host owns its bytes now.
            unsafe { P.cast::<u8>().write_bytes(POISON, record.bytes) };
            with_state(|state| {
                state.quarantine.push_back((address, record));
                state.quarantine_bytes += record.layout.size();
                while state.quarantine.len() > QUARANTINE_BLOCKS
                    || state.quarantine_bytes > QUARANTINE_BYTES
                {
                    let Some((old, old_record)) = state.quarantine.pop_front() else { break };
                    state.quarantine_bytes -= old_record.layout.size();
                    release(old, old_record);
                }
            });
        }
    }
}

/// The kind of pool the live block containing `address` came from, if any.
pub(crate) fn kind_containing(address: usize) -> Option<PoolKind> {
    with_state(|state| {
        state
            .live
            .iter()
            .find(|(start, record)| (**start..**start + record.bytes).contains(&address))
            .map(|(_, record)| record.kind)
    })
}

/// The tag of a live allocation, for the frees the kernel makes without one (`ExFreePool` of an
/// object bag's items).
pub(crate) fn tag_of(P: PVOID) -> Option<ULONG> {
    with_state(|state| state.live.get(&(P as usize)).map(|record| record.tag))
}
