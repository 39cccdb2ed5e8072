//! Generates `constants.rs`, `types.rs` and `ntddk.rs` for the wdk-sys stand-in of
//! `.ci/wdk-check`, the three files wdk-sys 0.5.2's build script generates for a WDM driver.
//!
//! The builder repeats wdk-build 0.6.0's `BuilderExt::wdk_default` setting by setting (enum
//! style, derives, blocklist, opaque types, compiler flags, preprocessor definitions for an x64
//! WDM driver, Rust target 1.91 and edition 2024) and wdk-sys's three passes (variables, types,
//! the rest with the base libraries' link lines). wdk-build itself cannot be called: it needs
//! the WDK's directories. What differs, and why, is marked `MinGW:` below; nothing else does.
//!
//! Usage: `wdk-sys-standin-bindgen <mingw include dir> <output dir>`.

use std::{env, fs, path::PathBuf, process::Command};

use bindgen::{Builder, CodegenConfig, EnumVariation, Formatter, RustEdition, RustTarget};

/// wdk-build's `base_headers()` for WDM, in its order.
const BASE_HEADERS: &[&str] = &["ntifs.h", "ntddk.h", "ntstrsafe.h"];

/// wdk-build's `preprocessor_definitions()` for an x64 WDM driver.
const DEFINITIONS: &[&str] = &["_WIN64", "_AMD64_", "AMD64", "_KERNEL_MODE"];

/// wdk-build's `wdk_bindgen_compiler_flags()`.
const COMPILER_FLAGS: &[&str] = &[
    "-fms-compatibility",
    "-fms-extensions",
    "-fdelayed-template-parsing",
    "--warn-=no-nonportable-include-path",
    "--warn-=no-pragma-pack",
    "--warn-=no-ignored-attributes",
    "--warn-=no-ignored-pragma-intrinsic",
    "--warn-=no-visibility",
    "--warn-=no-switch",
    "--warn-=no-comment",
    "--warn-=no-deprecated-declarations",
    "--warn-=no-invalid-token-paste",
    "--warn-=no-microsoft",
];

/// wdk-build's `blocklist_item` calls.
const BLOCKLIST: &[&str] = &[
    "ExAllocatePoolWithTag",
    "ExAllocatePoolWithQuotaTag",
    "ExAllocatePoolWithTagPriority",
    "ExAllocatePool",
    "USBD_CalculateUsbBandwidth",
    "USBD_CreateConfigurationRequest",
    "USBD_Debug_LogEntry",
    "USBD_GetUSBDIVersion",
    "USBD_ParseConfigurationDescriptor",
    "USBD_QueryBusTime",
    "USBD_RegisterHcFilter",
    "IOCTL_USB_DIAG_IGNORE_HUBS_OFF",
    "IOCTL_USB_DIAG_IGNORE_HUBS_ON",
    "IOCTL_USB_DIAGNOSTIC_MODE_OFF",
    "IOCTL_USB_DIAGNOSTIC_MODE_ON",
    "IOCTL_USB_GET_HUB_CAPABILITIES",
    "IOCTL_USB_HCD_DISABLE_PORT",
    "IOCTL_USB_HCD_ENABLE_PORT",
    "IOCTL_USB_HCD_GET_STATS_1",
    "IOCTL_USB_HCD_GET_STATS_2",
    "IOCTL_USB_RESET_HUB",
    ".*MCG_CAP(?:__bindgen.*)?",
    ".*WHEA_XPF_MCA_SECTION",
    ".*WHEA_ARM_BUS_ERROR(?:__bindgen.*)?",
    ".*WHEA_ARM_PROCESSOR_ERROR",
    ".*WHEA_ARM_CACHE_ERROR",
    ".*ADDRESS0_OWNERSHIP_ACQUIRE",
    ".*USBDEVICE_ABORTIO",
    ".*USBDEVICE_STARTIO",
    ".*USBDEVICE_TREE_PURGEIO",
];

/// The link lines wdk-build renders for WDM's base libraries (`LinkDirective::render`).
const BASE_LIBRARIES: &[&str] = &["BufferOverflowFastFailK", "ntoskrnl", "hal", "wmilib"];

