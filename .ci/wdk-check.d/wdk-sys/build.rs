//! Build script of the wdk-sys stand-in: what wdk-sys's own build script does for an x64 WDM
//! driver, minus the WDK. It places the pre-generated `constants.rs`, `types.rs` and `ntddk.rs`
//! (target/wdk-check/bindings) in `OUT_DIR`, where wdk-sys's sources `include!` them, and emits
//! the `driver_model__driver_type` cfg that wdk-build emits when the crate graph has
//! `[package.metadata.wdk.driver-model] driver-type = "WDM"`.

use std::{env, fs, path::PathBuf};

fn main() {
    let bindings =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../target/wdk-check/bindings");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for file in ["constants.rs", "types.rs", "ntddk.rs"] {
        let source = bindings.join(file);
        println!("cargo::rerun-if-changed={}", source.display());
        if let Err(error) = fs::copy(&source, out.join(file)) {
            println!("cargo::error=no generated {} ({error}): run .ci/wdk-check", source.display());
        }
    }
    println!(
        r#"cargo::rustc-check-cfg=cfg(driver_model__driver_type, values("WDM", "KMDF", "UMDF"))"#
    );
    println!(r#"cargo::rustc-cfg=driver_model__driver_type="WDM""#);
}
