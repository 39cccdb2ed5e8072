//! Conformance of ks-sys with the x64 KS ABI oracle.
//!
//! Every structure, type alias, constant, GUID, callback type and import that ks-sys defines is
//! compared with `tests/data/ks-abi.json` / `ks-prototypes.json` (a copy of the project's oracle,
//! read back from compiled headers). What ks-sys defines and the oracle lacks is listed below with
//! the reason; nothing is skipped silently, and an allowance that is no longer needed fails too.

use std::{collections::BTreeSet, fmt::Write as _, fs, path::PathBuf};

use ks_sys::layout::{FieldLayout, Prototype, TypeLayout};
use serde_json::Value;

/// Types the oracle does not record, with the reason.
const TYPES_NOT_IN_ORACLE: &[(&str, &str)] = &[
    (
        "RECT",
        "windef.h type outside the oracle's ks.h/ksmedia.h scope; its size is checked through KS_VIDEOINFOHEADER.rcSource",
    ),
    (
        "SIZE",
        "windef.h type outside the oracle's ks.h/ksmedia.h scope; its size is checked through KS_VIDEO_STREAM_CONFIG_CAPS.InputSize",
    ),
];

/// Fields ks-sys defines that the oracle lacks: `(type, field, reason)`.
const FIELDS_NOT_IN_ORACLE: &[(&str, &str, &str)] = &[(
    "KSDEVICE_DESCRIPTOR",
    "Flags",
    "Microsoft's x64 layout (public PDB symbols, oracle/pdb-crosscheck.json) has Flags at 28; mingw leaves the slot as tail padding",
)];

/// Oracle fields that ks-sys models through another member: `(type, field, reason)`.
const ORACLE_FIELDS_MODELLED_OTHERWISE: &[(&str, &str, &str)] = &[
    ("KSALLOCATOR_FRAMING", "RequirementsFlags", "union alias of OptionsFlags (one u32)"),
    ("KSIDENTIFIER", "Alignment", "LONGLONG union member that only aligns; repr(align(8))"),
    ("KSDATAFORMAT", "Alignment", "LONGLONG union member that only aligns; repr(align(8))"),
    (
        "KSPIN_DESCRIPTOR",
        "Reserved",
        "union alias of ConstrainedDataRangesCount/ConstrainedDataRanges",
    ),
    ("KSPROPERTY_ITEM", "GetSupported", "BOOLEAN union alias of GetPropertyHandler"),
    ("KSPROPERTY_ITEM", "SetSupported", "BOOLEAN union alias of SetPropertyHandler"),
    ("KSSTREAM_POINTER_OFFSET", "Mappings", "union alias of Data"),
];

