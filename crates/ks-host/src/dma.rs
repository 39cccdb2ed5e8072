//! DMA: a physical address space, DMA adapters with their common buffers, the mappings a
//! device may reach, and what a bus-master device writes.
//!
//! **Physical pages.** Every page of memory a device can be given has a physical page:
//!
//! - pool memory and a client's buffers are *scattered*: a virtual page gets its physical page
//!   the first time anything asks for it (`MmGetPhysicalAddress`, a mapping), taken from the top
//!   of a range downwards, so consecutive virtual pages are never consecutive physical pages, as
//!   on a machine that has run for a while;
//! - a common buffer (`AllocateCommonBuffer`) is *contiguous*: one run of physical pages, below
//!   4 GiB for an adapter that addresses 32 bits and above it for one that addresses 64 (so a
//!   driver that keeps only the low half of an address shows).
//!
//! There is no IOMMU: a device's logical (bus) addresses are the physical addresses.
//!
//! **Mappings.** Whoever hands a device memory (the AVStream model for a pin with
//! `KSPIN_FLAG_GENERATE_MAPPINGS`, or a test) calls [`map`]: the memory is split into physically
//! contiguous runs of at most the adapter's registered maximum, and the runs are *programmed*
//! until [`unmap`] (the frame completed).
//!
//! **Bus-master access.** A device reaches memory by physical address only:
//! `MmGetVirtualForPhysical` gives it a *view* of one page in which the bytes of every mapping
//! programmed in that page are the memory's and the rest is [`UNMAPPED`]. What the device writes
//! into a view lands in memory when its DPC returns (or at [`commit`], for a test that plays the
//! device on its own thread), and what it wrote to a frame lands at the latest when the frame's
//! mappings end (a device's DMA is done before it tells the driver the frame is): the bytes of
//! the mappings still programmed are written back; a
//! changed byte anywhere else is a violation naming the physical address and what it hit (past
//! the end of a mapping, a frame that completed, a common buffer, freed memory), and is not
//! written. An address in no programmed mapping has no view: the routine reports the violation
//! and returns NULL. (On Windows `MmGetVirtualForPhysical` maps any RAM; here it is the simulated
//! hardware's bus, so it follows what a bus master may reach.)
//!
//! **Adapters.** `IoGetDmaAdapter` models scatter/gather bus masters (`Master`); system DMA is
//! absent (NULL). Its adapter has `PutDmaAdapter`, `AllocateCommonBuffer` and
//! `FreeCommonBuffer`; the table's other operations are NULL, so a driver that calls one crashes
//! here as it would on a HAL without it. Each follows its documented IRQL (PASSIVE_LEVEL);
//! freeing a common buffer with arguments other than its allocation's, freeing memory a device
//! still has mapped, and giving an adapter back with common buffers or mappings outstanding are
//! violations, and what was not freed is reported as a leak when the session ends. The pool's
//! failure schedule counts and fails adapters and common buffers like pool allocations.

use std::{
    alloc::{Layout, alloc, dealloc},
    collections::{BTreeMap, HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex},
    thread::ThreadId,
};

use ks_sys::{
    BOOLEAN, DEVICE_DESCRIPTION, DEVICE_DESCRIPTION_VERSION2, DMA_ADAPTER, DMA_OPERATIONS,
    LARGE_INTEGER, PAGE_SIZE, PDEVICE_DESCRIPTION, PDEVICE_OBJECT, PDMA_ADAPTER, PHYSICAL_ADDRESS,
    PPHYSICAL_ADDRESS, PULONG, PVOID, ULONG,
};

use crate::{
    irql::{DISPATCH_LEVEL, PASSIVE_LEVEL},
    verifier,
};

/// Bytes in a page.
pub const PAGE: usize = PAGE_SIZE as usize;
/// What a device's view holds where no mapping is programmed.
pub const UNMAPPED: u8 = 0xCC;
/// What a fresh common buffer holds (its contents are undefined, as pool's are).
const UNINITIALIZED: u8 = 0xA5;
/// Completed mappings and freed common buffers remembered to name what a stray write hit.
const HISTORY: usize = 4096;
/// The first physical page of scattered memory, counting down (the top of 12 GiB).
const SCATTERED_TOP: u64 = 0x3_0000_0000 / PAGE_SIZE as u64;
/// Common buffers of 32-bit adapters count up from 256 MiB, those of 64-bit adapters from 4 GiB.
const LOW_BASE: u64 = 0x1000_0000 / PAGE_SIZE as u64;
const LOW_LIMIT: u64 = 0xF000_0000 / PAGE_SIZE as u64;
const HIGH_BASE: u64 = 0x1_0000_0000 / PAGE_SIZE as u64;
/// Map registers an adapter reports at most.
const MAX_MAP_REGISTERS: u64 = 4096;

/// Bytes of a `DEVICE_OBJECT` on x64 (nothing reads a physical device object's fields here).
const DEVICE_OBJECT_SIZE: usize = 328;

