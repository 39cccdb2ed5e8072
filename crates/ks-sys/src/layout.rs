//! Self-description of the ABI that this crate defines.
//!
//! Every KS structure, constant, GUID, callback type and import in ks-sys is declared through one
//! of the macros in this module. Besides the item itself each macro emits:
//!
//! - for structures, compile-time assertions of the size, alignment and every field offset
//!   written next to the field (a wrong number is a build error), and a [`TypeLayout`] record;
//! - for constants, GUIDs, callback types and imports, a record of the value or prototype.
//!
//! The records are collected in [`TYPES`](crate::TYPES), [`CONSTANTS`](crate::CONSTANTS),
//! [`GUIDS`](crate::GUIDS), [`CALLBACKS`](crate::CALLBACKS) and [`IMPORTS`](crate::IMPORTS). The
//! conformance test (`tests/abi.rs`) compares them with an independent record of the x64 KS
//! headers, so a binding cannot drift from the C layout without a failing test.

/// Size, alignment and field offsets of one `#[repr(C)]` type as ks-sys defines it.
#[derive(Debug, Clone, Copy)]
pub struct TypeLayout {
    /// C name of the type.
    pub name: &'static str,
    /// `size_of` in bytes.
    pub size: usize,
    /// `align_of` in bytes.
    pub align: usize,
    /// Every field, in declaration order.
    pub fields: &'static [FieldLayout],
}

/// One field of a [`TypeLayout`].
#[derive(Debug, Clone, Copy)]
pub struct FieldLayout {
    /// C name of the field.
    pub name: &'static str,
    /// `offset_of` in bytes.
    pub offset: usize,
    /// `size_of` of the field's type in bytes.
    pub size: usize,
}

/// Implemented by every structure declared with `ks_struct!`.
pub trait HasLayout {
    /// The layout record of the type.
    const LAYOUT: TypeLayout;
}

/// An integer constant and its value, widened without loss.
#[derive(Debug, Clone, Copy)]
pub struct ConstValue {
    /// C name of the constant.
    pub name: &'static str,
    /// Its value.
    pub value: i128,
}

/// A GUID constant as the 128-bit number of its canonical string form.
#[derive(Debug, Clone, Copy)]
pub struct GuidValue {
    /// C name of the GUID.
    pub name: &'static str,
    /// `0xDDDDDDDD_DDDD_DDDD_DDDD_DDDDDDDDDDDD` for `{DDDDDDDD-DDDD-DDDD-DDDD-DDDDDDDDDDDD}`.
    pub value: u128,
}

/// Parameter list of a callback type or an imported routine.
#[derive(Debug, Clone, Copy)]
pub struct Prototype {
    /// C name of the typedef or routine.
    pub name: &'static str,
    /// Parameters in order.
    pub params: &'static [ParamLayout],
    /// Size of the return type; 0 for `void`.
    pub ret_size: usize,
}

/// One parameter of a [`Prototype`].
#[derive(Debug, Clone, Copy)]
pub struct ParamLayout {
    /// C name of the parameter.
    pub name: &'static str,
    /// Size of its type in bytes.
    pub size: usize,
}

/// Builds a `GUID` from the 128-bit number of its canonical string form.
///
/// `guid(0x4A6D5FC4_7895_11D1_B069_00A0C9062802)` is `{4A6D5FC4-7895-11D1-B069-00A0C9062802}`.
#[must_use]
#[expect(clippy::cast_possible_truncation, reason = "each field takes its own bits of the number")]
pub const fn guid(value: u128) -> crate::GUID {
    crate::GUID {
        Data1: (value >> 96) as u32,
        Data2: (value >> 80) as u16,
        Data3: (value >> 64) as u16,
        Data4: (value as u64).to_be_bytes(),
    }
}

/// The 128-bit number of a `GUID`'s canonical string form; the inverse of [`guid`].
#[must_use]
pub const fn guid_value(guid: &crate::GUID) -> u128 {
    ((guid.Data1 as u128) << 96)
        | ((guid.Data2 as u128) << 80)
        | ((guid.Data3 as u128) << 64)
        | (u64::from_be_bytes(guid.Data4) as u128)
}