/// Constants the oracle lacks, with the reason.
const CONSTANTS_NOT_IN_ORACLE: &[(&str, &str)] = &[
    (
        "KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY_CUSTOM_ALLOCATION",
        "newer SDK; value from windows-sys metadata",
    ),
    ("KSALLOCATOR_FLAG_ENABLE_CACHED_MDL", "newer SDK; value from windows-sys metadata"),
    ("KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED", "newer SDK; value from windows-sys metadata"),
    ("KSPROPERTY_TYPE_HIGHPRIORITY", "newer SDK; value from windows-sys metadata"),
    ("KSPROPERTY_TYPE_FSFILTERSCOPE", "newer SDK; value from windows-sys metadata"),
    ("KSPROPERTY_TYPE_COPYPAYLOAD", "newer SDK; value from windows-sys metadata"),
    ("KSFILTER_FLAG_PRIORITIZE_REFERENCEGUID", "newer SDK; value from windows-sys metadata"),
    ("KSDEVICE_DESCRIPTOR_VERSION_2", "newer SDK; value from windows-sys metadata"),
    ("KSDEVICE_FLAG_ENABLE_REMOTE_WAKEUP", "newer SDK; value from windows-sys metadata"),
    ("KSDEVICE_FLAG_LOWPOWER_PASSTHROUGH", "newer SDK; value from windows-sys metadata"),
    ("KSDEVICE_FLAG_ENABLE_QUERYINTERFACE", "newer SDK; value from windows-sys metadata"),
    ("PAGE_SIZE", "wdm.h; not a KS header value (4 KiB on x64 and ARM64)"),
    ("DEVICE_DESCRIPTION_VERSION", "wdm.h; equal to wdk-sys's, asserted in the wdk build"),
    ("DEVICE_DESCRIPTION_VERSION1", "wdm.h; equal to wdk-sys's, asserted in the wdk build"),
    ("DEVICE_DESCRIPTION_VERSION2", "wdm.h; equal to wdk-sys's, asserted in the wdk build"),
    (
        "ALL_PROCESSOR_GROUPS",
        "ntdef.h (0xffff in the mingw-w64 headers); equal to wdk-sys's, asserted in the wdk build",
    ),
    ("PCIBus", "INTERFACE_TYPE enumerator of wdm.h; equal to wdk-sys's, asserted in the wdk build"),
    ("NonPagedPool", "POOL_TYPE enumerator of wdm.h"),
    ("PagedPool", "POOL_TYPE enumerator of wdm.h"),
    ("NonPagedPoolMustSucceed", "POOL_TYPE enumerator of wdm.h"),
    ("NonPagedPoolCacheAligned", "POOL_TYPE enumerator of wdm.h"),
    ("PagedPoolCacheAligned", "POOL_TYPE enumerator of wdm.h"),
    ("NonPagedPoolNx", "POOL_TYPE enumerator of wdm.h"),
    ("NonPagedPoolNxCacheAligned", "POOL_TYPE enumerator of wdm.h"),
    ("STATUS_SUCCESS", "ntstatus.h"),
    ("STATUS_PENDING", "ntstatus.h"),
    ("STATUS_MORE_ENTRIES", "ntstatus.h"),
    ("STATUS_BUFFER_OVERFLOW", "ntstatus.h"),
    ("STATUS_UNSUCCESSFUL", "ntstatus.h"),
    ("STATUS_NOT_IMPLEMENTED", "ntstatus.h"),
    ("STATUS_INVALID_PARAMETER", "ntstatus.h"),
    ("STATUS_INVALID_DEVICE_REQUEST", "ntstatus.h"),
    ("STATUS_NO_MEMORY", "ntstatus.h"),
    ("STATUS_BUFFER_TOO_SMALL", "ntstatus.h"),
    ("STATUS_INSUFFICIENT_RESOURCES", "ntstatus.h"),
    ("STATUS_DEVICE_NOT_READY", "ntstatus.h"),
    ("STATUS_NOT_SUPPORTED", "ntstatus.h"),
    ("STATUS_INVALID_DEVICE_STATE", "ntstatus.h"),
    ("STATUS_INVALID_BUFFER_SIZE", "ntstatus.h"),
    ("STATUS_NOT_FOUND", "ntstatus.h"),
    ("STATUS_INVALID_HANDLE", "ntstatus.h"),
    ("STATUS_NO_MATCH", "ntstatus.h"),
    ("STATUS_DEVICE_BUSY", "ntstatus.h"),
    (
        "NotificationTimer",
        "wdm.h TIMER_TYPE enumerator (the NT oracle records the type, not its values)",
    ),
    (
        "SynchronizationTimer",
        "wdm.h TIMER_TYPE enumerator (the NT oracle records the type, not its values)",
    ),
    ("STATUS_ACCESS_DENIED", "ntstatus.h"),
    ("STATUS_OBJECT_TYPE_MISMATCH", "ntstatus.h"),
    (
        "KernelMode",
        "wdm.h MODE enumerator (checked against nt-abi.json in processor_modes_match_the_nt_oracle)",
    ),
    (
        "UserMode",
        "wdm.h MODE enumerator (checked against nt-abi.json in processor_modes_match_the_nt_oracle)",
    ),
    ("POOL_FLAG_UNINITIALIZED", "wdm.h POOL_FLAGS (Microsoft Learn, POOL_FLAGS page)"),
    ("POOL_FLAG_CACHE_ALIGNED", "wdm.h POOL_FLAGS (Microsoft Learn, POOL_FLAGS page)"),
    ("POOL_FLAG_NON_PAGED", "wdm.h POOL_FLAGS (Microsoft Learn, POOL_FLAGS page)"),
    ("POOL_FLAG_PAGED", "wdm.h POOL_FLAGS (Microsoft Learn, POOL_FLAGS page)"),
    ("PASSIVE_LEVEL", "wdm.h IRQL"),
    ("APC_LEVEL", "wdm.h IRQL"),
    ("DISPATCH_LEVEL", "wdm.h IRQL"),
    ("DPFLTR_IHVSTREAMING_ID", "dpfilter.h component id"),
    ("DPFLTR_ERROR_LEVEL", "dpfilter.h level"),
    ("DPFLTR_WARNING_LEVEL", "dpfilter.h level"),
    ("DPFLTR_TRACE_LEVEL", "dpfilter.h level"),
    ("DPFLTR_INFO_LEVEL", "dpfilter.h level"),
];