/// Physical device objects the host made, by address.
static PHYSICAL_DEVICES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// A physical device object (PDO): what a bus driver made for a device, and what
/// `IoGetDmaAdapter` takes. The AVStream model makes one for each device
/// (`KSDEVICE.PhysicalDeviceObject`); a test of DMA alone makes its own.
pub struct PhysicalDevice(Box<[u64; DEVICE_OBJECT_SIZE / 8]>);

impl PhysicalDevice {
    /// A new physical device object.
    #[must_use]
    pub fn new() -> Self {
        let object = Box::new([0; DEVICE_OBJECT_SIZE / 8]);
        crate::lock(&PHYSICAL_DEVICES).push(object.as_ptr().addr());
        Self(object)
    }

    /// The object, as drivers get it.
    #[must_use]
    pub fn as_ptr(&self) -> PDEVICE_OBJECT {
        self.0.as_ptr().cast_mut().cast()
    }
}

impl Default for PhysicalDevice {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for PhysicalDevice {
    fn drop(&mut self) {
        let address = self.0.as_ptr().addr();
        crate::lock(&PHYSICAL_DEVICES).retain(|a| *a != address);
    }
}

fn is_physical_device_object(object: PDEVICE_OBJECT) -> bool {
    !object.is_null() && crate::lock(&PHYSICAL_DEVICES).contains(&object.addr())
}

/// The adapter a driver gets: the public structure first, its operations behind it.
#[repr(C)]
struct HostAdapter {
    public: DMA_ADAPTER,
    operations: DMA_OPERATIONS,
}

#[derive(Clone, Copy, Debug)]
struct AdapterRecord {
    /// The adapter addresses 64 bits (`Dma64BitAddresses`).
    dma64: bool,
    /// Its map registers (`*NumberOfMapRegisters`).
    map_registers: u32,
}

#[derive(Clone, Debug)]
struct CommonBuffer {
    adapter: usize,
    virtual_address: usize,
    bytes: usize,
    layout: Layout,
    cache_enabled: bool,
}

/// One programmed run of a mapping set.
#[derive(Clone, Debug)]
struct Mapping {
    set: u64,
    bytes: u64,
    label: Arc<str>,
}

/// A view of one physical page a device was given, until it is committed.
struct View {
    thread: ThreadId,
    page: u64,
    virtual_page: usize,
    /// Byte ranges of the page (offsets) that were programmed when the view was made, with
    /// their mapping sets: only these are written back.
    windows: Vec<(usize, usize, u64)>,
    bytes: Box<[u8]>,
    snapshot: Box<[u8]>,
}

/// What the host's DMA has done since the session began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Mapping runs programmed.
    pub mappings: u64,
    /// The most runs one mapping set had.
    pub max_mappings_per_set: u64,
    /// Bytes of programmed memory devices wrote back through their views.
    pub bytes_written: u64,
    /// Device writes refused (each a violation).
    pub violations: u64,
    /// DMA adapters held now.
    pub adapters: usize,
    /// Common buffers allocated now, and their bytes.
    pub common_buffers: usize,
    /// Bytes of those common buffers.
    pub common_buffer_bytes: usize,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} mappings (at most {} a set), {} bytes written by devices, {} refused writes",
            self.mappings, self.max_mappings_per_set, self.bytes_written, self.violations
        )
    }
}

#[derive(Default)]
struct Space {
    to_physical: HashMap<usize, u64>,
    to_virtual: HashMap<u64, usize>,
    scattered_taken: u64,
    low_next: u64,
    high_next: u64,
    adapters: HashMap<usize, AdapterRecord>,
    /// Live common buffers by their first physical byte.
    common: BTreeMap<u64, CommonBuffer>,
    /// Freed common buffers: first physical byte and length.
    freed_common: VecDeque<(u64, u64)>,
    /// Programmed runs by their first physical byte (they never overlap).
    mappings: BTreeMap<u64, Mapping>,
    /// The runs of each set, and the adapter it was made for.
    sets: HashMap<u64, (usize, Vec<u64>)>,
    next_set: u64,
    /// Completed runs: first physical byte, length, label.
    completed: VecDeque<(u64, u64, Arc<str>)>,
    views: Vec<View>,
    stats: Stats,
}

static SPACE: Mutex<Option<Space>> = Mutex::new(None);

