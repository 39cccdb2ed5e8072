//! Allocator requests: the 24-byte framing of an allocator create request, held against the pin
//! it is for and the driver's budget, and resolved once into what a frame pool needs.
//!
//! An allocator create request can come from any process that opened the pin. Before a byte of
//! frame memory is allocated, [`AllocatorRequest::new`] checks it three ways:
//!
//! 1. **as a framing**: specification section 7.4 (B), lenient on option bits as ReactOS' ks.sys
//!    is (`FrameSize` not 0, an alignment mask of at most a page, a pool type the allocator
//!    serves, no undefined option bits);
//! 2. **against the pin** ([`PinConstraints`], read from the pin descriptor): no paged frames for
//!    a pin that processes at DISPATCH_LEVEL or asks AVStream for scatter/gather mappings (the
//!    first page-out would bugcheck), and no frame larger than the largest physical frame size
//!    the pin's framing states;
//! 3. **against the budget** ([`PoolConfig`], set by the driver): at most
//!    [`max_frames`](PoolConfig::max_frames) frames and
//!    [`max_bytes`](PoolConfig::max_bytes) bytes of frame memory; a request for `Frames = 0`
//!    ("no cap") gets [`uncapped_frames`](PoolConfig::uncapped_frames) frames, all allocated up
//!    front, because `Allocate` runs at DISPATCH_LEVEL and never allocates.
//!
//! The budget also bounds how many allocators there are: at most
//! [`max_allocators_per_pin`](PoolConfig::max_allocators_per_pin) alive for one pin and
//! [`max_allocators`](PoolConfig::max_allocators) in the whole driver, counted when the
//! library's `KSALLOCATOR_DISPATCH` creates one and released when it is deleted
//! ([`live_allocators`](crate::live_allocators)). One request cannot know how many others exist,
//! so those two are checked by `InitializeAllocator` after the three checks here.
//!
//! The result is an [`AllocatorRequest`], the only way to create a [`FramePool`](crate::FramePool)
//! or a [`PinAllocator`](crate::PinAllocator): what it says has been checked, and nothing after it
//! checks again.
//!
//! ```
//! use ks_allocator::{
//!     AllocatorRequest, PinConstraints, PoolConfig,
//!     framing::{Framing, OptionFlags, PoolType},
//!     request::RequestError,
//! };
//!
//! // A pin that processes at DISPATCH_LEVEL, whose framing states frames of at most 64 KiB.
//! let pin = PinConstraints::NONE.with_nonpaged_only(true).with_max_frame_size(Some(0x1_0000));
//! let config = PoolConfig::DEFAULT;
//!
//! let ok = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 4, 0x1_0000, 0xF);
//! let request = AllocatorRequest::new(&ok, &pin, &config)?;
//! assert_eq!((request.frames(), request.frame_size(), request.frame_bytes()), (4, 0x1_0000, 0x4_0000));
//!
//! let paged = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::PAGED, 4, 0x1_0000, 0xF);
//! assert!(matches!(
//!     AllocatorRequest::new(&paged, &pin, &config),
//!     Err(RequestError::PagedForDispatchPin { .. })
//! ));
//!
//! let greedy = Framing::request(OptionFlags::SYSTEM_MEMORY, PoolType::NON_PAGED, 65_535, 0x1_0000, 0);
//! let error = AllocatorRequest::new(&greedy, &PinConstraints::NONE, &config).unwrap_err();
//! assert_eq!(error, RequestError::TooManyFrames { frames: 65_535, budget: config.max_frames });
//! assert_eq!(ks_allocator::Error::from(error), ks_allocator::Error::INSUFFICIENT_RESOURCES);
//! # Ok::<(), RequestError>(())
//! ```

use core::fmt;

use crate::{
    Error,
    framing::{Finding, Framing, FramingExView, LegacyRole, OptionFlags, PoolType},
    pool::divide::ExactDivider,
};

/// Most bytes of frame memory any pool can have: frame offsets must fit 32 bits, which lets
/// `Free` map an address to its frame without a division instruction.
pub const MAX_POOL_BYTES: usize = u32::MAX as usize;