/// GUIDs the oracle lacks, with the reason.
const GUIDS_NOT_IN_ORACLE: &[(&str, &str)] = &[
    ("GUID_BUS_TYPE_PCI", "wdmguid.h, outside the oracle's scope; value from spec section 2.12"),
    ("GUID_BUS_TYPE_USB", "wdmguid.h, outside the oracle's scope; value from spec section 2.12"),
    ("GUID_BUS_TYPE_1394", "wdmguid.h, outside the oracle's scope; value from spec section 2.12"),
    ("GUID_BUS_TYPE_AVC", "wdmguid.h, outside the oracle's scope; value from spec section 2.12"),
    ("KSCATEGORY_SENSOR_CAMERA", "newer SDK; value from windows-sys metadata"),
];

fn data(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn allowed<'a>(list: &'a [(&str, &str)], name: &str) -> Option<&'a str> {
    list.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
}

fn allowed_field(list: &[(&str, &str, &str)], ty: &str, field: &str) -> bool {
    list.iter().any(|(t, f, _)| *t == ty && *f == field)
}

fn as_usize(value: &Value) -> usize {
    usize::try_from(value.as_u64().expect("a non-negative integer")).expect("fits usize")
}

/// Compares one ks-sys layout with the oracle's record of the same C type. Returns every
/// disagreement as a line of text.
fn compare_type(ours: &TypeLayout, oracle: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let name = ours.name;
    if as_usize(&oracle["sizeof"]) != ours.size {
        problems
            .push(format!("{name}: size {} but the oracle says {}", ours.size, oracle["sizeof"]));
    }
    if as_usize(&oracle["alignof"]) != ours.align {
        problems.push(format!(
            "{name}: align {} but the oracle says {}",
            ours.align, oracle["alignof"]
        ));
    }
    let oracle_fields: Vec<&Value> = oracle["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| f["depth"] == 0 && !f["path"].as_str().unwrap_or_default().starts_with('<'))
        .collect();
    for field in ours.fields {
        let Some(theirs) = oracle_fields.iter().find(|f| f["path"] == field.name) else {
            if !allowed_field(FIELDS_NOT_IN_ORACLE, name, field.name) {
                problems.push(format!("{name}.{}: not in the oracle", field.name));
            }
            continue;
        };
        let (offset, size) = (as_usize(&theirs["offset"]), as_usize(&theirs["size"]));
        if (offset, size) != (field.offset, field.size) {
            problems.push(format!(
                "{name}.{}: offset {} size {} but the oracle says offset {offset} size {size}",
                field.name, field.offset, field.size
            ));
        }
    }
    for theirs in oracle_fields {
        let path = theirs["path"].as_str().expect("path");
        if !ours.fields.iter().any(|f: &FieldLayout| f.name == path)
            && !allowed_field(ORACLE_FIELDS_MODELLED_OTHERWISE, name, path)
        {
            problems.push(format!("{name}.{path}: in the oracle but not in ks-sys"));
        }
    }
    problems
}

fn report(problems: &[String]) {
    if !problems.is_empty() {
        let mut text = String::new();
        for p in problems {
            writeln!(text, "  {p}").unwrap();
        }
        panic!("{} ABI disagreements:\n{text}", problems.len());
    }
}

#[test]
fn every_structure_matches_the_oracle() {
    let abi = data("ks-abi.json");
    let mut problems = Vec::new();
    for ours in ks_sys::TYPES {
        match abi["types"].get(ours.name) {
            Some(oracle) => problems.extend(compare_type(ours, oracle)),
            None if allowed(TYPES_NOT_IN_ORACLE, ours.name).is_some() => {}
            None => problems.push(format!("{}: not in the oracle", ours.name)),
        }
    }
    // The windef.h types, checked where KS embeds them.
    let field_size = |ty: &str, field: &str| {
        abi["types"][ty]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == field)
            .map(|f| as_usize(&f["size"]))
    };
    assert_eq!(field_size("KS_VIDEOINFOHEADER", "rcSource"), Some(size_of::<ks_sys::RECT>()));
    assert_eq!(
        field_size("KS_VIDEO_STREAM_CONFIG_CAPS", "InputSize"),
        Some(size_of::<ks_sys::SIZE>())
    );
    report(&problems);
}