thread_local! {
    /// Time this thread spent in the host's bookkeeping for the simulated bus (views, their
    /// checks, write-backs): what a real machine does not spend.
    static OVERHEAD: std::cell::Cell<std::time::Duration> =
        const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

/// Runs `f`, counting its time as the bus's bookkeeping.
///
/// Timed with the monotonic clock, which costs nanoseconds: a per-thread CPU clock is a system
/// call, and hundreds of them a frame would cost more than what they measure.
fn bookkeeping<R>(f: impl FnOnce() -> R) -> R {
    let started = std::time::Instant::now();
    let result = f();
    let spent = started.elapsed();
    OVERHEAD.with(|overhead| overhead.set(overhead.get() + spent));
    result
}

/// The time the calling thread spent in the bus's bookkeeping since the last call; the count
/// restarts. The DPC thread subtracts it from each DPC's duration.
pub(crate) fn take_overhead() -> std::time::Duration {
    OVERHEAD.with(|overhead| overhead.replace(std::time::Duration::ZERO))
}

fn with_space<R>(f: impl FnOnce(&mut Space) -> R) -> R {
    let mut guard = crate::lock(&SPACE);
    f(guard.get_or_insert_with(Space::default))
}

fn page_of(address: u64) -> u64 {
    address / PAGE as u64
}

impl Space {
    /// The physical address of a virtual one, giving its page a scattered physical page if it
    /// has none yet.
    fn physical(&mut self, address: usize) -> u64 {
        let virtual_page = address / PAGE;
        let page = if let Some(page) = self.to_physical.get(&virtual_page) {
            *page
        } else {
            self.scattered_taken += 1;
            let page = SCATTERED_TOP - self.scattered_taken;
            self.to_physical.insert(virtual_page, page);
            self.to_virtual.insert(page, virtual_page);
            page
        };
        page * PAGE as u64 + (address % PAGE) as u64
    }

    /// The programmed run containing `address`: its start and mapping.
    fn mapping_at(&self, address: u64) -> Option<(u64, &Mapping)> {
        let (start, mapping) = self.mappings.range(..=address).next_back()?;
        (address < start + mapping.bytes).then_some((*start, mapping))
    }

    /// Writes back what every device view holds of the mapping set `set`, which is about to
    /// end: a device's writes to a frame land before the driver learns the frame is done. The
    /// views stay; a later change to those bytes is a write after completion.
    fn flush(&mut self, set: u64) {
        let mut written = 0;
        for view in &mut self.views {
            let base = view.virtual_page * PAGE;
            view.windows.retain(|(lo, hi, owner)| {
                if *owner != set {
                    return true;
                }
                // SAFETY: the window is part of the set, still programmed, so its memory is
                // live; the view is the host's own buffer.
                unsafe {
                    std::ptr::copy(view.bytes[*lo..*hi].as_ptr(), (base + lo) as *mut u8, hi - lo);
                };
                view.snapshot[*lo..*hi].copy_from_slice(&view.bytes[*lo..*hi]);
                written += (hi - lo) as u64;
                false
            });
        }
        self.stats.bytes_written += written;
    }

    /// The programmed runs that touch physical page `page`, as page offsets with their sets.
    fn windows_in(&self, page: u64) -> Vec<(usize, usize, u64)> {
        let first = page * PAGE as u64;
        let end = first + PAGE as u64;
        let mut windows = Vec::new();
        // A run that starts before the page and reaches into it.
        if let Some((start, mapping)) = self.mappings.range(..first).next_back()
            && start + mapping.bytes > first
        {
            let hi = (start + mapping.bytes).min(end) - first;
            windows.push((0, usize::try_from(hi).unwrap_or(PAGE), mapping.set));
        }
        for (start, mapping) in self.mappings.range(first..end) {
            let lo = start - first;
            let hi = (start + mapping.bytes).min(end) - first;
            #[expect(clippy::cast_possible_truncation, reason = "offsets within one page")]
            windows.push((lo as usize, hi as usize, mapping.set));
        }
        windows
    }

    /// What a stray device access at `address` hit, in words.
    fn describe(&self, address: u64) -> String {
        if let Some((start, mapping)) = self.mapping_at(address) {
            return format!("inside the mapping {start:#x}+{} of {}", mapping.bytes, mapping.label);
        }
        if let Some((start, bytes, label)) = self
            .completed
            .iter()
            .rev()
            .find(|(start, bytes, _)| (*start..start + bytes).contains(&address))
        {
            return format!("in the mapping {start:#x}+{bytes} of {label}, which completed");
        }
        if let Some((start, mapping)) = self.mappings.range(..address).next_back()
            && page_of(start + mapping.bytes - 1) == page_of(address)
        {
            return format!(
                "past the end of the mapping {start:#x}+{} of {} (at +{})",
                mapping.bytes,
                mapping.label,
                address - (start + mapping.bytes)
            );
        }
        if let Some((start, buffer)) = self.common.range(..=address).next_back()
            && address < start + buffer.bytes as u64
        {
            return format!(
                "in the common buffer {start:#x}+{} outside every programmed mapping",
                buffer.bytes
            );
        }
        if self.freed_common.iter().any(|(start, bytes)| (*start..start + bytes).contains(&address))
        {
            return "in a common buffer that was freed".to_owned();
        }
        if self.to_virtual.contains_key(&page_of(address)) {
            return "in memory that is not mapped for the device".to_owned();
        }
        "where no memory was ever given out".to_owned()
    }
}

/// What the session left: adapters and common buffers still held, views never committed.
pub(crate) struct Leftovers {
    pub(crate) adapters: usize,
    pub(crate) common_buffers: Vec<(u64, usize)>,
    pub(crate) mapping_sets: usize,
    pub(crate) views: usize,
}

/// Frees what the session left and forgets the address space (session start and end).
pub(crate) fn reset() -> Leftovers {
    let space = crate::lock(&SPACE).take().unwrap_or_default();
    let leftovers = Leftovers {
        adapters: space.adapters.len(),
        common_buffers: space.common.iter().map(|(start, b)| (*start, b.bytes)).collect(),
        mapping_sets: space.sets.len(),
        views: space.views.len(),
    };
    for buffer in space.common.values() {
        // SAFETY: allocated by `AllocateCommonBuffer` with this layout and not freed (it would
        // have left the map); the session is over, so no driver uses it.
        unsafe { dealloc(buffer.virtual_address as *mut u8, buffer.layout) };
    }
    for adapter in space.adapters.keys() {
        // SAFETY: made by `IoGetDmaAdapter` from a Box and not given back (it would have left
        // the map).
        drop(unsafe { Box::from_raw(*adapter as *mut HostAdapter) });
    }
    leftovers
}

/// What the host's DMA has done since the session began.
#[must_use]
pub fn stats() -> Stats {
    with_space(|space| {
        let mut stats = space.stats;
        stats.adapters = space.adapters.len();
        stats.common_buffers = space.common.len();
        stats.common_buffer_bytes = space.common.values().map(|b| b.bytes).sum();
        stats
    })
}

/// The physical address of a virtual address of memory the driver or the host owns.
#[must_use]
pub fn physical_address(address: *const u8) -> u64 {
    with_space(|space| space.physical(address.addr()))
}

/// Programmed mappings of one piece of memory, until [`unmap`].
#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "the memory stays programmed until the set is unmapped"]
pub struct MappingSet(u64);

/// One physically contiguous run of a mapping set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Its first physical (logical) byte.
    pub physical: u64,
    /// Its length in bytes.
    pub bytes: u32,
}

