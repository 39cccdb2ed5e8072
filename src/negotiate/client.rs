//! What a user-mode client that reads with its own buffers gets from a pin.
//!
//! A camera application (through DirectShow or Media Foundation, or with `IOCTL_KS_READ_STREAM`
//! directly) does not connect a kernel-mode pin and has no kernel allocator: it reads the pin's
//! framing, allocates buffers itself and sends them down, where they are locked and mapped into
//! system space. So the connection's frames are always the client's: user-mode memory, which is
//! system memory once locked. Which of the pin's framing items that satisfies decides the
//! buffers' size, count and alignment. The project's rule (the KS proxy's is not public), item
//! by item in the pin's order of preference:
//!
//! 1. An item whose pin must allocate (`MUST_ALLOCATE` without `PREFERENCES_ONLY`) cannot take
//!    the client's buffers: skipped.
//! 2. An item that requires memory the client cannot supply (device memory, or any type that is
//!    neither system memory, user memory nor a wildcard) without `PREFERENCES_ONLY`: skipped.
//! 3. The first item left gives the buffers: its frame size (the optimal range's upper end if
//!    finite, else its lower end, else the physical maximum; an item with none of them states no
//!    size and is skipped), its frame count (2 when it states none) and its alignment mask.
//!
//! Every item skipped is recorded with the reason in the [`ClientPlan`] (or in the error when
//! none is left).

use core::fmt;

use crate::framing::{FramingExView, FramingItem, ItemFlags, MemoryType};

/// Items a plan or an error records the reasons of (the rest are counted).
const MAX_SKIPPED: usize = 8;

/// The buffers a client allocates when an item states no frame count.
pub const CLIENT_DEFAULT_FRAMES: u32 = 2;

/// Why a pin's framing item cannot take a user-mode client's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientRefusal {
    /// The pin must allocate this item's frames itself.
    MustAllocate {
        /// The item.
        item: usize,
    },
    /// The item requires memory a user-mode client cannot supply.
    Memory {
        /// The item.
        item: usize,
        /// Its memory type.
        memory_type: MemoryType,
    },
    /// The item states no frame size.
    NoFrameSize {
        /// The item.
        item: usize,
    },
}

impl fmt::Display for ClientRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::MustAllocate { item } => write!(
                f,
                "item {item}: the pin must allocate its frames (MUST_ALLOCATE), and a user-mode \
                 client brings its own buffers"
            ),
            Self::Memory { item, memory_type } => write!(
                f,
                "item {item}: memory {memory_type} is not memory a user-mode client has (only a \
                 kernel-mode pin can take it)"
            ),
            Self::NoFrameSize { item } => write!(f, "item {item}: no frame size stated"),
        }
    }
}

/// What a user-mode client reading with its own buffers gets from a pin's framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientPlan {
    /// The pin's item the buffers satisfy.
    pub item: usize,
    /// The memory type that item asks for (the buffers are user memory, system memory once
    /// locked).
    pub item_memory_type: MemoryType,
    /// Bytes of each buffer.
    pub frame_size: u32,
    /// Buffers the client allocates.
    pub frames: u32,
    /// The alignment mask the buffers honour.
    pub file_alignment: u32,
    skipped: [Option<ClientRefusal>; MAX_SKIPPED],
}

impl ClientPlan {
    /// The items passed over before [`item`](Self::item), and why.
    ///
    /// # IRQL
    ///
    /// Any.
    pub fn skipped(&self) -> impl Iterator<Item = &ClientRefusal> {
        self.skipped.iter().flatten()
    }
}

/// Why no item of a pin's framing takes a user-mode client's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientError {
    /// The reasons, item by item (the first [`MAX_SKIPPED`] items).
    refusals: [Option<ClientRefusal>; MAX_SKIPPED],
    /// Items in the framing.
    items: usize,
}

impl ClientError {
    /// Each item's reason (the first eight items).
    ///
    /// # IRQL
    ///
    /// Any.
    pub fn refusals(&self) -> impl Iterator<Item = &ClientRefusal> {
        self.refusals.iter().flatten()
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no framing item takes a user-mode client's buffers")?;
        for refusal in self.refusals() {
            write!(f, "; {refusal}")?;
        }
        let shown = self.refusals().count();
        if self.items > shown {
            write!(f, "; and {} more items", self.items - shown)?;
        }
        Ok(())
    }
}

impl core::error::Error for ClientError {}

/// The frame size an item states, if any (rule 3 of the module documentation).
fn stated_size(item: &FramingItem) -> Option<u32> {
    let optimal = item.framing_range.range;
    let physical = item.physical_range;
    [optimal.max_frame_size, optimal.min_frame_size, physical.max_frame_size]
        .into_iter()
        .find(|size| *size != 0 && *size != u32::MAX)
}