#[test]
fn allowances_are_all_still_needed() {
    let abi = data("ks-abi.json");
    let names: BTreeSet<&str> = ks_sys::TYPES.iter().map(|t| t.name).collect();
    for (ty, _) in TYPES_NOT_IN_ORACLE {
        assert!(names.contains(ty), "{ty} is allowed but ks-sys does not define it");
        assert!(abi["types"].get(*ty).is_none(), "{ty} is in the oracle now: check it");
    }
    let constants: BTreeSet<&str> =
        ks_sys::CONSTANTS.iter().flat_map(|t| t.iter()).map(|c| c.name).collect();
    for (name, _) in CONSTANTS_NOT_IN_ORACLE {
        assert!(constants.contains(name), "{name} is allowed but ks-sys does not define it");
        assert!(abi["constants"].get(*name).is_none(), "{name} is in the oracle now: check it");
    }
    let guids: BTreeSet<&str> =
        ks_sys::GUIDS.iter().flat_map(|t| t.iter()).map(|g| g.name).collect();
    for (name, _) in GUIDS_NOT_IN_ORACLE {
        assert!(guids.contains(name), "{name} is allowed but ks-sys does not define it");
        assert!(abi["guids"].get(*name).is_none(), "{name} is in the oracle now: check it");
    }
}

#[test]
fn type_aliases_match_the_oracle() {
    let abi = data("ks-abi.json");
    for (alias, target) in ks_sys::TYPE_ALIASES {
        let oracle = &abi["types"][*alias];
        let ours = ks_sys::TYPES.iter().find(|t| t.name == *target).expect("alias target");
        let aliased = oracle["alias_of"].as_str().unwrap_or(alias);
        assert!(
            aliased == *target || oracle["kind"] == abi["types"][*target]["kind"],
            "{alias}: the oracle says it aliases {aliased}, ks-sys says {target}"
        );
        // Compared under the target's name, whose union allowances apply to the alias too.
        let problems = compare_type(ours, oracle);
        report(&problems.iter().map(|p| format!("as {alias}: {p}")).collect::<Vec<_>>());
    }
}

#[test]
fn every_constant_matches_the_oracle() {
    let abi = data("ks-abi.json");
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for constant in ks_sys::CONSTANTS.iter().flat_map(|t| t.iter()) {
        assert!(seen.insert(constant.name), "{} is defined twice", constant.name);
        match abi["constants"].get(constant.name) {
            Some(oracle) => {
                let value = oracle["value"]
                    .as_i64()
                    .map(i128::from)
                    .or_else(|| oracle["value"].as_u64().map(i128::from))
                    .expect("an integer value");
                let ours = constant.value;
                if ours != value {
                    problems.push(format!(
                        "{}: {ours:#x} but the oracle says {value:#x}",
                        constant.name
                    ));
                }
            }
            None if allowed(CONSTANTS_NOT_IN_ORACLE, constant.name).is_some() => {}
            None => problems.push(format!("{}: not in the oracle", constant.name)),
        }
    }
    report(&problems);
}

#[test]
fn every_guid_matches_the_oracle() {
    let abi = data("ks-abi.json");
    let mut problems = Vec::new();
    for guid in ks_sys::GUIDS.iter().flat_map(|t| t.iter()) {
        let oracle = abi["guids"].get(guid.name).or_else(|| abi["guid_equivalents"].get(guid.name));
        match oracle {
            Some(oracle) => {
                let text = oracle["rust_u128"].as_str().expect("rust_u128");
                let value = u128::from_str_radix(text.trim_start_matches("0x"), 16).expect("hex");
                if value != guid.value {
                    problems.push(format!(
                        "{}: {:#034x} but the oracle says {text}",
                        guid.name, guid.value
                    ));
                }
            }
            None if allowed(GUIDS_NOT_IN_ORACLE, guid.name).is_some() => {}
            None => problems.push(format!("{}: not in the oracle", guid.name)),
        }
    }
    // The GUID constants really hold those values in the Data1..Data4 layout.
    assert_eq!(
        ks_sys::layout::guid_value(&ks_sys::KSMEMORY_TYPE_KERNEL_NONPAGED),
        0x4A6D_5FC4_7895_11D1_B069_00A0_C906_2802
    );
    assert_eq!(
        ks_sys::KSMEMORY_TYPE_KERNEL_NONPAGED.Data4,
        [0xB0, 0x69, 0x00, 0xA0, 0xC9, 0x06, 0x28, 0x02]
    );
    report(&problems);
}

/// Size of a parameter or return type from the oracle's canonical C spelling (x64, LLP64).
fn canonical_size(canonical: &str) -> usize {
    match canonical {
        "void" => 0,
        c if c.contains('*') => 8,
        "unsigned char" | "char" | "signed char" => 1,
        "short int" | "short unsigned int" => 2,
        "long long int" | "long long unsigned int" | "union _LARGE_INTEGER" => 8,
        c if c.starts_with("enum ") => 4,
        "int" | "unsigned int" | "long int" | "long unsigned int" => 4,
        other => panic!("no size known for the C type {other:?}"),
    }
}

