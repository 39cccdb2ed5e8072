//! Builds the one C file of the host: `DbgPrintEx`, which is variadic and so cannot be defined in
//! stable Rust. It formats with the C library's `vsnprintf` and hands the text to Rust.
//!
//! The archive is linked without bundling (`static:-bundle`), so rustc places it after every
//! Rust crate on the link line and it resolves the library's `DbgPrintEx` references whatever
//! the crate order.

fn main() {
    println!("cargo::rerun-if-changed=csrc/dbgprint.c");
    cc::Build::new()
        .file("csrc/dbgprint.c")
        .warnings(true)
        .cargo_metadata(false)
        .compile("kshost_dbgprint");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo::rustc-link-search=native={out_dir}");
    println!("cargo::rustc-link-lib=static:-bundle=kshost_dbgprint");
}