/// The resources one allocator may take: a budget the driver sets for its pins.
///
/// The defaults fit capture pins up to 1080p (eight 4 MiB frames) and audio pins with many small
/// frames; a driver should lower them to what its largest format needs, since every allocator
/// create request is a non-paged allocation a user-mode client can ask for. Bookkeeping (8 bytes
/// per frame, a header of under 1 KiB and up to 2 KiB for a pool spread over processors, see
/// [`pool`](crate::pool#shards)) comes on top of `max_bytes`. The most frame memory
/// the library's allocators can hold in a driver is `max_allocators * max_bytes` (64 times
/// 64 MiB by default: lower it).
///
/// ```
/// use ks_allocator::PoolConfig;
///
/// // 640x480 RGB24 at most, up to 8 frames.
/// const CAPTURE_BUDGET: PoolConfig =
///     PoolConfig::DEFAULT.with_max_frames(8).with_max_bytes(8 * 640 * 480 * 3);
/// assert_eq!(CAPTURE_BUDGET.uncapped_frames, 8);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PoolConfig {
    /// Most frames one allocator may have. Default 1024.
    pub max_frames: u32,
    /// Most bytes of frame memory (frames times the aligned frame size) one allocator may have;
    /// at most [`MAX_POOL_BYTES`]. Default 64 MiB.
    pub max_bytes: usize,
    /// Frames given to a request for `Frames = 0` ("no cap"), all allocated when the allocator
    /// is created; 0 refuses such requests. Default 8.
    pub uncapped_frames: u32,
    /// Most allocators one pin may have alive at once (AVStream creates one per pipe; more come
    /// only from clients creating allocators on the pin). Default 4; at most
    /// [`MAX_PER_PIN`](crate::ceiling::MAX_PER_PIN).
    pub max_allocators_per_pin: u32,
    /// Most allocators the driver may have alive at once, over all its pins, allocators deleted
    /// with frames still out included (their memory is kept: [`crate::retired_allocators`]).
    /// Default 64; at most [`PIN_SLOTS`](crate::ceiling::PIN_SLOTS).
    pub max_allocators: u32,
}

impl PoolConfig {
    /// 1024 frames, 64 MiB, 8 frames for an uncapped request; 4 allocators a pin, 64 in the
    /// driver.
    pub const DEFAULT: Self = Self {
        max_frames: 1024,
        max_bytes: 64 << 20,
        uncapped_frames: 8,
        max_allocators_per_pin: 4,
        max_allocators: 64,
    };

    /// The same budget with another frame limit.
    #[must_use]
    pub const fn with_max_frames(self, max_frames: u32) -> Self {
        Self { max_frames, ..self }
    }

    /// The same budget with another byte limit (capped at [`MAX_POOL_BYTES`]).
    #[must_use]
    pub const fn with_max_bytes(self, max_bytes: usize) -> Self {
        let max_bytes = if max_bytes > MAX_POOL_BYTES { MAX_POOL_BYTES } else { max_bytes };
        Self { max_bytes, ..self }
    }

    /// The same budget with another frame count for uncapped requests.
    #[must_use]
    pub const fn with_uncapped_frames(self, uncapped_frames: u32) -> Self {
        Self { uncapped_frames, ..self }
    }

    /// The same budget with another ceiling of allocators per pin (capped at
    /// [`MAX_PER_PIN`](crate::ceiling::MAX_PER_PIN)).
    #[must_use]
    pub const fn with_max_allocators_per_pin(self, max_allocators_per_pin: u32) -> Self {
        let cap = crate::ceiling::MAX_PER_PIN;
        let max_allocators_per_pin =
            if max_allocators_per_pin > cap { cap } else { max_allocators_per_pin };
        Self { max_allocators_per_pin, ..self }
    }