fn compare_prototype(ours: &Prototype, params: &[(String, usize)], ret: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let name = ours.name;
    if ours.params.len() != params.len() {
        problems.push(format!(
            "{name}: {} parameters but the header has {}",
            ours.params.len(),
            params.len()
        ));
        return problems;
    }
    for (mine, (theirs, size)) in ours.params.iter().zip(params) {
        if mine.name != theirs || mine.size != *size {
            problems.push(format!(
                "{name}: parameter {} ({} bytes) but the header has {theirs} ({size} bytes)",
                mine.name, mine.size
            ));
        }
    }
    if ours.ret_size != ret {
        problems
            .push(format!("{name}: returns {} bytes but the header returns {ret}", ours.ret_size));
    }
    problems
}

#[test]
fn every_callback_type_matches_its_typedef() {
    let protos = data("ks-prototypes.json");
    let typedefs = protos["callback_typedefs"].as_array().expect("callback_typedefs");
    let mut problems = Vec::new();
    for ours in ks_sys::CALLBACKS.iter().flat_map(|t| t.iter()) {
        let Some(theirs) = typedefs.iter().find(|t| t["name"] == ours.name) else {
            problems.push(format!("{}: no such typedef in ks.h", ours.name));
            continue;
        };
        let names = theirs["params"].as_array().unwrap();
        let canon = theirs["params_canonical"].as_array().unwrap();
        let params: Vec<(String, usize)> = names
            .iter()
            .zip(canon)
            .map(|(p, c)| (p[1].as_str().unwrap().to_owned(), canonical_size(c.as_str().unwrap())))
            .collect();
        let ret = canonical_size(theirs["return_canonical"].as_str().unwrap());
        problems.extend(compare_prototype(ours, &params, ret));
    }
    report(&problems);
}

#[test]
fn every_import_matches_its_prototype_and_is_exported() {
    let protos = data("ks-prototypes.json");
    let functions = protos["functions"].as_array().expect("functions");
    let mut problems = Vec::new();
    for ours in ks_sys::IMPORTS {
        let Some(theirs) = functions.iter().find(|f| f["name"] == ours.name) else {
            problems.push(format!("{}: not declared by ks.h", ours.name));
            continue;
        };
        if theirs["in_libks_a"] != true || theirs["inline_in_header"] == true {
            problems
                .push(format!("{}: not an export of ks.sys; it must not be imported", ours.name));
        }
        let params: Vec<(String, usize)> = theirs["params_detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().to_owned(), as_usize(&p["size"])))
            .collect();
        let ret = as_usize(&theirs["return_detail"]["size"]);
        problems.extend(compare_prototype(ours, &params, ret));
    }
    report(&problems);
}

/// The checker itself must catch a moved field, a wrong size and a missing field; otherwise the
/// tests above could pass vacuously.
#[test]
fn the_layout_checker_catches_a_changed_offset() {
    let abi = data("ks-abi.json");
    let framing = ks_sys::TYPES.iter().find(|t| t.name == "KS_FRAMING_ITEM").unwrap();
    assert!(compare_type(framing, &abi["types"]["KS_FRAMING_ITEM"]).is_empty());

    let mut fields = framing.fields.to_vec();
    fields[5].offset += 4; // Frames moved from 44 to 48
    let moved = TypeLayout { fields: Box::leak(fields.into_boxed_slice()), ..*framing };
    let problems = compare_type(&moved, &abi["types"]["KS_FRAMING_ITEM"]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("KS_FRAMING_ITEM.Frames"), "{problems:?}");

    let bigger = TypeLayout { size: framing.size + 8, ..*framing };
    assert_eq!(compare_type(&bigger, &abi["types"]["KS_FRAMING_ITEM"]).len(), 1);

    let fewer = TypeLayout { fields: &framing.fields[..9], ..*framing };
    let problems = compare_type(&fewer, &abi["types"]["KS_FRAMING_ITEM"]);
    assert_eq!(problems, ["KS_FRAMING_ITEM.FramingRange: in the oracle but not in ks-sys"]);
}

/// Every `pub struct` in the sources is either in [`ks_sys::TYPES`] or declared opaque, so no
/// structure escapes the comparison.
#[test]
fn every_structure_in_the_sources_is_checked() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let checked: BTreeSet<&str> = ks_sys::TYPES.iter().map(|t| t.name).collect();
    let mut missing = Vec::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let mut in_opaque = false;
        let mut in_local = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with("ks_opaque!") {
                in_opaque = true;
            } else if in_opaque && trimmed == "}" {
                in_opaque = false;
            }
            if trimmed.starts_with("mod local") {
                in_local = true;
            }
            if let Some(rest) = trimmed.strip_prefix("pub struct ") {
                let name: String =
                    rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                // The local NT base types stand in for wdk-sys; they are checked by assertions
                // in base.rs that hold in both configurations. The layout module's own record
                // types are not C types.
                let record_type = path.ends_with("layout.rs");
                if !in_opaque && !in_local && !record_type && !checked.contains(name.as_str()) {
                    missing.push(format!("{}: {name}", path.display()));
                }
            }
        }
    }
    assert!(missing.is_empty(), "structures not in ks_sys::TYPES: {missing:?}");
}

