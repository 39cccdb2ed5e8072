//! Build script of the `ks-allocator` library.
//!
//! On a Windows host building with the `wdk` feature this hands over to `wdk-build`, which finds
//! the WDK and emits the `driver_model__driver_type` cfg exactly as windows-drivers-rs libraries
//! do. Everywhere else there is nothing to configure: the library builds against ks-sys' own
//! definitions of the NT base types.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(all(windows, feature = "wdk"))]
    {
        if let Err(error) = wdk_build::configure_wdk_library_build() {
            println!("cargo::error=wdk-build could not configure the library build: {error}");
        }
    }
}