    /// The same budget with another driver-wide ceiling of allocators (capped at
    /// [`PIN_SLOTS`](crate::ceiling::PIN_SLOTS)).
    #[must_use]
    pub const fn with_max_allocators(self, max_allocators: u32) -> Self {
        #[expect(clippy::cast_possible_truncation, reason = "256")]
        let cap = crate::ceiling::PIN_SLOTS as u32;
        let max_allocators = if max_allocators > cap { cap } else { max_allocators };
        Self { max_allocators, ..self }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What a pin declares that limits the allocators created for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PinConstraints {
    /// Frames must be non-paged: the pin processes at DISPATCH_LEVEL
    /// (`KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING`) or has AVStream generate scatter/gather mappings
    /// (`KSPIN_FLAG_GENERATE_MAPPINGS`).
    pub nonpaged_only: bool,
    /// The largest frame the pin's framing allows: the largest `PhysicalRange.MaxFrameSize` of
    /// its items, or `None` when the pin has no framing or an item takes any size.
    pub max_frame_size: Option<u32>,
}

impl PinConstraints {
    /// No constraint: a pool a driver builds for itself, or a pin without flags and framing.
    pub const NONE: Self = Self { nonpaged_only: false, max_frame_size: None };

    /// The same constraints with `nonpaged_only` set.
    #[must_use]
    pub const fn with_nonpaged_only(self, nonpaged_only: bool) -> Self {
        Self { nonpaged_only, ..self }
    }

    /// The same constraints with another largest frame size.
    #[must_use]
    pub const fn with_max_frame_size(self, max_frame_size: Option<u32>) -> Self {
        Self { max_frame_size, ..self }
    }

    /// The constraints of a pin with these `KSPIN_FLAG_*` flags and this framing.
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub fn from_declaration(flags: u32, framing: Option<&FramingExView<'_>>) -> Self {
        let nonpaged =
            ks_sys::KSPIN_FLAG_DISPATCH_LEVEL_PROCESSING | ks_sys::KSPIN_FLAG_GENERATE_MAPPINGS;
        Self {
            nonpaged_only: flags & nonpaged != 0,
            max_frame_size: framing.and_then(physical_maximum),
        }
    }

    /// The constraints of the pin an allocator is created for, read from its descriptor
    /// (`Flags` and `AllocatorFraming`); [`NONE`](Self::NONE) for a NULL pin or descriptor.
    ///
    /// # Safety
    ///
    /// `pin` is NULL or points at a live `KSPIN` whose descriptor (if any) and its
    /// `AllocatorFraming` (if any) are valid for the call: what AVStream passes to
    /// `InitializeAllocator`.
    ///
    /// # IRQL
    ///
    /// Any, as long as the descriptor is resident (descriptors are non-paged data).
    #[must_use]
    pub unsafe fn from_pin(pin: *const ks_sys::KSPIN) -> Self {
        if pin.is_null() {
            return Self::NONE;
        }
        // SAFETY: a live pin (this function's contract).
        let descriptor = unsafe { crate::pin::descriptor(pin) };
        if descriptor.is_null() {
            return Self::NONE;
        }
        // SAFETY: the pin's descriptor is live (this function's contract).
        let flags = unsafe { crate::pin::flags(descriptor) };
        // SAFETY: as above.
        let framing = unsafe { crate::pin::allocator_framing(descriptor) };
        // SAFETY: AllocatorFraming is NULL or a valid framing of the count it states (what
        // AVStream itself relies on), unchanged during the call.
        let framing = unsafe { FramingExView::from_raw(framing) };
        Self::from_declaration(flags, framing.as_ref())
    }
}

/// The largest physical frame size of a framing, `None` if an item takes any size.
fn physical_maximum(framing: &FramingExView<'_>) -> Option<u32> {
    framing
        .items()
        .map(|item| item.physical_range.max_frame_size)
        .try_fold(0, |largest, max| (max != u32::MAX).then_some(largest.max(max)))
}

/// Why an allocator request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestError {
    /// The framing breaks an allocator-request rule (specification 7.4 (B)).
    Invalid(Finding),
    /// Paged frames for a pin whose frames must be non-paged.
    PagedForDispatchPin {
        /// The pool type asked for.
        pool_type: PoolType,
    },
    /// A frame larger than the pin's framing allows.
    FrameTooLarge {
        /// The frame size asked for.
        frame_size: u32,
        /// The pin's largest physical frame size.
        pin_maximum: u32,
    },
    /// `Frames = 0` ("no cap") and the budget gives uncapped requests no frames
    /// ([`PoolConfig::uncapped_frames`] is 0: the driver refuses them).
    UncappedRefused,
    /// More frames than the budget allows.
    TooManyFrames {
        /// The frames asked for.
        frames: u32,
        /// [`PoolConfig::max_frames`].
        budget: u32,
    },
    /// More frame memory than the budget allows.
    TooManyBytes {
        /// Frames times the aligned frame size.
        bytes: u64,
        /// [`PoolConfig::max_bytes`], at most [`MAX_POOL_BYTES`].
        budget: usize,
    },
    /// The driver has as many allocators alive as its budget allows.
    TooManyAllocators {
        /// Allocators alive (retired ones included).
        live: u32,
        /// [`PoolConfig::max_allocators`].
        budget: u32,
    },
    /// The pin has as many allocators alive as the budget allows.
    TooManyAllocatorsOnPin {
        /// Allocators alive for the pin.
        live: u32,
        /// [`PoolConfig::max_allocators_per_pin`].
        budget: u32,
    },
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Invalid(finding) => write!(f, "not a valid allocator request: {finding}"),
            Self::PagedForDispatchPin { pool_type } => write!(
                f,
                "PoolType {pool_type} is paged, but the pin processes at DISPATCH_LEVEL or \
                 generates mappings, so its frames must be non-paged"
            ),
            Self::FrameTooLarge { frame_size, pin_maximum } => write!(
                f,
                "FrameSize {frame_size} exceeds the pin framing's largest physical frame size \
                 {pin_maximum}"
            ),
            Self::UncappedRefused => {
                f.write_str("Frames 0 (no cap) is refused: the allocator budget gives it no frames")
            }
            Self::TooManyFrames { frames, budget } => {
                write!(f, "Frames {frames} exceeds the allocator budget of {budget} frames")
            }
            Self::TooManyBytes { bytes, budget } => {
                write!(f, "{bytes} bytes of frames exceed the allocator budget of {budget} bytes")
            }
            Self::TooManyAllocators { live, budget } => write!(
                f,
                "the driver has {live} allocators alive, its budget's ceiling is {budget}"
            ),
            Self::TooManyAllocatorsOnPin { live, budget } => write!(
                f,
                "the pin has {live} allocators alive, the budget's ceiling per pin is {budget}"
            ),
        }
    }
}