/// The size of an NT type as a parameter or return value of an `nt-abi.json` prototype.
fn nt_type_size(nt: &Value, c_type: &str) -> usize {
    let c_type = c_type.trim();
    if c_type == "void" {
        return 0;
    }
    if c_type.ends_with('*') || c_type == "HANDLE" {
        return 8;
    }
    let by_name = match c_type {
        "ACCESS_MASK" | "ULONG" | "LONG" => Some(4),
        "USHORT" | "WCHAR" => Some(2),
        "SIZE_T" | "ULONG_PTR" | "LONG_PTR" | "ULONG64" | "ULONGLONG" => Some(8),
        "BOOLEAN" | "UCHAR" | "CCHAR" => Some(1),
        // PVOID, PIRP, PUNICODE_STRING, POBJECT_TYPE, PCSTR, ...: pointer typedefs of wdm.h.
        p if p.starts_with('P') && p.chars().nth(1).is_some_and(|c| c.is_ascii_uppercase()) => {
            (p != "POOL_TYPE" && p != "POOL_FLAGS").then_some(8)
        }
        _ => None,
    };
    by_name
        .or_else(|| nt["types"][c_type]["size"].as_u64().map(|s| usize::try_from(s).unwrap()))
        .unwrap_or_else(|| panic!("no size known for the NT type {c_type:?}"))
}

