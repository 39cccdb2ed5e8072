//! Every NT base type ks-sys defines for itself, against the type wdk-sys 0.5.2 generates for
//! it on x86_64-pc-windows-msvc (bindgen over the WDK headers: `c_ulong` is `u32`, `c_ulonglong`
//! `u64`, `c_char` `i8`, `wchar_t` `u16`, C enums `c_int` module constants). With the `wdk`
//! feature ks-sys re-exports wdk-sys's definitions; the host build uses these, so a mismatch
//! here is a call that compiles on the host and not in the driver build.

use std::any::type_name;

macro_rules! spelled {
    ($($name:ident => $wdk:ty,)*) => {
        [$((stringify!($name), type_name::<ks_sys::$name>(), type_name::<$wdk>())),*]
    };
}

#[test]
fn local_base_types_are_spelled_as_wdk_sys_spells_them() {
    let table = spelled! {
        NTSTATUS => i32,
        ULONG => u32,
        PULONG => *mut u32,
        LONG => i32,
        USHORT => u16,
        UCHAR => u8,
        PUCHAR => *mut u8,
        BOOLEAN => u8,
        LONGLONG => i64,
        ULONGLONG => u64,
        ULONG_PTR => u64,
        SIZE_T => u64,
        LONG_PTR => i64,
        ACCESS_MASK => u32,
        KIRQL => u8,
        KPROCESSOR_MODE => i8,
        CCHAR => i8,
        WCHAR => u16,
        PWSTR => *mut u16,
        POOL_FLAGS => u64,
        POOL_TYPE => i32,
        TIMER_TYPE => i32,
        PVOID => *mut core::ffi::c_void,
        HANDLE => *mut core::ffi::c_void,
    };
    let wrong: Vec<String> = table
        .iter()
        .filter(|(_, ours, wdk)| ours != wdk)
        .map(|(name, ours, wdk)| format!("{name}: ks-sys has {ours}, wdk-sys {wdk}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