impl core::error::Error for RequestError {}

impl From<RequestError> for Error {
    /// Malformed or pin-violating requests are `STATUS_INVALID_PARAMETER`; requests beyond the
    /// budget are `STATUS_INSUFFICIENT_RESOURCES`.
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::Invalid(_)
            | RequestError::PagedForDispatchPin { .. }
            | RequestError::FrameTooLarge { .. } => Self::INVALID_PARAMETER,
            RequestError::UncappedRefused
            | RequestError::TooManyFrames { .. }
            | RequestError::TooManyBytes { .. }
            | RequestError::TooManyAllocators { .. }
            | RequestError::TooManyAllocatorsOnPin { .. } => Self::INSUFFICIENT_RESOURCES,
        }
    }
}

/// An allocator create request that has passed every check, with the pool's shape resolved.
///
/// # Invariants
///
/// - `framing` passes specification 7.4 (B) leniently ([`LegacyRole::RequestLenient`]), so its
///   `FrameSize >= 1` and its `FileAlignment` is a mask `2^k - 1 <= 0xFFF`;
/// - its pool type is non-paged when the pin requires non-paged frames, and its frame size is at
///   most the pin's largest physical frame size when it states one;
/// - `1 <= frames <= budget.max_frames`: the framing's `Frames`, or the budget's uncapped count
///   for 0;
/// - `stride` is the frame size rounded up to the alignment, at least 2, and `divider` divides
///   by it; `frames * stride <= budget.max_bytes <= MAX_POOL_BYTES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AllocatorRequest {
    framing: Framing,
    frames: u32,
    stride: usize,
    divider: ExactDivider,
    owner: usize,
}

/// Rounds `value` up to a multiple of `mask + 1` (a power of two). `value + mask` fits in 64
/// bits for 32-bit inputs.
const fn align_up(value: u64, mask: u64) -> u64 {
    (value + mask) & !mask
}