/// The ntoskrnl imports are checked against `nt-abi.json` (a copy of the project's NT oracle,
/// compiled from the mingw-w64 `wdm.h`): every one is exported by ntoskrnl.exe and has the
/// header's parameter count and sizes and return size. (The oracle records types, not parameter
/// names; the names follow Microsoft's documentation.)
#[test]
fn every_ntoskrnl_import_matches_the_nt_oracle_and_is_exported() {
    let nt = data("nt-abi.json");
    let exports: BTreeSet<&str> = nt["exports"]["ntoskrnl.exe"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    let mut problems = Vec::new();
    let imports: Vec<&Prototype> =
        ks_sys::NT_IMPORTS.iter().flat_map(|group| group.iter()).collect();
    assert!(imports.len() >= 9, "the NT imports are all listed");
    for ours in imports {
        let name = ours.name;
        if !exports.contains(name) {
            problems.push(format!("{name}: not exported by ntoskrnl.exe; it must not be imported"));
        }
        let Some(decl) = nt["prototypes"][name]["decl"].as_str() else {
            problems.push(format!("{name}: not declared by wdm.h"));
            continue;
        };
        // "extern RET NAME (T1, T2, ...)"
        let (head, params) = decl.split_once(" (").unwrap();
        let ret = head.strip_prefix("extern ").unwrap().strip_suffix(name).unwrap();
        let params: Vec<&str> = params
            .trim_end_matches(')')
            .split(", ")
            .filter(|p| *p != "void" && *p != "...")
            .collect();
        let expected: Vec<(String, usize)> = ours
            .params
            .iter()
            .zip(&params)
            .map(|(mine, theirs)| (mine.name.to_owned(), nt_type_size(&nt, theirs)))
            .collect();
        if params.len() != ours.params.len() {
            problems.push(format!(
                "{name}: {} parameters but wdm.h has {} ({decl})",
                ours.params.len(),
                params.len()
            ));
            continue;
        }
        problems.extend(compare_prototype(ours, &expected, nt_type_size(&nt, ret)));
    }
    for name in ks_sys::NT_DATA_IMPORTS {
        if !exports.contains(name) {
            problems.push(format!("{name}: not exported by ntoskrnl.exe"));
        }
    }
    report(&problems);
}

/// The NT types a driver embeds by value have the oracle's size and alignment, and the `KDPC`
/// fields `KeInitializeDpc` fills are where the oracle puts them.
#[test]
fn embedded_nt_types_match_the_nt_oracle() {
    let nt = data("nt-abi.json");
    let types = &nt["types"];
    for (name, size, align) in [
        ("KTIMER", size_of::<ks_sys::KTIMER>(), align_of::<ks_sys::KTIMER>()),
        ("KDPC", size_of::<ks_sys::KDPC>(), align_of::<ks_sys::KDPC>()),
        ("LARGE_INTEGER", size_of::<ks_sys::LARGE_INTEGER>(), align_of::<ks_sys::LARGE_INTEGER>()),
        (
            "UNICODE_STRING",
            size_of::<ks_sys::UNICODE_STRING>(),
            align_of::<ks_sys::UNICODE_STRING>(),
        ),
        ("GUID", size_of::<ks_sys::GUID>(), align_of::<ks_sys::GUID>()),
        ("TIMER_TYPE", size_of::<ks_sys::TIMER_TYPE>(), align_of::<ks_sys::TIMER_TYPE>()),
        ("DMA_ADAPTER", size_of::<ks_sys::DMA_ADAPTER>(), align_of::<ks_sys::DMA_ADAPTER>()),
        (
            "DMA_OPERATIONS",
            size_of::<ks_sys::DMA_OPERATIONS>(),
            align_of::<ks_sys::DMA_OPERATIONS>(),
        ),
        (
            "DEVICE_DESCRIPTION",
            size_of::<ks_sys::DEVICE_DESCRIPTION>(),
            align_of::<ks_sys::DEVICE_DESCRIPTION>(),
        ),
        (
            "PHYSICAL_ADDRESS",
            size_of::<ks_sys::PHYSICAL_ADDRESS>(),
            align_of::<ks_sys::PHYSICAL_ADDRESS>(),
        ),
        (
            "PROCESSOR_NUMBER",
            size_of::<ks_sys::PROCESSOR_NUMBER>(),
            align_of::<ks_sys::PROCESSOR_NUMBER>(),
        ),
    ] {
        assert_eq!(as_usize(&types[name]["size"]), size, "sizeof({name})");
        assert_eq!(as_usize(&types[name]["align"]), align, "alignof({name})");
    }
    let fields = &nt["fields"];
    assert_eq!(
        as_usize(&fields["KDPC.DeferredRoutine"]["offset"]),
        ks_sys::KDPC_DEFERRED_ROUTINE_OFFSET
    );
    assert_eq!(
        as_usize(&fields["KDPC.DeferredContext"]["offset"]),
        ks_sys::KDPC_DEFERRED_CONTEXT_OFFSET
    );
    assert_eq!(
        as_usize(&fields["DRIVER_OBJECT.DriverUnload"]["offset"]),
        ks_sys::DRIVER_OBJECT_DRIVER_UNLOAD_OFFSET
    );
    // The DMA structures a driver fills or calls through, field by field.
    macro_rules! offsets {
        ($($ty:ident . $field:ident),* $(,)?) => {
            [$((concat!(stringify!($ty), ".", stringify!($field)), core::mem::offset_of!(ks_sys::$ty, $field))),*]
        };
    }
    for (name, ours) in offsets![
        DMA_ADAPTER.Version,
        DMA_ADAPTER.Size,
        DMA_ADAPTER.DmaOperations,
        DMA_OPERATIONS.Size,
        DMA_OPERATIONS.PutDmaAdapter,
        DMA_OPERATIONS.AllocateCommonBuffer,
        DMA_OPERATIONS.FreeCommonBuffer,
        DMA_OPERATIONS.AllocateAdapterChannel,
        DMA_OPERATIONS.FlushAdapterBuffers,
        DMA_OPERATIONS.FreeAdapterChannel,
        DMA_OPERATIONS.FreeMapRegisters,
        DMA_OPERATIONS.MapTransfer,
        DMA_OPERATIONS.GetDmaAlignment,
        DMA_OPERATIONS.ReadDmaCounter,
        DMA_OPERATIONS.GetScatterGatherList,
        DMA_OPERATIONS.PutScatterGatherList,
        DMA_OPERATIONS.CalculateScatterGatherList,
        DMA_OPERATIONS.BuildScatterGatherList,
        DMA_OPERATIONS.BuildMdlFromScatterGatherList,
        DEVICE_DESCRIPTION.Version,
        DEVICE_DESCRIPTION.Master,
        DEVICE_DESCRIPTION.ScatterGather,
        DEVICE_DESCRIPTION.DemandMode,
        DEVICE_DESCRIPTION.AutoInitialize,
        DEVICE_DESCRIPTION.Dma32BitAddresses,
        DEVICE_DESCRIPTION.IgnoreCount,
        DEVICE_DESCRIPTION.Reserved1,
        DEVICE_DESCRIPTION.Dma64BitAddresses,
        DEVICE_DESCRIPTION.BusNumber,
        DEVICE_DESCRIPTION.DmaChannel,
        DEVICE_DESCRIPTION.InterfaceType,
        DEVICE_DESCRIPTION.DmaWidth,
        DEVICE_DESCRIPTION.DmaSpeed,
        DEVICE_DESCRIPTION.MaximumLength,
        DEVICE_DESCRIPTION.DmaPort,
        PROCESSOR_NUMBER.Group,
        PROCESSOR_NUMBER.Number,
    ] {
        assert_eq!(as_usize(&fields[name]["offset"]), ours, "{name} in nt-abi.json");
    }
}

/// The NT constants ks-sys defines that the oracle records as enumerators.
#[test]
fn processor_modes_match_the_nt_oracle() {
    let nt = data("nt-abi.json");
    assert_eq!(nt["types"]["KPROCESSOR_MODE"]["size"], 1);
    assert_eq!(size_of::<ks_sys::KPROCESSOR_MODE>(), 1);
    assert_eq!((ks_sys::KernelMode, ks_sys::UserMode), (0, 1), "MODE of wdm.h");
}

/// The IRP offsets `ks_sys::irp` uses, as `offsetof` gives them for the x64 `wdm.h` (measured with
/// x86_64-w64-mingw32-gcc 12 over the mingw-w64 `ntddk.h`; they are also the offsets WinDbg shows
/// for `nt!_IRP` and `nt!_IO_STACK_LOCATION` on x64).
#[test]
fn irp_offsets_are_the_x64_layout() {
    use ks_sys::irp::*;
    let measured = [
        ("sizeof(IRP)", IRP_SIZE, 208),
        ("IRP.IoStatus.Status", IRP_IO_STATUS_STATUS_OFFSET, 48),
        ("IRP.IoStatus.Information", IRP_IO_STATUS_INFORMATION_OFFSET, 56),
        ("IRP.Tail.Overlay.CurrentStackLocation", IRP_CURRENT_STACK_LOCATION_OFFSET, 184),
        ("sizeof(IO_STACK_LOCATION)", IO_STACK_LOCATION_SIZE, 72),
        (
            "IO_STACK_LOCATION.Parameters.DeviceIoControl.OutputBufferLength",
            STACK_OUTPUT_BUFFER_LENGTH_OFFSET,
            8,
        ),
        (
            "IO_STACK_LOCATION.Parameters.DeviceIoControl.InputBufferLength",
            STACK_INPUT_BUFFER_LENGTH_OFFSET,
            16,
        ),
        ("IO_STACK_LOCATION.FileObject", STACK_FILE_OBJECT_OFFSET, 48),
    ];
    for (name, ours, compiled) in measured {
        assert_eq!(ours, compiled, "{name}");
    }
    let nt = data("nt-abi.json");
    let fields = &nt["fields"];
    for (name, ours) in [
        ("IRP.IoStatus.Status", IRP_IO_STATUS_STATUS_OFFSET),
        ("IRP.IoStatus.Information", IRP_IO_STATUS_INFORMATION_OFFSET),
        ("IRP.RequestorMode", IRP_REQUESTOR_MODE_OFFSET),
        ("IRP.Tail.Overlay.CurrentStackLocation", IRP_CURRENT_STACK_LOCATION_OFFSET),
        (
            "IO_STACK_LOCATION.Parameters.DeviceIoControl.OutputBufferLength",
            STACK_OUTPUT_BUFFER_LENGTH_OFFSET,
        ),
        (
            "IO_STACK_LOCATION.Parameters.DeviceIoControl.InputBufferLength",
            STACK_INPUT_BUFFER_LENGTH_OFFSET,
        ),
        ("IO_STACK_LOCATION.FileObject", STACK_FILE_OBJECT_OFFSET),
    ] {
        assert_eq!(as_usize(&fields[name]["offset"]), ours, "{name} in nt-abi.json");
    }
    assert_eq!(as_usize(&nt["types"]["IRP"]["size"]), IRP_SIZE);
    assert_eq!(as_usize(&nt["types"]["IO_STACK_LOCATION"]["size"]), IO_STACK_LOCATION_SIZE);
}
