//! How many allocators a pin and the whole driver have alive: the ceilings of
//! [`PoolConfig::max_allocators_per_pin`] and [`PoolConfig::max_allocators`].
//!
//! Every allocator create request allocates its frames at once, within the budget of one
//! allocator; without a ceiling on how many there are, a process holding a pin handle could
//! create allocators until non-paged pool runs out. So `InitializeAllocator` takes a place
//! (a lease) before anything is allocated, and the allocator gives it back when it is deleted.
//!
//! Counting is lock-free and exact from above: a request counts itself first, then looks at the
//! total, and takes its count back if the total is over the ceiling. Two requests racing for the
//! last place may both be refused (each saw the other's count), never both admitted.
//!
//! - The driver-wide count is one atomic. It also counts allocators deleted with frames still out
//!   whose memory is kept ([`crate::dispatch`]'s retired allocators), so the ceiling bounds the
//!   memory a consumer's bug can pin as well.
//! - The per-pin counts live in a fixed table of [`PIN_SLOTS`] words, each packing a pin's
//!   address and its count: a slot is claimed by the first allocator of a pin and freed with its
//!   last. The driver-wide ceiling is at most [`PIN_SLOTS`], so the table cannot fill up.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::{PoolConfig, request::RequestError};

/// Slots of the per-pin table, and the highest driver-wide ceiling.
pub const PIN_SLOTS: usize = 256;

/// Bits of a slot that hold the count; the rest hold the pin.
const COUNT_BITS: u32 = 19;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// The highest per-pin ceiling a slot can count to.
#[expect(clippy::cast_possible_truncation, reason = "2^19 - 1")]
pub const MAX_PER_PIN: u32 = COUNT_MASK as u32;

/// Allocators alive in the driver (retired ones included).
static LIVE: AtomicU32 = AtomicU32::new(0);

/// The per-pin table: `key << COUNT_BITS | count`, or 0 for a free slot.
static SLOTS: [AtomicU64; PIN_SLOTS] = [const { AtomicU64::new(0) }; PIN_SLOTS];

/// A pin's key: its address without the low bits an 8-byte-aligned object does not use and the
/// high bits a canonical x64 address repeats; never 0 for a non-NULL pin.
fn key(owner: usize) -> u64 {
    ((owner as u64) & 0x0000_FFFF_FFFF_FFF8) >> 3
}

/// An allocator's place under the ceilings, given back when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    /// The per-pin slot counted, if the allocator has a pin.
    slot: Option<usize>,
    /// Whether the driver-wide count still includes this allocator.
    counted: bool,
}

impl Lease {
    /// Takes a place for an allocator of `owner` (the pin, or 0 for none) under `budget`.
    ///
    /// # Errors
    ///
    /// [`RequestError::TooManyAllocators`] or [`RequestError::TooManyAllocatorsOnPin`].
    pub(crate) fn take(owner: usize, budget: &PoolConfig) -> Result<Self, RequestError> {
        let ceiling = budget.max_allocators;
        let live = LIVE.fetch_add(1, Ordering::AcqRel) + 1;
        let mut lease = Self { slot: None, counted: true };
        if live > ceiling {
            drop(lease);
            return Err(RequestError::TooManyAllocators { live: live - 1, budget: ceiling });
        }
        let key = key(owner);
        if key != 0 {
            let per_pin = budget.max_allocators_per_pin;
            let Some(slot) = count_pin(key) else {
                drop(lease);
                // The table cannot be full while the driver-wide count is within it (module
                // documentation): only a ceiling above PIN_SLOTS gets here.
                return Err(RequestError::TooManyAllocators { live, budget: ceiling });
            };
            lease.slot = Some(slot);
            let on_pin = on_pin(key);
            if on_pin > per_pin {
                drop(lease);
                return Err(RequestError::TooManyAllocatorsOnPin {
                    live: on_pin - 1,
                    budget: per_pin,
                });
            }
        }
        Ok(lease)
    }

    /// Gives back the per-pin place and keeps the driver-wide one: an allocator deleted with
    /// frames out, whose memory is kept, no longer belongs to its pin but still counts.
    pub(crate) fn leave_pin(&mut self) {
        if let Some(slot) = self.slot.take() {
            uncount_pin(slot);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.leave_pin();
        if self.counted {
            self.counted = false;
            LIVE.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Counts one more allocator for `key`: in the slot that holds it, or a free one claimed.
/// `None` if every slot is taken by other pins.
fn count_pin(key: u64) -> Option<usize> {
    let tagged = key << COUNT_BITS;
    // Two passes: the slot that already counts the pin, else a free one. A slot can change
    // between the passes; every compare-exchange that fails means another request succeeded,
    // so the loops end.
    for (index, slot) in SLOTS.iter().enumerate() {
        let mut word = slot.load(Ordering::Acquire);
        while word & !COUNT_MASK == tagged && word & COUNT_MASK < COUNT_MASK {
            match slot.compare_exchange(word, word + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(index),
                Err(now) => word = now,
            }
        }
    }
    for (index, slot) in SLOTS.iter().enumerate() {
        if slot.compare_exchange(0, tagged | 1, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            return Some(index);
        }
    }
    None
}

/// Allocators counted for `key`, over every slot that holds it (two requests may have claimed
/// two slots for one pin at once).
fn on_pin(key: u64) -> u32 {
    let tagged = key << COUNT_BITS;
    SLOTS
        .iter()
        .map(|slot| slot.load(Ordering::Acquire))
        .filter(|word| word & !COUNT_MASK == tagged)
        .map(|word| word & COUNT_MASK)
        .sum::<u64>()
        .try_into()
        .unwrap_or(u32::MAX)
}

/// Counts one allocator less in `slot`, freeing the slot with its last.
fn uncount_pin(index: usize) {
    let Some(slot) = SLOTS.get(index) else { return };
    let word = slot.fetch_sub(1, Ordering::AcqRel) - 1;
    if word & COUNT_MASK == 0 {
        // Free it unless another allocator of the pin counted itself in the meantime.
        let _ = slot.compare_exchange(word, 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Allocators the library's `KSALLOCATOR_DISPATCH` callbacks have alive in the driver: created
/// and not yet deleted, plus those deleted with frames outstanding whose memory is kept
/// ([`retired_allocators`](crate::retired_allocators)). What [`PoolConfig::max_allocators`]
/// bounds.
///
/// # IRQL
///
/// Any.
#[must_use]
pub fn live_allocators() -> u32 {
    LIVE.load(Ordering::Acquire)
}

/// Allocators alive for one pin (retired ones no longer count for it). What
/// [`PoolConfig::max_allocators_per_pin`] bounds.
///
/// # IRQL
///
/// Any.
#[must_use]
pub fn live_allocators_on(pin: *const ks_sys::KSPIN) -> u32 {
    match key(pin.addr()) {
        0 => 0,
        key => on_pin(key),
    }
}
