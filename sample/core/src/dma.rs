//! The device's DMA: its adapter, registered with AVStream, and its "on-board frame memory",
//! a common buffer the capture pin's allocator carves device-memory frames from.
//!
//! At PnP start the device gets a DMA adapter for a 64-bit scatter/gather bus master
//! (`IoGetDmaAdapter` with its PDO), registers it with AVStream (`KsDeviceRegisterAdapterObject`,
//! so that AVStream builds the `KSMAPPING`s of its `KSPIN_FLAG_GENERATE_MAPPINGS` pin, each up to
//! [`MAX_MAPPING_BYTES`]: a physically contiguous frame is one mapping), and allocates
//! [`COMMON_BUFFER_BYTES`] of common buffer, enough for [`FRAMES`](crate::pin::FRAMES) frames of
//! the largest format at page alignment. The common buffer becomes a [`DeviceRegion`]: pools
//! carve their frames from it, and the region's release routine (run when the device's handle
//! and every pool's are gone) frees the common buffer and gives the adapter back, so memory a
//! frame may still be in is never freed under it. PnP stop and removal drop the device's handle.
//!
//! Every failure unwinds what was made before it.

use core::{ffi::c_void, ptr::NonNull};

use ks_allocator::{Error, PoolBox, Result, pool::DeviceRegion};
use ks_sys::{
    DEVICE_DESCRIPTION, KSDEVICE, KSMAPPING, LARGE_INTEGER, PAGE_SIZE, PDMA_ADAPTER,
    PHYSICAL_ADDRESS,
};

use crate::{POOL_TAG, bus, format::MAX_FRAME_BYTES, ks, pin::FRAMES};

/// Bytes of a page.
const PAGE: usize = PAGE_SIZE as usize;

/// The longest mapping AVStream builds for the capture pin: a whole frame of the largest
/// format, so that a physically contiguous frame is a single mapping.
#[expect(clippy::cast_possible_truncation, reason = "about 2 MiB")]
pub(crate) const MAX_MAPPING_BYTES: u32 = MAX_FRAME_BYTES.next_multiple_of(PAGE) as u32;

/// The common buffer: [`FRAMES`] page-aligned frames of the largest format.
pub(crate) const COMMON_BUFFER_BYTES: usize = FRAMES as usize * MAX_MAPPING_BYTES as usize;

/// Whether the common buffer's memory is cached: DMA is cache-coherent on the platforms
/// Windows runs on (x64, ARM64), and the driver reads back nothing the device wrote.
const CACHE_ENABLED: u8 = 1;

/// What the region's release routine needs to free the common buffer and the adapter.
struct CommonBuffer {
    adapter: PDMA_ADAPTER,
    base: NonNull<u8>,
    logical: u64,
    len: u32,
}

// SAFETY: the adapter and the buffer are kernel objects usable from any thread at PASSIVE_LEVEL.
unsafe impl Send for CommonBuffer {}

/// The device's DMA resources: the region over its common buffer (the device's handle).
pub(crate) struct DeviceDma {
    region: DeviceRegion,
}

impl DeviceDma {
    /// Gets the adapter, registers it, allocates the common buffer and makes it a region.
    /// PASSIVE_LEVEL, from the device's start.
    ///
    /// # Errors
    ///
    /// `INSUFFICIENT_RESOURCES` when there is no adapter, common buffer or pool memory;
    /// `NOT_SUPPORTED` when the system remaps the device's DMA (the simulated device needs
    /// logical addresses to be physical ones, see [`bus`]).
    ///
    /// # Safety
    ///
    /// `device` is a live device in its start callback.
    pub(crate) unsafe fn start(device: *mut KSDEVICE) -> Result<Self> {
        // SAFETY: a live device (this function's contract).
        let pdo = unsafe { ks::physical_device_object(device) };
        // SAFETY: plain data; all zero is a description to fill in field by field (a newer
        // WDK's structure is longer, and its new fields mean "not used" when zero).
        let mut description: DEVICE_DESCRIPTION = unsafe { core::mem::zeroed() };
        description.Version = ks_sys::DEVICE_DESCRIPTION_VERSION2;
        description.Master = 1;
        description.ScatterGather = 1;
        description.Dma32BitAddresses = 1;
        description.Dma64BitAddresses = 1;
        description.InterfaceType = ks_sys::PCIBus;
        description.MaximumLength = MAX_MAPPING_BYTES;
        let mut map_registers = 0;
        // SAFETY: the device's PDO, a description and a ULONG of this frame; PASSIVE_LEVEL.
        let adapter =
            unsafe { ks_sys::IoGetDmaAdapter(pdo, &raw mut description, &raw mut map_registers) };
        if adapter.is_null() {
            report("no DMA adapter (IoGetDmaAdapter)");
            return Err(Error::INSUFFICIENT_RESOURCES);
        }
        #[expect(clippy::cast_possible_truncation, reason = "16 bytes")]
        let stride = size_of::<KSMAPPING>() as u32;
        // SAFETY: a live device and adapter; a table entry is exactly a KSMAPPING.
        unsafe {
            ks_sys::KsDeviceRegisterAdapterObject(
                device,
                adapter.cast(),
                MAX_MAPPING_BYTES,
                stride,
            );
        }
        // SAFETY: a live adapter from IoGetDmaAdapter.
        let buffer = match unsafe { allocate_common_buffer(adapter) } {
            Ok(buffer) => buffer,
            Err(error) => {
                // SAFETY: the adapter from IoGetDmaAdapter, given back once.
                unsafe { put_adapter(adapter) };
                return Err(error);
            }
        };
        let (base, logical, len) = (buffer.base, buffer.logical, buffer.len as usize);
        let context = match PoolBox::new(buffer, POOL_TAG) {
            Ok(context) => PoolBox::into_raw(context),
            Err(buffer) => {
                // SAFETY: the buffer and adapter just made, freed once.
                unsafe { free(&buffer) };
                return Err(Error::INSUFFICIENT_RESOURCES);
            }
        };
        // SAFETY: the common buffer is the region's until `release` frees it; `release` and
        // its context work from any thread at PASSIVE_LEVEL.
        match unsafe { DeviceRegion::new(base, logical, len, release, context.cast()) } {
            Ok(region) => Ok(Self { region }),
            Err(error) => {
                // SAFETY: the context made above, not taken by a region: released once here.
                unsafe { release(context.cast(), base.as_ptr(), logical, len) };
                Err(error)
            }
        }
    }