fn wdk_default(include: &str, resource_dir: &str) -> Builder {
    let mut builder = Builder::default()
        .use_core()
        .derive_default(true)
        .generate_cstr(true)
        .detect_include_paths(false)
        .clang_arg("-fno-builtin")
        // MinGW: the DDK headers sit in include/ddk and the CRT/shared headers in include, where
        // the WDK has km, km/crt and shared.
        .clang_arg(format!("--include-directory={include}/ddk"))
        .clang_arg(format!("--include-directory={include}"))
        .clang_args(DEFINITIONS.iter().map(|name| format!("--define-macro={name}")))
        .clang_args(COMPILER_FLAGS.iter().copied())
        // MinGW: on Linux, libclang must be told the target (on Windows it is the default), the
        // resource directory (include-path detection is off) and a GNU version (MinGW's
        // _mingw.h defines `__attribute__` away when `__GNUC__` is missing, which breaks
        // clang's own intrinsic headers).
        .clang_arg("--target=x86_64-pc-windows-msvc")
        .clang_arg(format!("-resource-dir={resource_dir}"))
        .clang_arg("-fgnuc-version=4.2.1");
    for item in BLOCKLIST {
        builder = builder.blocklist_item(*item);
    }
    builder
        .opaque_type("_KGDTENTRY64")
        .opaque_type("_KIDTENTRY64")
        .no_default(".*tagMONITORINFOEXA")
        .must_use_type("NTSTATUS")
        .must_use_type("HRESULT")
        .default_enum_style(EnumVariation::ModuleConsts)
        .formatter(Formatter::Prettyplease)
        .rust_target(RustTarget::stable(91, 0).expect("bindgen knows Rust 1.91"))
        .rust_edition(RustEdition::Edition2024)
}

fn header_contents() -> String {
    let mut contents: String =
        BASE_HEADERS.iter().map(|header| format!("#include \"{header}\"\n")).collect();
    // MinGW: its DDK (v10) predates POOL_FLAGS, which wdk-sys's hand-written POOL_FLAG_*
    // constants are typed with; the WDK's wdm.h declares it as ULONG64.
    contents.push_str("typedef ULONG64 POOL_FLAGS;\n");
    contents
}

fn link_lines() -> String {
    BASE_LIBRARIES
        .iter()
        .map(|name| {
            format!(
                "#[cfg(not(any(test, feature = \"suppress-wdk-linking\")))]\n\
                 #[link(name = \"{name}\", kind = \"static\", modifiers = \"-bundle\")]\n\
                 unsafe extern \"C\" {{}}\n"
            )
        })
        .collect()
}

/// MinGW: `POWER_ACTION` is an untagged enum there (`typedef enum { … } POWER_ACTION`), so
/// bindgen names its module `POWER_ACTION`; the WDK's is `enum _POWER_ACTION`, which wdk-sys has
/// as a module `_POWER_ACTION` and the alias `POWER_ACTION`, like every tagged enum.
fn wdk_spelling(text: &str) -> String {
    let mut renamed = text
        .replace("POWER_ACTION::Type", "_POWER_ACTION::Type")
        .replace("__POWER_ACTION::Type", "_POWER_ACTION::Type");
    if renamed.contains("pub mod POWER_ACTION {") {
        renamed = renamed.replace("pub mod POWER_ACTION {", "pub mod _POWER_ACTION {");
        renamed.push_str("pub use self::_POWER_ACTION::Type as POWER_ACTION;\n");
    }
    renamed
}

fn main() {
    let mut args = env::args().skip(1);
    let (Some(include), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: wdk-sys-standin-bindgen <mingw include dir> <output dir>");
        std::process::exit(2);
    };
    let out = PathBuf::from(out);
    fs::create_dir_all(&out).expect("the output directory can be created");
    let resource_dir = Command::new("clang")
        .arg("-print-resource-dir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .expect("`clang -print-resource-dir` names clang's resource directory");

    let passes = [
        ("constants.rs", CodegenConfig::VARS, None),
        ("types.rs", CodegenConfig::TYPES, None),
        ("ntddk.rs", (CodegenConfig::TYPES | CodegenConfig::VARS).complement(), Some(link_lines())),
    ];
    for (file, codegen, raw_lines) in passes {
        let mut builder = wdk_default(&include, &resource_dir)
            .with_codegen_config(codegen)
            .header_contents("wdk-input.h", &header_contents());
        if let Some(lines) = raw_lines {
            builder = builder.raw_line(lines);
        }
        let bindings = builder.generate().unwrap_or_else(|error| {
            eprintln!("bindgen failed on {file}: {error}");
            std::process::exit(1);
        });
        let text = wdk_spelling(&bindings.to_string());
        let path = out.join(file);
        fs::write(&path, text).expect("the bindings can be written");
        eprintln!("wrote {}", path.display());
    }
}