impl AllocatorRequest {
    /// Checks `framing` (what `InitializeAllocator` receives) against the pin it is for and the
    /// budget, and resolves the pool's frame count, stride and size.
    ///
    /// # Errors
    ///
    /// The first check that fails, in the order of the module documentation; see
    /// [`RequestError`] for the statuses.
    ///
    /// # IRQL
    ///
    /// Any (pure computation).
    pub fn new(
        framing: &Framing,
        pin: &PinConstraints,
        budget: &PoolConfig,
    ) -> Result<Self, RequestError> {
        let summary = framing.summary(LegacyRole::RequestLenient);
        if let Some(finding) = summary.first_error {
            return Err(RequestError::Invalid(finding));
        }
        let paged = framing.pool_type.is_paged();
        if paged && pin.nonpaged_only {
            return Err(RequestError::PagedForDispatchPin { pool_type: framing.pool_type });
        }
        if let Some(pin_maximum) = pin.max_frame_size.filter(|max| framing.frame_size > *max) {
            return Err(RequestError::FrameTooLarge {
                frame_size: framing.frame_size,
                pin_maximum,
            });
        }
        let frames = if framing.frames == 0 { budget.uncapped_frames } else { framing.frames };
        if frames == 0 {
            return Err(RequestError::UncappedRefused);
        }
        if frames > budget.max_frames {
            return Err(RequestError::TooManyFrames { frames, budget: budget.max_frames });
        }
        // A stride of at least 2 keeps the exact divider's magic in 64 bits; a 1-byte frame
        // simply gets a spare byte.
        let stride =
            align_up(u64::from(framing.frame_size), u64::from(framing.file_alignment)).max(2);
        let bytes = u64::from(frames) * stride;
        let max_bytes = budget.max_bytes.min(MAX_POOL_BYTES);
        if bytes > max_bytes as u64 {
            return Err(RequestError::TooManyBytes { bytes, budget: max_bytes });
        }
        // NO-OVERFLOW: 2 <= stride <= bytes <= MAX_POOL_BYTES = u32::MAX, as frames >= 1.
        #[expect(clippy::cast_possible_truncation, reason = "see NO-OVERFLOW above")]
        let stride = stride as u32;
        // INVARIANT: each check above establishes one line of the type's invariants.
        Ok(Self {
            framing: *framing,
            frames,
            stride: stride as usize,
            divider: ExactDivider::new(stride),
            owner: 0,
        })
    }

    /// The same request, recording the object it serves (the `KSPIN`, for an AVStream pin
    /// allocator) for diagnostics: pool reports name it.
    #[must_use]
    pub const fn with_owner(self, owner: usize) -> Self {
        Self { owner, ..self }
    }

    /// The framing as received.
    #[must_use]
    pub const fn framing(&self) -> Framing {
        self.framing
    }

    /// Frames the pool has: the framing's `Frames`, or the budget's count for an uncapped
    /// request. At least 1.
    #[must_use]
    pub const fn frames(&self) -> u32 {
        self.frames
    }

    /// Whether the framing asked for no cap (`Frames = 0`).
    #[must_use]
    pub const fn is_uncapped(&self) -> bool {
        self.framing.frames == 0
    }

    /// Bytes of each frame a consumer may use. At least 1.
    #[must_use]
    pub const fn frame_size(&self) -> u32 {
        self.framing.frame_size
    }

    /// The alignment mask every frame honours (`FileAlignment`, at most `PAGE_SIZE - 1`).
    #[must_use]
    pub const fn align_mask(&self) -> u32 {
        self.framing.file_alignment
    }

    /// Distance between consecutive frames: the frame size rounded up to the alignment (at
    /// least 2).
    #[must_use]
    pub const fn stride(&self) -> usize {
        self.stride
    }

    /// Bytes of frame memory: `frames() * stride()`, within the budget.
    #[must_use]
    pub const fn frame_bytes(&self) -> usize {
        self.frames as usize * self.stride
    }

    /// Whether the frames are paged pool (`PagedPool`, `PagedPoolCacheAligned`).
    #[must_use]
    pub const fn is_paged(&self) -> bool {
        self.framing.pool_type.is_paged()
    }

    /// The create options (`OptionsFlags`, unknown bits retained).
    #[must_use]
    pub const fn options(&self) -> OptionFlags {
        self.framing.options()
    }

    /// The object the allocator serves, 0 if not recorded.
    #[must_use]
    pub const fn owner(&self) -> usize {
        self.owner
    }

    pub(crate) const fn divider(&self) -> ExactDivider {
        self.divider
    }
}