/// Why memory could not be mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The adapter is not one `IoGetDmaAdapter` returned, or it was given back.
    UnknownAdapter,
    /// Nothing to map, or a maximum run of 0 bytes.
    Empty,
    /// Part of the memory is programmed already (for another frame): the physical address.
    AlreadyMapped(u64),
    /// The memory is above 4 GiB and the adapter addresses only 32 bits (the kernel would use
    /// map registers and bounce buffers, which the host does not model): the physical address.
    Above4GiB(u64),
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownAdapter => f.write_str("not a live DMA adapter"),
            Self::Empty => f.write_str("nothing to map"),
            Self::AlreadyMapped(at) => write!(f, "physical {at:#x} is mapped already"),
            Self::Above4GiB(at) => write!(
                f,
                "physical {at:#x} is above 4 GiB and the adapter addresses 32 bits (map \
                 registers are not modelled)"
            ),
        }
    }
}

impl std::error::Error for MapError {}

/// Programs `bytes` bytes at `address` for the device of `adapter`: runs of physically
/// contiguous memory of at most `max_run` bytes each, named `label` in violations.
///
/// # Errors
///
/// [`MapError`]; nothing is programmed then.
pub fn map(
    adapter: PDMA_ADAPTER,
    address: *const u8,
    bytes: usize,
    max_run: u32,
    label: &str,
) -> Result<(MappingSet, Vec<Run>), MapError> {
    if bytes == 0 || max_run == 0 {
        return Err(MapError::Empty);
    }
    with_space(|space| {
        let Some(record) = space.adapters.get(&adapter.addr()).copied() else {
            return Err(MapError::UnknownAdapter);
        };
        let mut runs: Vec<Run> = Vec::new();
        let mut offset = 0;
        while offset < bytes {
            let physical = space.physical(address.addr() + offset);
            let in_page = (PAGE - (address.addr() + offset) % PAGE).min(bytes - offset);
            if !record.dma64 && physical + in_page as u64 > 1 << 32 {
                return Err(MapError::Above4GiB(physical));
            }
            #[expect(clippy::cast_possible_truncation, reason = "at most one page")]
            let mut chunk = in_page as u32;
            let mut at = physical;
            while chunk > 0 {
                let take = match runs.last_mut() {
                    Some(run)
                        if run.physical + u64::from(run.bytes) == at && run.bytes < max_run =>
                    {
                        let take = chunk.min(max_run - run.bytes);
                        run.bytes += take;
                        take
                    }
                    _ => {
                        let take = chunk.min(max_run);
                        runs.push(Run { physical: at, bytes: take });
                        take
                    }
                };
                chunk -= take;
                at += u64::from(take);
            }
            offset += in_page;
        }
        for run in &runs {
            let end = run.physical + u64::from(run.bytes);
            if space.mapping_at(run.physical).is_some() {
                return Err(MapError::AlreadyMapped(run.physical));
            }
            if let Some((start, _)) = space.mappings.range(run.physical..end).next() {
                return Err(MapError::AlreadyMapped(*start));
            }
        }
        space.next_set += 1;
        let set = space.next_set;
        let label: Arc<str> = Arc::from(label);
        for run in &runs {
            space.mappings.insert(
                run.physical,
                Mapping { set, bytes: u64::from(run.bytes), label: Arc::clone(&label) },
            );
        }
        space.sets.insert(set, (adapter.addr(), runs.iter().map(|r| r.physical).collect()));
        let count = runs.len() as u64;
        space.stats.mappings += count;
        space.stats.max_mappings_per_set = space.stats.max_mappings_per_set.max(count);
        Ok((MappingSet(set), runs))
    })
}

