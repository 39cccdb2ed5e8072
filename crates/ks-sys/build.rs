//! Build script of `ks-sys`: chooses the link line, nothing else.
//!
//! The KS routines live in `ks.sys`; drivers link its import library `ks.lib`, which sits in the
//! WDK's `km/<arch>` library directory that wdk-sys already puts on the search path. wdk-build has
//! no API for extra import libraries, so the library is named here. Off Windows, or without the
//! `wdk` feature, nothing is linked: the user-mode host (`ks-host`) defines the imported symbols.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let wdk = std::env::var_os("CARGO_FEATURE_WDK").is_some();
    if target_os == "windows" && wdk {
        println!("cargo::rustc-link-lib=static:-bundle=ks");
    }
}
