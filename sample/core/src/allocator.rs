//! The capture pin's allocator (`KSPIN_DISPATCH.Allocator`): frames in the device's memory or
//! in system memory, as the connection's framing asks.
//!
//! AVStream creates it only when the pipe's plan makes the pin the owner. The framing
//! `InitializeAllocator` receives says which of the pin's framing items the plan chose: without
//! `KSALLOCATOR_OPTIONF_SYSTEM_MEMORY` it is item 0, frames in the device's memory, carved from
//! the device's common buffer ([`DeviceRegion`]); with it, item 1, frames in non-paged system
//! memory. Either way a [`FramePool`] within [`CaptureBudget`], which never calls the system pool
//! after its creation.

use core::ptr::NonNull;

use ks_allocator::{
    AllocatorRequest, Budget, Error, FramePool, Outstanding, PinAllocator, PoolConfig, Result,
    framing::OptionFlags,
    pool::{DeviceRegion, SystemMemory},
};
use ks_sys::KSPIN;

use crate::{CaptureBudget, device};

/// The capture pin's allocator: a pool over the device's memory or over system memory.
pub enum CaptureAllocator {
    /// Frames in the device's common buffer.
    Device(FramePool<DeviceRegion>),
    /// Frames in non-paged system memory.
    System(FramePool<SystemMemory>),
}

impl CaptureAllocator {
    /// Whether the frames are in the device's memory.
    #[must_use]
    pub fn in_device_memory(&self) -> bool {
        matches!(self, Self::Device(_))
    }

    /// The pool's statistics.
    #[must_use]
    pub fn stats(&self) -> ks_allocator::PoolStats {
        match self {
            Self::Device(pool) => pool.stats(),
            Self::System(pool) => pool.stats(),
        }
    }
}

impl PinAllocator for CaptureAllocator {
    const BUDGET: PoolConfig = CaptureBudget::CONFIG;

    fn initialize(request: &AllocatorRequest) -> Result<Self> {
        if OptionFlags::from_bits_retain(request.framing().flags)
            .contains(OptionFlags::SYSTEM_MEMORY)
        {
            let pool = FramePool::new(request, SystemMemory::for_request(request))?;
            return Ok(Self::System(pool));
        }
        let pin = core::ptr::with_exposed_provenance_mut::<KSPIN>(request.owner());
        // SAFETY: the owner of a pin allocator's request is its live pin (InitializeAllocator is
        // called for it, at PASSIVE_LEVEL); KsGetDevice takes any AVStream object.
        let device = unsafe { ks_sys::KsGetDevice(pin.cast()) };
        if device.is_null() {
            return Err(Error::INVALID_DEVICE_STATE);
        }
        // SAFETY: the pin's device is live while the pin is; its Add succeeded.
        let context = unsafe { device::context(device) }.ok_or(Error::INVALID_DEVICE_STATE)?;
        // SAFETY: as above; PASSIVE_LEVEL.
        let region = unsafe { context.region(device) }.ok_or(Error::INVALID_DEVICE_STATE)?;
        Ok(Self::Device(FramePool::new(request, region)?))
    }

    fn allocate(&self) -> Option<NonNull<u8>> {
        match self {
            Self::Device(pool) => pool.allocate(),
            Self::System(pool) => pool.allocate(),
        }
    }

    fn free(&self, frame: NonNull<u8>) {
        // A bad free is counted and reported by the pool, which stays intact.
        let _ = match self {
            Self::Device(pool) => pool.free(frame),
            Self::System(pool) => pool.free(frame),
        };
    }

    fn outstanding(&self) -> Outstanding {
        let (stats, stride) = match self {
            Self::Device(pool) => (pool.stats(), pool.stride()),
            Self::System(pool) => (pool.stats(), pool.stride()),
        };
        Outstanding {
            frames: stats.frames_outstanding,
            bytes: stats.frames_total as usize * stride,
        }
    }

    unsafe fn reclaim(&self) {
        match self {
            // SAFETY: the caller's contract: no consumer uses a frame any more.
            Self::Device(pool) => unsafe { pool.reclaim_outstanding() },
            // SAFETY: as above.
            Self::System(pool) => unsafe { pool.reclaim_outstanding() },
        }
    }
}