/// Ends a mapping set: the device may no longer reach its memory.
#[expect(
    clippy::needless_pass_by_value,
    reason = "the set is used up: a set that was unmapped cannot be unmapped again"
)]
pub fn unmap(set: MappingSet) {
    let MappingSet(set) = set;
    bookkeeping(|| unmap_set(set));
}

fn unmap_set(set: u64) {
    with_space(|space| {
        space.flush(set);
        let Some((_, starts)) = space.sets.remove(&set) else { return };
        for start in starts {
            if let Some(mapping) = space.mappings.remove(&start) {
                space.completed.push_back((start, mapping.bytes, mapping.label));
                if space.completed.len() > HISTORY {
                    space.completed.pop_front();
                }
            }
        }
    });
}

/// A mapping programmed in `bytes` bytes at virtual `address`, in words, if there is one (the
/// memory must not be freed then).
pub(crate) fn mapped_within(address: usize, bytes: usize) -> Option<String> {
    let guard = crate::lock(&SPACE);
    let space = guard.as_ref()?;
    let first = address / PAGE;
    let last = (address + bytes.max(1) - 1) / PAGE;
    for virtual_page in first..=last {
        let Some(page) = space.to_physical.get(&virtual_page) else { continue };
        let lo = if virtual_page == first { address % PAGE } else { 0 };
        let hi = if virtual_page == last { (address + bytes.max(1) - 1) % PAGE + 1 } else { PAGE };
        for (wlo, whi, set) in space.windows_in(*page) {
            if wlo < hi && lo < whi {
                let at = page * PAGE as u64 + wlo as u64;
                let label = space.mapping_at(at).map_or("", |(_, m)| &m.label);
                return Some(format!("mapping set {set} at physical {at:#x}, {label}"));
            }
        }
    }
    None
}

/// Writes back what the calling thread's device views hold (see the module documentation).
/// The host does this when a DPC returns; a test that plays a device on its own thread calls it.
pub fn commit() {
    bookkeeping(commit_views);
}

fn commit_views() {
    let thread = std::thread::current().id();
    let mut problems = Vec::new();
    with_space(|space| {
        let (mine, others): (Vec<View>, Vec<View>) =
            std::mem::take(&mut space.views).into_iter().partition(|v| v.thread == thread);
        space.views = others;
        for view in mine {
            let base = view.page * PAGE as u64;
            let live: Vec<(usize, usize)> = view
                .windows
                .iter()
                .filter(|(lo, _, set)| {
                    space.mapping_at(base + *lo as u64).is_some_and(|(_, m)| m.set == *set)
                })
                .map(|(lo, hi, _)| (*lo, *hi))
                .collect();
            for (lo, hi) in &live {
                let target = (view.virtual_page * PAGE + lo) as *mut u8;
                // SAFETY: the window is part of a mapping still programmed, so its memory is
                // live (freeing mapped memory is refused); the view is the host's own buffer.
                unsafe { std::ptr::copy(view.bytes[*lo..*hi].as_ptr(), target, hi - lo) };
                space.stats.bytes_written += (hi - lo) as u64;
            }
            // The rest of the page, outside the live windows, in gaps between them.
            let mut live_sorted = live.clone();
            live_sorted.sort_unstable();
            let mut gaps = Vec::new();
            let mut at = 0;
            for (lo, hi) in &live_sorted {
                if *lo > at {
                    gaps.push((at, *lo));
                }
                at = at.max(*hi);
            }
            gaps.push((at, PAGE));
            for (gap_lo, gap_hi) in gaps {
                if view.bytes[gap_lo..gap_hi] == view.snapshot[gap_lo..gap_hi] {
                    continue; // the usual case, compared in bulk
                }
                let mut offset = gap_lo;
                while offset < gap_hi {
                    let changed = view.bytes[offset..gap_hi]
                        .iter()
                        .zip(&view.snapshot[offset..gap_hi])
                        .position(|(now, before)| now != before);
                    let Some(first) = changed else { break };
                    let start = offset + first;
                    let unchanged = view.bytes[start..gap_hi]
                        .iter()
                        .zip(&view.snapshot[start..gap_hi])
                        .position(|(now, before)| now == before);
                    offset = unchanged.map_or(gap_hi, |len| start + len);
                    let address = base + start as u64;
                    space.stats.violations += 1;
                    problems.push(format!(
                        "a device wrote {} bytes at physical {address:#x}, {}; not written",
                        offset - start,
                        space.describe(address)
                    ));
                }
            }
        }
    });
    for problem in problems {
        verifier::report("bus-master DMA", problem);
    }
}

/// `MmGetPhysicalAddress`: the physical address of a non-paged virtual address. Any IRQL.
/// Paged memory has no fixed physical page: asking for one is a violation.
// SAFETY: no other symbol of a host process is named `MmGetPhysicalAddress`; ks-sys declares it
// with exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn MmGetPhysicalAddress(BaseAddress: PVOID) -> PHYSICAL_ADDRESS {
    if crate::pool::kind_containing(BaseAddress.addr()) == Some(crate::pool::PoolKind::Paged) {
        verifier::report(
            "MmGetPhysicalAddress",
            format!("{BaseAddress:p} is paged pool, which has no fixed physical page"),
        );
    }
    let physical = physical_address(BaseAddress.cast());
    LARGE_INTEGER { QuadPart: i64::try_from(physical).unwrap_or(i64::MAX) }
}

