//! The simulated device's side of the bus: what a bus-master DMA engine does with the logical
//! addresses it was programmed with.
//!
//! A real device writes memory by itself; the driver never touches a frame's bytes. This
//! device is simulated by the driver, so its DMA engine reaches a logical address through
//! `MmGetVirtualForPhysical`, one page at a time, and only through the addresses it was
//! programmed with (the frame's `KSMAPPING`s), never through the frame's virtual address. That is
//! valid where a device's logical addresses are physical addresses: no DMA remapping (IOMMU)
//! for the device, which the device checks at start on its common buffer
//! ([`logical_is_physical`]). On the user-mode host the same routine is the simulated bus,
//! which refuses, as violations, writes outside the mappings programmed for the pin's frames.

use ks_sys::{LARGE_INTEGER, PAGE_SIZE, PVOID};

/// Bytes of a page.
const PAGE: u64 = PAGE_SIZE as u64;

/// One scatter/gather element the device was programmed with: a logical address and a length.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Element {
    /// The logical (bus) address.
    pub(crate) address: u64,
    /// Bytes from there.
    pub(crate) bytes: u32,
}

impl Element {
    /// Bytes of an element in a table.
    pub(crate) const SIZE: usize = 12;

    /// Stores the element at the start of `out` (little-endian address, then length).
    pub(crate) fn store(self, out: &mut [u8]) {
        if let Some(out) = out.get_mut(..Self::SIZE) {
            let (address, bytes) = out.split_at_mut(8);
            address.copy_from_slice(&self.address.to_le_bytes());
            bytes.copy_from_slice(&self.bytes.to_le_bytes());
        }
    }

    /// The element stored at the start of `bytes`, if it holds one.
    pub(crate) fn load(bytes: &[u8]) -> Option<Self> {
        let address = u64::from_le_bytes(*bytes.first_chunk::<8>()?);
        let length = u32::from_le_bytes(*bytes.get(8..)?.first_chunk::<4>()?);
        Some(Self { address, bytes: length })
    }
}

/// Elements stored back to back ([`Element::store`]): a device's scatter/gather table.
#[derive(Clone, Copy)]
pub(crate) struct Table<'a>(pub(crate) &'a [u8]);

impl Table<'_> {
    /// The elements, in order.
    pub(crate) fn iter(self) -> impl Iterator<Item = Element> {
        self.0.chunks_exact(Element::SIZE).filter_map(Element::load)
    }
}

/// Why a DMA transfer did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BusError {
    /// The bus reached no memory at this logical address.
    Unreachable(u64),
    /// The transfer ran past the programmed elements.
    PastTheEnd,
}

/// Writes `bytes` at logical address `address`, page by page. IRQL <= DISPATCH_LEVEL.
pub(crate) fn write(address: u64, bytes: &[u8]) -> Result<(), BusError> {
    let mut done = 0;
    while done < bytes.len() {
        let at = address + done as u64;
        let in_page = usize::try_from(PAGE - at % PAGE).unwrap_or(usize::MAX);
        let chunk = in_page.min(bytes.len() - done);
        let logical =
            LARGE_INTEGER { QuadPart: i64::try_from(at).map_err(|_| BusError::Unreachable(at))? };
        // SAFETY: a physical address by value; the routine maps it or returns NULL.
        let target: PVOID = unsafe { ks_sys::MmGetVirtualForPhysical(logical) };
        if target.is_null() {
            return Err(BusError::Unreachable(at));
        }
        let source = bytes.get(done..done + chunk).ok_or(BusError::PastTheEnd)?;
        // SAFETY: `target` maps the page holding `at`, of which `chunk` bytes remain; the
        // source is the driver's own buffer, which does not overlap device memory.
        unsafe { core::ptr::copy_nonoverlapping(source.as_ptr(), target.cast::<u8>(), chunk) };
        done += chunk;
    }
    Ok(())
}

/// Writes `bytes` at byte `offset` of the transfer the elements describe (the frame's bytes, in
/// order). IRQL <= DISPATCH_LEVEL.
pub(crate) fn write_at(elements: Table<'_>, offset: usize, bytes: &[u8]) -> Result<(), BusError> {
    let mut start = 0_usize;
    let mut done = 0_usize;
    for element in elements.iter() {
        let len = element.bytes as usize;
        let end = start + len;
        let at = offset + done;
        if at < end && done < bytes.len() {
            let within = at - start;
            let chunk = (len - within).min(bytes.len() - done);
            let source = bytes.get(done..done + chunk).ok_or(BusError::PastTheEnd)?;
            write(element.address + within as u64, source)?;
            done += chunk;
        }
        if done == bytes.len() {
            return Ok(());
        }
        start = end;
    }
    Err(BusError::PastTheEnd)
}

/// Whether the memory at `virtual_address` is at logical address `logical` on the bus: true
/// where the device's DMA is not remapped, which the simulated device needs (module
/// documentation). Any IRQL.
pub(crate) fn logical_is_physical(virtual_address: PVOID, logical: u64) -> bool {
    // SAFETY: a non-paged address of the driver's own common buffer.
    let physical = unsafe { ks_sys::MmGetPhysicalAddress(virtual_address) };
    // SAFETY: every bit pattern of the union is a valid i64.
    u64::try_from(unsafe { physical.QuadPart }).is_ok_and(|physical| physical == logical)
}