macro_rules! ks_struct {
    (
        $(#[$attr:meta])*
        pub struct $name:ident (size $size:literal, align $align:literal) {
            $( $(#[$fattr:meta])* pub $field:ident : $ty:ty => $off:literal, )*
        }
    ) => {
        $(#[$attr])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            $( $(#[$fattr])* pub $field: $ty, )*
        }

        const _: () = {
            assert!(::core::mem::size_of::<$name>() == $size);
            assert!(::core::mem::align_of::<$name>() == $align);
            $( assert!(::core::mem::offset_of!($name, $field) == $off); )*
        };

        impl $crate::layout::HasLayout for $name {
            const LAYOUT: $crate::layout::TypeLayout = $crate::layout::TypeLayout {
                name: stringify!($name),
                size: ::core::mem::size_of::<$name>(),
                align: ::core::mem::align_of::<$name>(),
                fields: &[$(
                    $crate::layout::FieldLayout {
                        name: stringify!($field),
                        offset: ::core::mem::offset_of!($name, $field),
                        size: ::core::mem::size_of::<$ty>(),
                    },
                )*],
            };
        }
    };
}

macro_rules! ks_opaque {
    ($( $(#[$attr:meta])* $name:ident ),* $(,)?) => {
        $(
            $(#[$attr])*
            ///
            /// Opaque here: ks-sys only passes pointers to it and never reads its fields.
            #[repr(C)]
            pub struct $name {
                _opaque: [u8; 0],
                _not_send_sync_unpin: ::core::marker::PhantomData<(*mut u8, ::core::marker::PhantomPinned)>,
            }
        )*
    };
}

macro_rules! ks_consts {
    ($table:ident, $group_doc:literal; $( $(#[$attr:meta])* $name:ident : $ty:ty = $value:expr; )*) => {
        $(
            #[doc = $group_doc]
            $(#[$attr])*
            pub const $name: $ty = $value;
        )*

        pub(crate) const $table: &[$crate::layout::ConstValue] = &[$(
            $crate::layout::ConstValue { name: stringify!($name), value: $name as i128 },
        )*];
    };
}

macro_rules! ks_guids {
    ($table:ident; $( $(#[$attr:meta])* $name:ident = $value:literal; )*) => {
        $(
            $(#[$attr])*
            pub const $name: $crate::GUID = $crate::layout::guid($value);
        )*

        pub(crate) const $table: &[$crate::layout::GuidValue] = &[$(
            $crate::layout::GuidValue { name: stringify!($name), value: $value },
        )*];
    };
}

macro_rules! ret_size {
    () => {
        0
    };
    ($ret:ty) => {
        ::core::mem::size_of::<$ret>()
    };
}

macro_rules! ks_callbacks {
    ($table:ident; $(
        $(#[$attr:meta])*
        pub type $name:ident = fn( $( $param:ident : $pty:ty ),* $(,)? ) $( -> $ret:ty )?;
    )*) => {
        $(
            $(#[$attr])*
            pub type $name = Option<unsafe extern "C" fn( $( $param: $pty ),* ) $( -> $ret )?>;
        )*

        pub(crate) const $table: &[$crate::layout::Prototype] = &[$(
            $crate::layout::Prototype {
                name: stringify!($name),
                params: &[$(
                    $crate::layout::ParamLayout {
                        name: stringify!($param),
                        size: ::core::mem::size_of::<$pty>(),
                    },
                )*],
                ret_size: ret_size!($($ret)?),
            },
        )*];
    };
}

macro_rules! ks_imports {
    ($table:ident, extern $abi:literal; $(
        $(#[$attr:meta])*
        pub fn $name:ident( $( $param:ident : $pty:ty ),* $(,)? ) $( -> $ret:ty )?;
    )*) => {
        unsafe extern $abi {
            $(
                $(#[$attr])*
                pub fn $name( $( $param: $pty ),* ) $( -> $ret )?;
            )*
        }

        pub(crate) const $table: &[$crate::layout::Prototype] = &[$(
            $crate::layout::Prototype {
                name: stringify!($name),
                params: &[$(
                    $crate::layout::ParamLayout {
                        name: stringify!($param),
                        size: ::core::mem::size_of::<$pty>(),
                    },
                )*],
                ret_size: ret_size!($($ret)?),
            },
        )*];
    };
}