/// `MmGetVirtualForPhysical`, as the simulated hardware's bus: a view of the page of a programmed
/// mapping, or NULL and a violation (see the module documentation). IRQL <= DISPATCH_LEVEL.
// SAFETY: no other symbol of a host process is named `MmGetVirtualForPhysical`; ks-sys declares
// it with exactly this signature.
#[unsafe(no_mangle)]
pub extern "system" fn MmGetVirtualForPhysical(PhysicalAddress: PHYSICAL_ADDRESS) -> PVOID {
    bookkeeping(|| view_of(PhysicalAddress))
}

/// `MmGetVirtualForPhysical`'s work.
fn view_of(PhysicalAddress: PHYSICAL_ADDRESS) -> PVOID {
    const ROUTINE: &str = "MmGetVirtualForPhysical";
    if !verifier::require_irql_at_most(ROUTINE, DISPATCH_LEVEL) {
        return std::ptr::null_mut();
    }
    // SAFETY: every bit pattern of the union is a valid i64.
    let Ok(address) = u64::try_from(unsafe { PhysicalAddress.QuadPart }) else {
        verifier::report(ROUTINE, "a negative physical address".to_owned());
        return std::ptr::null_mut();
    };
    let thread = std::thread::current().id();
    let mut pending = Vec::new();
    let result = with_space(|space| {
        if space.mapping_at(address).is_none() {
            space.stats.violations += 1;
            return Err(format!(
                "a device reached physical {address:#x}, {}",
                space.describe(address)
            ));
        }
        let page = page_of(address);
        let offset = usize::try_from(address % PAGE as u64).unwrap_or(0);
        if let Some(index) = space.views.iter().rposition(|v| v.thread == thread && v.page == page)
        {
            // Mappings programmed since the view was made join it.
            let windows = space.windows_in(page);
            let view = &space.views[index];
            let fresh: Vec<(usize, usize, u64)> =
                windows.into_iter().filter(|w| !view.windows.contains(w)).collect();
            let mut stray = Vec::new();
            for (lo, hi, _) in &fresh {
                if view.bytes[*lo..*hi] != view.snapshot[*lo..*hi] {
                    stray.push(page * PAGE as u64 + *lo as u64);
                }
            }
            for address in stray {
                space.stats.violations += 1;
                let what = space.describe(address);
                pending.push(format!(
                    "a device wrote at physical {address:#x} before it was mapped ({what}); \
                     not written"
                ));
            }
            let view = &mut space.views[index];
            for (lo, hi, set) in fresh {
                let source = (view.virtual_page * PAGE + lo) as *const u8;
                // SAFETY: the window is part of a programmed mapping, whose memory is live.
                unsafe { std::ptr::copy(source, view.bytes[lo..hi].as_mut_ptr(), hi - lo) };
                view.snapshot[lo..hi].copy_from_slice(&view.bytes[lo..hi]);
                view.windows.push((lo, hi, set));
            }
            return Ok(view.bytes[offset..].as_mut_ptr());
        }
        let Some(virtual_page) = space.to_virtual.get(&page).copied() else {
            return Err(format!("physical page {page:#x} is mapped but has no memory (host bug)"));
        };
        let windows = space.windows_in(page);
        let mut bytes = vec![UNMAPPED; PAGE].into_boxed_slice();
        for (lo, hi, _) in &windows {
            let source = (virtual_page * PAGE + lo) as *const u8;
            // SAFETY: the window is part of a programmed mapping, whose memory is live.
            unsafe { std::ptr::copy(source, bytes[*lo..*hi].as_mut_ptr(), hi - lo) };
        }
        let snapshot = bytes.clone();
        let pointer = bytes[offset..].as_mut_ptr();
        // The boxed bytes stay where they are while the view moves into the list.
        space.views.push(View { thread, page, virtual_page, windows, bytes, snapshot });
        Ok(pointer)
    });
    for problem in pending {
        verifier::report("bus-master DMA", problem);
    }
    match result {
        Ok(pointer) => pointer.cast(),
        Err(problem) => {
            verifier::report(ROUTINE, problem);
            std::ptr::null_mut()
        }
    }
}

