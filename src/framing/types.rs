//! GUIDs, memory types, bus types and pool types, with readable names.

use core::fmt;

/// A GUID with value semantics, laid out exactly like `ks_sys::GUID`.
///
/// `Guid` compares, hashes and prints (`4A6D5FC4-7895-11D1-B069-00A0C9062802`); convert with
/// [`Guid::from_raw`] and [`Guid::to_raw`] at the FFI boundary.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid {
    data1: u32,
    data2: u16,
    data3: u16,
    data4: [u8; 8],
}

const _: () = {
    assert!(size_of::<Guid>() == size_of::<ks_sys::GUID>());
    assert!(align_of::<Guid>() == align_of::<ks_sys::GUID>());
};

impl Guid {
    /// The null GUID (`GUID_NULL`).
    pub const NULL: Self = Self::from_u128(0);

    /// The GUID whose canonical string form is the hex digits of `value`.
    #[must_use]
    #[expect(clippy::cast_possible_truncation, reason = "each field takes its own bits")]
    pub const fn from_u128(value: u128) -> Self {
        Self {
            data1: (value >> 96) as u32,
            data2: (value >> 80) as u16,
            data3: (value >> 64) as u16,
            data4: (value as u64).to_be_bytes(),
        }
    }

    /// The canonical string form's hex digits as a number.
    #[must_use]
    pub const fn to_u128(self) -> u128 {
        ((self.data1 as u128) << 96)
            | ((self.data2 as u128) << 80)
            | ((self.data3 as u128) << 64)
            | (u64::from_be_bytes(self.data4) as u128)
    }

    /// Copies a raw `GUID`.
    #[must_use]
    pub const fn from_raw(raw: &ks_sys::GUID) -> Self {
        Self { data1: raw.Data1, data2: raw.Data2, data3: raw.Data3, data4: raw.Data4 }
    }

    /// The raw `GUID`.
    #[must_use]
    pub const fn to_raw(self) -> ks_sys::GUID {
        ks_sys::GUID { Data1: self.data1, Data2: self.data2, Data3: self.data3, Data4: self.data4 }
    }

    /// The GUID as its 16 bytes in memory (Windows byte order: the first three fields little
    /// endian, the last eight bytes as written).
    #[must_use]
    pub const fn from_le_bytes(bytes: [u8; 16]) -> Self {
        let [a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, d2, d3, d4, d5, d6, d7] = bytes;
        Self {
            data1: u32::from_le_bytes([a0, a1, a2, a3]),
            data2: u16::from_le_bytes([b0, b1]),
            data3: u16::from_le_bytes([c0, c1]),
            data4: [d0, d1, d2, d3, d4, d5, d6, d7],
        }
    }

    /// The 16 bytes of the GUID in memory; the inverse of [`Guid::from_le_bytes`].
    #[must_use]
    pub const fn to_le_bytes(self) -> [u8; 16] {
        let [a0, a1, a2, a3] = self.data1.to_le_bytes();
        let [b0, b1] = self.data2.to_le_bytes();
        let [c0, c1] = self.data3.to_le_bytes();
        let [d0, d1, d2, d3, d4, d5, d6, d7] = self.data4;
        [a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, d2, d3, d4, d5, d6, d7]
    }