    /// A handle on the region, for a pool of device-memory frames.
    pub(crate) fn region(&self) -> DeviceRegion {
        self.region.clone()
    }
}

/// Prints a failure of the device's DMA set-up.
fn report(what: &str) {
    ks_allocator::debug_print_as(
        "ks-sample",
        ks_sys::DPFLTR_ERROR_LEVEL,
        format_args!("device start: {what}"),
    );
}

/// Allocates the common buffer and checks the simulated device can reach it. PASSIVE_LEVEL.
///
/// # Safety
///
/// `adapter` is a live adapter from `IoGetDmaAdapter`.
unsafe fn allocate_common_buffer(adapter: PDMA_ADAPTER) -> Result<CommonBuffer> {
    // SAFETY: the caller's contract: a live adapter, whose operations live as long.
    let operations = unsafe { (*adapter).DmaOperations };
    // SAFETY: as above.
    let allocate = unsafe { operations.as_ref() }.and_then(|o| o.AllocateCommonBuffer);
    let Some(allocate) = allocate else {
        report("the DMA adapter has no AllocateCommonBuffer");
        return Err(Error::NOT_SUPPORTED);
    };
    #[expect(clippy::cast_possible_truncation, reason = "about 8 MiB")]
    let len = COMMON_BUFFER_BYTES as u32;
    let mut logical: PHYSICAL_ADDRESS = LARGE_INTEGER { QuadPart: 0 };
    // SAFETY: a live adapter and a PHYSICAL_ADDRESS of this frame; PASSIVE_LEVEL.
    let memory = unsafe { allocate(adapter, len, &raw mut logical, CACHE_ENABLED) };
    let Some(base) = NonNull::new(memory.cast::<u8>()) else {
        report("no common buffer (AllocateCommonBuffer)");
        return Err(Error::INSUFFICIENT_RESOURCES);
    };
    // SAFETY: every bit pattern of the union is a valid i64.
    let logical = u64::try_from(unsafe { logical.QuadPart }).unwrap_or(0);
    let buffer = CommonBuffer { adapter, base, logical, len };
    if !bus::logical_is_physical(memory, logical) {
        report("the device's DMA is remapped: the simulated device cannot reach its memory");
        // SAFETY: the buffer just allocated; the adapter stays with the caller.
        unsafe { free_buffer(&buffer) };
        return Err(Error::NOT_SUPPORTED);
    }
    Ok(buffer)
}

/// Frees the common buffer. PASSIVE_LEVEL.
///
/// # Safety
///
/// `buffer` is a live common buffer of its adapter, freed once.
unsafe fn free_buffer(buffer: &CommonBuffer) {
    // SAFETY: the caller's contract: a live adapter.
    let operations = unsafe { (*buffer.adapter).DmaOperations };
    // SAFETY: as above.
    if let Some(free) = unsafe { operations.as_ref() }.and_then(|o| o.FreeCommonBuffer) {
        let logical = LARGE_INTEGER { QuadPart: i64::try_from(buffer.logical).unwrap_or(0) };
        // SAFETY: exactly the arguments of its allocation; PASSIVE_LEVEL.
        unsafe {
            free(buffer.adapter, buffer.len, logical, buffer.base.as_ptr().cast(), CACHE_ENABLED);
        };
    }
}

/// Gives an adapter back. PASSIVE_LEVEL.
///
/// # Safety
///
/// `adapter` is a live adapter from `IoGetDmaAdapter`, given back once, with nothing of it in
/// use.
unsafe fn put_adapter(adapter: PDMA_ADAPTER) {
    // SAFETY: the caller's contract.
    let operations = unsafe { (*adapter).DmaOperations };
    // SAFETY: as above.
    if let Some(put) = unsafe { operations.as_ref() }.and_then(|o| o.PutDmaAdapter) {
        // SAFETY: as above.
        unsafe { put(adapter) };
    }
}

/// Frees the common buffer, then gives the adapter back. PASSIVE_LEVEL.
///
/// # Safety
///
/// As for [`free_buffer`] and [`put_adapter`].
unsafe fn free(buffer: &CommonBuffer) {
    // SAFETY: the caller's contract.
    unsafe { free_buffer(buffer) };
    // SAFETY: the caller's contract; its common buffer is gone.
    unsafe { put_adapter(buffer.adapter) };
}

/// The region's release routine: the last handle is gone, no frame is in the common buffer.
/// PASSIVE_LEVEL.
///
/// # Safety
///
/// Called once, with the `CommonBuffer` context `DeviceDma::start` made.
unsafe extern "C" fn release(context: *mut c_void, _base: *mut u8, _device: u64, _len: usize) {
    if let Some(context) = NonNull::new(context.cast::<CommonBuffer>()) {
        // SAFETY: the PoolBox `start` made with POOL_TAG, taken back once.
        let buffer = unsafe { PoolBox::from_raw_with_tag(context, POOL_TAG) };
        // SAFETY: a live common buffer and adapter, freed once, no frame in them.
        unsafe { free(&buffer) };
    }
}