/// `IoGetDmaAdapter`: the DMA adapter of a device, for a bus master; NULL for system DMA, a
/// description the host does not know, or when the failure schedule fails it. PASSIVE_LEVEL.
///
/// # Safety
///
/// `DeviceDescription` is NULL or a readable `DEVICE_DESCRIPTION`; `NumberOfMapRegisters` NULL
/// or a writable `ULONG`.
// SAFETY: no other symbol of a host process is named `IoGetDmaAdapter`; ks-sys declares it with
// exactly this signature.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn IoGetDmaAdapter(
    PhysicalDeviceObject: PDEVICE_OBJECT,
    DeviceDescription: PDEVICE_DESCRIPTION,
    NumberOfMapRegisters: PULONG,
) -> PDMA_ADAPTER {
    const ROUTINE: &str = "IoGetDmaAdapter";
    if !verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL) {
        return std::ptr::null_mut();
    }
    if !is_physical_device_object(PhysicalDeviceObject) {
        verifier::report(
            ROUTINE,
            format!(
                "{PhysicalDeviceObject:p} is not a physical device object (a driver passes its \
                 KSDEVICE's PhysicalDeviceObject, not its functional device object)"
            ),
        );
        return std::ptr::null_mut();
    }
    if NumberOfMapRegisters.is_null() {
        verifier::report(ROUTINE, "NumberOfMapRegisters is NULL".to_owned());
        return std::ptr::null_mut();
    }
    // SAFETY: the caller passes a readable description (the routine's contract); read by value.
    let Some(description) = (unsafe { DeviceDescription.cast_const().as_ref() }).copied() else {
        verifier::report(ROUTINE, "DeviceDescription is NULL".to_owned());
        return std::ptr::null_mut();
    };
    if !usable(&description) || crate::pool::scheduled_failure(None) {
        return std::ptr::null_mut();
    }
    let dma64 =
        description.Version >= DEVICE_DESCRIPTION_VERSION2 && description.Dma64BitAddresses != 0;
    let map_registers =
        (u64::from(description.MaximumLength) / PAGE as u64 + 1).min(MAX_MAP_REGISTERS);
    // SAFETY: the operation table is plain data: NULL operations and a zero size are valid.
    let mut operations: DMA_OPERATIONS = unsafe { std::mem::zeroed() };
    operations.Size = ULONG::try_from(size_of::<DMA_OPERATIONS>()).unwrap_or(0);
    operations.PutDmaAdapter = Some(put_dma_adapter);
    operations.AllocateCommonBuffer = Some(allocate_common_buffer);
    operations.FreeCommonBuffer = Some(free_common_buffer);
    let adapter = Box::into_raw(Box::new(HostAdapter {
        public: DMA_ADAPTER {
            Version: 1,
            Size: u16::try_from(size_of::<DMA_ADAPTER>()).unwrap_or(u16::MAX),
            DmaOperations: std::ptr::null_mut(),
        },
        operations,
    }));
    // SAFETY: just allocated; only the field's address is taken.
    let table = unsafe { &raw mut (*adapter).operations };
    // SAFETY: as above; no one else has the adapter yet.
    unsafe { (*adapter).public.DmaOperations = table };
    let record =
        AdapterRecord { dma64, map_registers: u32::try_from(map_registers).unwrap_or(u32::MAX) };
    with_space(|space| space.adapters.insert(adapter.addr(), record));
    // SAFETY: checked non-NULL above; the caller's ULONG.
    unsafe { NumberOfMapRegisters.write(record.map_registers) };
    adapter.cast()
}

/// Whether the host models the DMA a description asks for: a bus master, a known version.
fn usable(description: &DEVICE_DESCRIPTION) -> bool {
    description.Version <= 3 && description.Master != 0
}

/// The map registers `IoGetDmaAdapter` reported for `adapter`, if it is live.
#[must_use]
pub fn map_registers(adapter: PDMA_ADAPTER) -> Option<u32> {
    with_space(|space| space.adapters.get(&adapter.addr()).map(|r| r.map_registers))
}

/// `PutDmaAdapter`: gives an adapter back. PASSIVE_LEVEL.
unsafe extern "C" fn put_dma_adapter(DmaAdapter: PDMA_ADAPTER) {
    const ROUTINE: &str = "PutDmaAdapter";
    verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    let problem = with_space(|space| {
        if !space.adapters.contains_key(&DmaAdapter.addr()) {
            return Some(format!("{DmaAdapter:p} is not a live DMA adapter (given back twice?)"));
        }
        let buffers = space.common.values().filter(|b| b.adapter == DmaAdapter.addr()).count();
        let sets = space.sets.values().filter(|(a, _)| *a == DmaAdapter.addr()).count();
        if buffers > 0 || sets > 0 {
            return Some(format!(
                "{DmaAdapter:p} is given back with {buffers} common buffer(s) and {sets} mapping \
                 set(s) outstanding; kept"
            ));
        }
        space.adapters.remove(&DmaAdapter.addr());
        None
    });
    match problem {
        Some(problem) => verifier::report(ROUTINE, problem),
        // SAFETY: made by `IoGetDmaAdapter` from a Box, just removed from the live set.
        None => drop(unsafe { Box::from_raw(DmaAdapter.cast::<HostAdapter>()) }),
    }
}

