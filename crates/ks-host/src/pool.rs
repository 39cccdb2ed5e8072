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
//! The failure schedule makes chosen allocations return NULL, like Driver Verifier's
//! low-resources simulation: [`fail_nth`], [`fail_every`], [`fail_tag`], [`fail_all`].

use std::{
    alloc::{Layout, alloc, alloc_zeroed, dealloc},
    collections::{BTreeMap, HashMap},
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

#[derive(Clone, Copy, Debug)]
struct Record {
    layout: Layout,
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
}

#[derive(Default)]
struct PoolState {
    live: HashMap<usize, Record>,
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
            live.bytes += record.layout.size();
            let usage = live.by_tag.entry(tag_name(record.tag)).or_default();
            usage.count += 1;
            usage.bytes += record.layout.size();
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

/// Clears the failure schedule.
pub fn clear_failures() {
    set_failures(&[]);
}

/// Frees every outstanding allocation and clears the schedule (session start and end).
pub(crate) fn reset() -> Live {
    let leaked = live();
    with_state(|state| {
        for (address, record) in state.live.drain() {
            // SAFETY: every record was allocated by `allocate` below with exactly this layout
            // and has not been freed (it would have been removed from the map).
            unsafe { dealloc(address as *mut u8, record.layout) };
        }
        *state = PoolState::default();
    });
    leaked
}

fn valid_tag(tag: ULONG) -> bool {
    tag != 0 && tag.to_le_bytes().iter().all(|&b| b == 0 || (0x20..=0x7E).contains(&b))
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
    let fail = with_state(|state| {
        state.calls += 1;
        let calls = state.calls;
        let fail = state.schedule.iter().any(|rule| match *rule {
            Failure::Nth(n) => n == calls,
            Failure::Every(k) => k != 0 && calls.is_multiple_of(k),
            Failure::Tag(t) => t == tag,
            Failure::All => true,
        });
        if fail {
            state.failed += 1;
        }
        fail
    });
    if fail || bytes == 0 {
        return std::ptr::null_mut();
    }
    let align = if bytes >= PAGE_SIZE as usize { PAGE_SIZE as usize } else { 16 };
    let Ok(layout) = Layout::from_size_align(bytes, align) else {
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
        // SAFETY: `memory` is a fresh allocation of `bytes` bytes.
        unsafe { memory.write_bytes(0xA5, bytes) };
    }
    with_state(|state| state.live.insert(memory as usize, Record { layout, tag, kind }));
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
            crate::ke::check_free(P as usize, record.layout.size());
            // SAFETY: the record proves `P` came from `allocate` with this layout; it was just
            // removed from the map, so it is freed exactly once.
            unsafe { dealloc(P.cast(), record.layout) };
        }
    }
}

/// The tag of a live allocation, for the frees the kernel makes without one (`ExFreePool` of an
/// object bag's items).
pub(crate) fn tag_of(P: PVOID) -> Option<ULONG> {
    with_state(|state| state.live.get(&(P as usize)).map(|record| record.tag))
}
