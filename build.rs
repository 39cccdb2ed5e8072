//! Build script of the ks-allocator library.
//!
//! Every windows-drivers-rs library built on wdk-sys (`wdk`, `wdk-alloc`) calls
//! `wdk_build::configure_wdk_library_build()`, which reads the driver model from the
//! `[package.metadata.wdk]` tables of the build graph and emits the `driver_model__*` cfg settings
//! (and their `check-cfg` declarations) that wdk-sys's users compile against. This library does
//! the same for its `wdk` build on a Windows host with the WDK. Everywhere else (the user-mode
//! host, the Linux link and type checks) there is nothing to configure: the library's code is the
//! same in every build and nothing in it is chosen by those settings.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(windows)]
    {
        if std::env::var_os("CARGO_FEATURE_WDK").is_some()
            && let Err(error) = wdk_build::configure_wdk_library_build()
        {
            println!("cargo::error=wdk-build could not configure the library build: {error}");
        }
    }
}