/// Why `item` (number `index`) cannot take a client's buffers, or the size it states.
fn judge(index: usize, item: &FramingItem) -> Result<u32, ClientRefusal> {
    let preferences = item.flags.contains(ItemFlags::PREFERENCES_ONLY);
    if item.flags.contains(ItemFlags::MUST_ALLOCATE) && !preferences {
        return Err(ClientRefusal::MustAllocate { item: index });
    }
    let memory = item.memory_type;
    let reachable = memory.is_system() || memory.is_wildcard() || memory == MemoryType::USER;
    if !reachable && !preferences {
        return Err(ClientRefusal::Memory { item: index, memory_type: memory });
    }
    stated_size(item).ok_or(ClientRefusal::NoFrameSize { item: index })
}

/// The buffers a user-mode client reading with its own buffers allocates for a pin with
/// `framing` (module documentation).
///
/// # Errors
///
/// [`ClientError`] when no item can take them, with each item's reason.
///
/// # IRQL
///
/// Any (pure computation; buffers must be resident).
#[expect(
    clippy::result_large_err,
    reason = "no allocation in the library: the error carries its reasons inline, like the plan"
)]
pub fn plan_for_user_client(framing: &FramingExView<'_>) -> Result<ClientPlan, ClientError> {
    let mut skipped = [None; MAX_SKIPPED];
    let mut items = 0;
    for (index, item) in framing.items().enumerate() {
        items += 1;
        match judge(index, &item) {
            Ok(frame_size) => {
                let frames = if item.frames == 0 { CLIENT_DEFAULT_FRAMES } else { item.frames };
                return Ok(ClientPlan {
                    item: index,
                    item_memory_type: item.memory_type,
                    frame_size,
                    frames,
                    file_alignment: item.file_alignment,
                    skipped,
                });
            }
            Err(refusal) => {
                if let Some(slot) = skipped.get_mut(index) {
                    *slot = Some(refusal);
                }
            }
        }
    }
    Err(ClientError { refusals: skipped, items })
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::vec::Vec;

    use super::*;
    use crate::framing::{FramingEx, FramingRange};

    #[test]
    fn a_device_item_that_must_allocate_is_passed_over_for_system_memory() {
        let framing = FramingEx::new([
            FramingItem::new(MemoryType::DEVICE_UNKNOWN)
                .with_flags(ItemFlags::MUST_ALLOCATE)
                .with_frames(4)
                .with_alignment(0xFFF)
                .with_exact_size(153_600),
            FramingItem::new(MemoryType::KERNEL_NONPAGED)
                .with_flags(ItemFlags::SYSTEM_MEMORY.union(ItemFlags::PREFERENCES_ONLY))
                .with_frames(4)
                .with_exact_size(153_600),
        ]);
        let plan = plan_for_user_client(&framing.view()).unwrap();
        assert_eq!(
            (plan.item, plan.frame_size, plan.frames, plan.file_alignment),
            (1, 153_600, 4, 0)
        );
        let skipped: Vec<_> = plan.skipped().copied().collect();
        assert_eq!(skipped, [ClientRefusal::MustAllocate { item: 0 }]);
    }

    #[test]
    fn device_memory_without_preferences_and_no_size_are_refused_with_reasons() {
        let framing = FramingEx::new([
            FramingItem::new(MemoryType::DEVICE_UNKNOWN).with_exact_size(4096),
            FramingItem::new(MemoryType::KERNEL_PAGED),
        ]);
        let error = plan_for_user_client(&framing.view()).unwrap_err();
        let refusals: Vec<_> = error.refusals().copied().collect();
        assert_eq!(
            refusals,
            [
                ClientRefusal::Memory { item: 0, memory_type: MemoryType::DEVICE_UNKNOWN },
                ClientRefusal::NoFrameSize { item: 1 }
            ]
        );
        let text = std::format!("{error}");
        assert!(text.contains("item 0: memory DeviceUnknown"), "{text}");
    }

    #[test]
    fn preferences_make_any_item_usable_and_sizes_come_from_the_ranges() {
        let framing = FramingEx::new([FramingItem::new(MemoryType::DEVICE_UNKNOWN)
            .with_flags(ItemFlags::MUST_ALLOCATE.union(ItemFlags::PREFERENCES_ONLY))
            .with_optimal_range(FramingRange::new(1000, u32::MAX))]);
        let plan = plan_for_user_client(&framing.view()).unwrap();
        assert_eq!((plan.item, plan.frame_size, plan.frames), (0, 1000, CLIENT_DEFAULT_FRAMES));
    }
}
