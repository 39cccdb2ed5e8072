//! What a pool reports: bad frees and its counters.

use core::fmt;

/// A free that did not free anything; the pool is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BadFree {
    /// The address is not inside any frame of this pool.
    Foreign {
        /// The address.
        address: usize,
    },
    /// The address is inside a frame of this pool but not at its start.
    Interior {
        /// The frame.
        frame: u32,
        /// Bytes past the frame's start.
        offset: usize,
    },
    /// The frame is already free.
    Double {
        /// The frame.
        frame: u32,
    },
}

impl fmt::Display for BadFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Foreign { address } => {
                write!(f, "free of {address:#x}, which is not a frame of this pool")
            }
            Self::Interior { frame, offset } => {
                write!(f, "free of an address {offset} bytes into frame {frame} (not its start)")
            }
            Self::Double { frame } => write!(f, "double free of frame {frame}"),
        }
    }
}

/// Bad frees by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BadFreeCounts {
    /// Pointers that are not frames of the pool.
    pub foreign: u64,
    /// Pointers into the middle of a frame.
    pub interior: u64,
    /// Frames freed while already free.
    pub double: u64,
}

impl BadFreeCounts {
    /// All bad frees.
    #[must_use]
    pub const fn total(&self) -> u64 {
        self.foreign + self.interior + self.double
    }
}

/// A snapshot of a pool's counters, read without locks.
///
/// Each value is read atomically; under concurrent Allocate and Free the values may come from
/// slightly different instants (a frame can be counted as allocated but not yet as
/// outstanding). At rest they are exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Frames the pool has, all allocated when it was created.
    pub frames_total: u32,
    /// Frames free now.
    pub frames_free: u32,
    /// Frames handed out now.
    pub frames_outstanding: u32,
    /// Most frames outstanding at once so far: exact when one processor allocates (frames go
    /// lowest-first, so the highest frame handed out + 1 is the peak); for a pool spread over
    /// processors the sum of each shard's peak, an upper bound when several processors
    /// allocate (see [`pool`](crate::pool#shards)). Never more than `frames_total`.
    pub high_water: u32,
    /// Successful allocations.
    pub allocations: u64,
    /// Successful frees.
    pub frees: u64,
    /// Allocations that found no frame.
    pub failed_allocations: u64,
    /// Frees that were rejected.
    pub bad_frees: BadFreeCounts,
}
