# Shared by .ci/windows-link, .ci/wdk-check and .ci/wine-selftest (sourced, after `cd` to the
# repository root and setting `step` to the script's name). Exit status 3 means "cannot run on
# this machine": .ci/run reports the step as SKIPPED.

target=x86_64-pc-windows-msvc
mingw_lib=/usr/x86_64-w64-mingw32/lib
link_out=target/windows-link

skip() {
    echo "$step: SKIPPED: $*" >&2
    exit 3
}

# apt-get install, as root or through sudo; fails where there is no apt-get.
apt_install() {
    command -v apt-get >/dev/null 2>&1 || return 1
    local sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q --no-install-recommends "$@"
}

ensure_windows_target() {
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        echo "$step: installing the $target target"
        rustup target add "$target" || skip "rustup cannot install $target"
    fi
}

# The MinGW-w64 import libraries of ntoskrnl, hal and ks, and its DDK headers.
ensure_mingw() {
    if [ ! -f "$mingw_lib/libntoskrnl.a" ]; then
        echo "$step: installing the MinGW-w64 import libraries"
        apt_install mingw-w64-x86-64-dev || skip "cannot install mingw-w64-x86-64-dev"
    fi
    local lib
    for lib in ntoskrnl hal ks; do
        [ -f "$mingw_lib/lib$lib.a" ] || skip "$mingw_lib/lib$lib.a is missing"
    done
}

# link_image FEATURE NAME: links .ci/windows-link.d with FEATURE (the crate whose DriverEntry
# the image has) into $link_out/NAME.sys with rust-lld, as the WDK links a driver (/DRIVER,
# native subsystem, entry DriverEntry), and writes its `objdump -p` to $link_out/NAME.objdump.
link_image() {
    local feature=$1 name=$2
    command -v objdump >/dev/null 2>&1 || skip "no objdump (binutils) to read the image"
    (
        cd .ci/windows-link.d
        CARGO_TARGET_DIR="../../$link_out" cargo rustc --locked --release --target "$target" \
            --features "$feature" -- \
            -C linker=rust-lld -C linker-flavor=lld-link \
            -C link-arg=/DRIVER -C link-arg=/SUBSYSTEM:NATIVE -C link-arg=/ENTRY:DriverEntry \
            -C link-arg=/NODEFAULTLIB \
            -L "native=$mingw_lib" -l dylib=ntoskrnl -l dylib=hal -l dylib=ks
    )
    cp "$link_out/$target/release/ks_driver_link.dll" "$link_out/$name.sys"
    objdump -p "$link_out/$name.sys" >"$link_out/$name.objdump"
}

# check_image NAME ALLOWED_DLLS [REQUIRED_KS_IMPORTS...]: the image is PE32+ with the native
# subsystem, imports only from ALLOWED_DLLS (comma-separated) names each DLL exports
# (crates/ks-sys/tests/data/nt-abi.json), and imports each REQUIRED_KS_IMPORTS from ks.sys.
check_image() {
    local name=$1 allowed=$2
    shift 2
    command -v python3 >/dev/null 2>&1 || skip "no python3 to check the import table"
    python3 .ci/pe-imports.py "$link_out/$name.objdump" crates/ks-sys/tests/data/nt-abi.json \
        "$allowed" "$@"
}
