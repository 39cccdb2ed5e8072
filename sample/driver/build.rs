//! Build script of the sample driver image.
//!
//! On Windows, `wdk-build` configures the link of a WDM driver: the WDK's kernel-mode library
//! directories, `/DRIVER`, `/SUBSYSTEM:NATIVE`, `/ENTRY:DriverEntry` and the rest of the WDK's
//! kernel-mode linker settings, and it refuses a build without a static C runtime (see
//! `.cargo/config.toml`). Elsewhere nothing is linked as a driver: the code of this driver is
//! `ks-sample-core`, which the user-mode host loads and tests.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(windows)]
    {
        if let Err(error) = wdk_build::configure_wdk_binary_build() {
            println!("cargo::error=wdk-build could not configure the driver's link: {error}");
        }
    }
}