/// `AllocateCommonBuffer`: physically contiguous memory the device and the driver share, its
/// logical address in `*LogicalAddress`; NULL when the failure schedule fails it. PASSIVE_LEVEL.
unsafe extern "C" fn allocate_common_buffer(
    DmaAdapter: PDMA_ADAPTER,
    Length: ULONG,
    LogicalAddress: PPHYSICAL_ADDRESS,
    CacheEnabled: BOOLEAN,
) -> PVOID {
    const ROUTINE: &str = "AllocateCommonBuffer";
    if !verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL) {
        return std::ptr::null_mut();
    }
    if LogicalAddress.is_null() {
        verifier::report(ROUTINE, "LogicalAddress is NULL".to_owned());
        return std::ptr::null_mut();
    }
    let Some(record) = with_space(|space| space.adapters.get(&DmaAdapter.addr()).copied()) else {
        verifier::report(ROUTINE, format!("{DmaAdapter:p} is not a live DMA adapter"));
        return std::ptr::null_mut();
    };
    let bytes = Length as usize;
    let pages = bytes.div_ceil(PAGE);
    if bytes == 0 || crate::pool::scheduled_failure(None) {
        return std::ptr::null_mut();
    }
    let Ok(layout) = Layout::from_size_align(pages * PAGE, PAGE) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout has a non-zero size.
    let memory = unsafe { alloc(layout) };
    if memory.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: a fresh allocation of the layout's size.
    unsafe { memory.write_bytes(UNINITIALIZED, layout.size()) };
    let physical = with_space(|space| {
        let (next, base, limit) = if record.dma64 {
            (&mut space.high_next, HIGH_BASE, SCATTERED_TOP - (1 << 20))
        } else {
            (&mut space.low_next, LOW_BASE, LOW_LIMIT)
        };
        let first = base + *next;
        if first + pages as u64 > limit {
            return None;
        }
        *next += pages as u64;
        for index in 0..pages {
            let virtual_page = memory.addr() / PAGE + index;
            let page = first + index as u64;
            if let Some(old) = space.to_physical.insert(virtual_page, page) {
                space.to_virtual.remove(&old);
            }
            space.to_virtual.insert(page, virtual_page);
        }
        let start = first * PAGE as u64;
        space.common.insert(
            start,
            CommonBuffer {
                adapter: DmaAdapter.addr(),
                virtual_address: memory.addr(),
                bytes,
                layout,
                cache_enabled: CacheEnabled != 0,
            },
        );
        Some(start)
    });
    let Some(physical) = physical else {
        // SAFETY: allocated above with this layout, never handed out.
        unsafe { dealloc(memory, layout) };
        return std::ptr::null_mut();
    };
    // SAFETY: checked non-NULL; the caller's PHYSICAL_ADDRESS.
    unsafe {
        LogicalAddress.write(LARGE_INTEGER { QuadPart: i64::try_from(physical).unwrap_or(0) });
    };
    memory.cast()
}

/// `FreeCommonBuffer`: frees a common buffer, with exactly the arguments of its allocation.
/// PASSIVE_LEVEL.
unsafe extern "C" fn free_common_buffer(
    DmaAdapter: PDMA_ADAPTER,
    Length: ULONG,
    LogicalAddress: PHYSICAL_ADDRESS,
    VirtualAddress: PVOID,
    CacheEnabled: BOOLEAN,
) {
    const ROUTINE: &str = "FreeCommonBuffer";
    verifier::require_irql_at_most(ROUTINE, PASSIVE_LEVEL);
    // SAFETY: every bit pattern of the union is a valid i64.
    let logical = unsafe { LogicalAddress.QuadPart };
    let freed = with_space(|space| {
        let Some((start, buffer)) =
            space.common.iter().find(|(_, b)| b.virtual_address == VirtualAddress.addr())
        else {
            return Err(format!(
                "{VirtualAddress:p} is not a live common buffer (never allocated, or freed twice)"
            ));
        };
        let start = *start;
        let mut wrong = Vec::new();
        if buffer.adapter != DmaAdapter.addr() {
            wrong.push(format!("adapter {DmaAdapter:p} (allocated from {:#x})", buffer.adapter));
        }
        if Length as usize != buffer.bytes {
            wrong.push(format!("Length {Length} (allocated {})", buffer.bytes));
        }
        if u64::try_from(logical).ok() != Some(start) {
            wrong.push(format!("LogicalAddress {logical:#x} (allocated at {start:#x})"));
        }
        if (CacheEnabled != 0) != buffer.cache_enabled {
            wrong.push(format!("CacheEnabled {CacheEnabled} (allocated {})", buffer.cache_enabled));
        }
        if !wrong.is_empty() {
            return Err(format!(
                "{VirtualAddress:p} is freed with arguments other than its allocation's: {}; \
                 not freed",
                wrong.join(", ")
            ));
        }
        let end = start + buffer.bytes as u64;
        if let Some((at, mapping)) = space.mappings.range(start..end).next() {
            return Err(format!(
                "{VirtualAddress:p} is freed while the mapping {at:#x} of {} is programmed; not \
                 freed",
                mapping.label
            ));
        }
        let buffer = space.common.remove(&start).expect("found above");
        for index in 0..buffer.layout.size() / PAGE {
            let virtual_page = buffer.virtual_address / PAGE + index;
            if let Some(page) = space.to_physical.remove(&virtual_page) {
                space.to_virtual.remove(&page);
            }
        }
        space.freed_common.push_back((start, buffer.bytes as u64));
        if space.freed_common.len() > HISTORY {
            space.freed_common.pop_front();
        }
        Ok(buffer)
    });
    match freed {
        // SAFETY: allocated by `allocate_common_buffer` with this layout, just removed from the
        // live set; no mapping reaches it.
        Ok(buffer) => unsafe { dealloc(buffer.virtual_address as *mut u8, buffer.layout) },
        Err(problem) => verifier::report(ROUTINE, problem),
    }
}