    /// Whether this is the null GUID.
    #[must_use]
    pub const fn is_null(self) -> bool {
        self.to_u128() == 0
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d4 = self.data4;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            self.data1,
            self.data2,
            self.data3,
            d4[0],
            d4[1],
            d4[2],
            d4[3],
            d4[4],
            d4[5],
            d4[6],
            d4[7]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

macro_rules! named_guid_type {
    (
        $(#[$attr:meta])*
        pub struct $name:ident;
        $( $(#[$cattr:meta])* $const:ident = $raw:path, $short:literal, $c_name:literal; )*
    ) => {
        $(#[$attr])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Guid);

        impl $name {
            $( $(#[$cattr])* pub const $const: Self = Self(Guid::from_raw(&$raw)); )*

            /// The short name of a well-known value (`"KernelNonPaged"`), or `None`.
            ///
            /// # IRQL
            ///
            /// Any (pure computation; buffers must be resident).
            #[must_use]
            pub fn name(self) -> Option<&'static str> {
                $( if self == Self::$const { return Some($short); } )*
                None
            }

            /// The C name of a well-known value (`"KSMEMORY_TYPE_KERNEL_NONPAGED"`), or `None`.
            ///
            /// # IRQL
            ///
            /// Any (pure computation; buffers must be resident).
            #[must_use]
            pub fn c_name(self) -> Option<&'static str> {
                $( if self == Self::$const { return Some($c_name); } )*
                None
            }

            /// Whether this is the GUID_NULL wildcard.
            #[must_use]
            pub const fn is_wildcard(self) -> bool {
                self.0.is_null()
            }
        }

        impl fmt::Display for $name {
            /// The short name of a well-known value, otherwise the GUID.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{{{}}}", self.0),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl From<Guid> for $name {
            fn from(guid: Guid) -> Self {
                Self(guid)
            }
        }
    };
}

named_guid_type! {
    /// The memory a framing item asks for (`KSMEMORY_TYPE_*`). GUID_NULL is a wildcard.
    pub struct MemoryType;
    /// Any memory (`KSMEMORY_TYPE_DONT_CARE`, GUID_NULL).
    DONT_CARE = ks_sys::KSMEMORY_TYPE_DONT_CARE, "DontCare", "KSMEMORY_TYPE_DONT_CARE";
    /// System memory.
    SYSTEM = ks_sys::KSMEMORY_TYPE_SYSTEM, "System", "KSMEMORY_TYPE_SYSTEM";
    /// User-mode memory.
    USER = ks_sys::KSMEMORY_TYPE_USER, "User", "KSMEMORY_TYPE_USER";
    /// Kernel paged pool.
    KERNEL_PAGED = ks_sys::KSMEMORY_TYPE_KERNEL_PAGED, "KernelPaged", "KSMEMORY_TYPE_KERNEL_PAGED";
    /// Kernel non-paged pool.
    KERNEL_NONPAGED = ks_sys::KSMEMORY_TYPE_KERNEL_NONPAGED, "KernelNonPaged", "KSMEMORY_TYPE_KERNEL_NONPAGED";
    /// Device memory of an unspecified kind.
    DEVICE_UNKNOWN = ks_sys::KSMEMORY_TYPE_DEVICE_UNKNOWN, "DeviceUnknown", "KSMEMORY_TYPE_DEVICE_UNKNOWN";
}

impl MemoryType {
    /// Whether frames of this type are pool memory the kernel allocates (system, kernel paged
    /// or kernel non-paged).
    ///
    /// # IRQL
    ///
    /// Any (pure computation; buffers must be resident).
    #[must_use]
    pub fn is_system(self) -> bool {
        self == Self::SYSTEM || self == Self::KERNEL_PAGED || self == Self::KERNEL_NONPAGED
    }
}

named_guid_type! {
    /// The bus that accesses a framing item's memory (`GUID_BUS_TYPE_*`). GUID_NULL is a
    /// wildcard.
    pub struct BusType;
    /// Any bus (`KS_TYPE_DONT_CARE`, GUID_NULL).
    DONT_CARE = ks_sys::KS_TYPE_DONT_CARE, "DontCare", "KS_TYPE_DONT_CARE";
    /// PCI.
    PCI = ks_sys::GUID_BUS_TYPE_PCI, "Pci", "GUID_BUS_TYPE_PCI";
    /// USB.
    USB = ks_sys::GUID_BUS_TYPE_USB, "Usb", "GUID_BUS_TYPE_USB";
    /// IEEE 1394.
    IEEE1394 = ks_sys::GUID_BUS_TYPE_1394, "Ieee1394", "GUID_BUS_TYPE_1394";
    /// AV/C.
    AVC = ks_sys::GUID_BUS_TYPE_AVC, "Avc", "GUID_BUS_TYPE_AVC";
}

/// A `POOL_TYPE` value as it appears in `KSALLOCATOR_FRAMING.PoolType`.
///
/// An integer newtype: any value read from a buffer is representable; [`PoolType::name`] says
/// whether it is a known one.
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolType(pub i32);

impl PoolType {
    /// `NonPagedPool`.
    pub const NON_PAGED: Self = Self(ks_sys::NonPagedPool);
    /// `PagedPool`.
    pub const PAGED: Self = Self(ks_sys::PagedPool);
    /// `NonPagedPoolCacheAligned`.
    pub const NON_PAGED_CACHE_ALIGNED: Self = Self(ks_sys::NonPagedPoolCacheAligned);
    /// `PagedPoolCacheAligned`.
    pub const PAGED_CACHE_ALIGNED: Self = Self(ks_sys::PagedPoolCacheAligned);
    /// `NonPagedPoolNx`.
    pub const NON_PAGED_NX: Self = Self(ks_sys::NonPagedPoolNx);
    /// `NonPagedPoolNxCacheAligned`.
    pub const NON_PAGED_NX_CACHE_ALIGNED: Self = Self(ks_sys::NonPagedPoolNxCacheAligned);

    /// The C name of a known pool type.
    #[must_use]
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            ks_sys::NonPagedPool => "NonPagedPool",
            ks_sys::PagedPool => "PagedPool",
            ks_sys::NonPagedPoolMustSucceed => "NonPagedPoolMustSucceed",
            ks_sys::NonPagedPoolCacheAligned => "NonPagedPoolCacheAligned",
            ks_sys::PagedPoolCacheAligned => "PagedPoolCacheAligned",
            ks_sys::NonPagedPoolNx => "NonPagedPoolNx",
            ks_sys::NonPagedPoolNxCacheAligned => "NonPagedPoolNxCacheAligned",
            _ => return None,
        })
    }

    /// Whether memory of this pool type may be paged out (unusable at DISPATCH_LEVEL).
    #[must_use]
    pub const fn is_paged(self) -> bool {
        self.0 == ks_sys::PagedPool || self.0 == ks_sys::PagedPoolCacheAligned
    }
}

impl fmt::Display for PoolType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "POOL_TYPE({})", self.0),
        }
    }
}

impl fmt::Debug for PoolType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolType({self})")
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::{format, string::ToString};

    use super::*;

    #[test]
    fn guids_print_in_canonical_form_and_round_trip() {
        let guid = Guid::from_u128(0x4A6D_5FC4_7895_11D1_B069_00A0_C906_2802);
        assert_eq!(guid.to_string(), "4A6D5FC4-7895-11D1-B069-00A0C9062802");
        assert_eq!(format!("{guid:?}"), "{4A6D5FC4-7895-11D1-B069-00A0C9062802}");
        assert_eq!(Guid::from_raw(&guid.to_raw()), guid);
        assert_eq!(Guid::from_le_bytes(guid.to_le_bytes()), guid);
        assert_eq!(guid.to_le_bytes()[..4], [0xC4, 0x5F, 0x6D, 0x4A]);
        assert_eq!(guid, Guid::from_raw(&ks_sys::KSMEMORY_TYPE_KERNEL_NONPAGED));
    }

    #[test]
    fn memory_and_bus_types_have_readable_names() {
        assert_eq!(MemoryType::KERNEL_NONPAGED.to_string(), "KernelNonPaged");
        assert_eq!(MemoryType::KERNEL_NONPAGED.c_name(), Some("KSMEMORY_TYPE_KERNEL_NONPAGED"));
        assert_eq!(MemoryType::DONT_CARE.to_string(), "DontCare");
        assert!(MemoryType::DONT_CARE.is_wildcard());
        let vendor = MemoryType(Guid::from_u128(0x1234));
        assert_eq!(vendor.name(), None);
        assert_eq!(vendor.to_string(), "{00000000-0000-0000-0000-000000001234}");
        assert_eq!(BusType::USB.to_string(), "Usb");
        assert!(MemoryType::KERNEL_PAGED.is_system() && !MemoryType::USER.is_system());
    }

    #[test]
    fn pool_types_name_known_values_and_keep_unknown_ones() {
        assert_eq!(PoolType::NON_PAGED_NX.to_string(), "NonPagedPoolNx");
        assert_eq!(PoolType(77).to_string(), "POOL_TYPE(77)");
        assert!(PoolType::PAGED.is_paged() && !PoolType::NON_PAGED.is_paged());
    }
}
