//! `ksalloc framing decode`: field-by-field rendering and validation of a framing.

use std::fmt::Write as _;

use ks_allocator::framing::{
    BusType, Finding, Framing, FramingExView, FramingItem, FramingRange, ItemFlags, LEGACY_LEN,
    LegacyRole, MemoryType, OptionFlags, ParseError, RequirementFlags, Severity,
};
use serde_json::{Value, json};

use crate::input;

/// Exit status: the framing is valid (warnings allowed).
pub const EXIT_VALID: u8 = 0;
/// Exit status: the framing has errors.
pub const EXIT_INVALID: u8 = 1;
/// Exit status: the input cannot be read or parsed.
pub const EXIT_UNREADABLE: u8 = 2;

/// What the bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A `KSALLOCATOR_FRAMING_EX`.
    Extended,
    /// A legacy `KSALLOCATOR_FRAMING` property value (`RequirementsFlags`).
    Legacy,
    /// A legacy `KSALLOCATOR_FRAMING` in an allocator create request (`OptionsFlags`).
    Request {
        /// Accept the ReactOS superset of option bits.
        lenient: bool,
    },
}

/// A decoded framing: the text rendering, the same as one JSON object, and the exit status.
pub struct Report {
    /// Every field by name, then the verdict and each finding.
    pub text: String,
    /// The verdict and each error, for standard error when the framing is invalid.
    pub errors: String,
    /// The same as one JSON object.
    pub json: Value,
    /// [`EXIT_VALID`] or [`EXIT_INVALID`].
    pub status: u8,
}

/// Decodes `bytes` as `kind`.
///
/// An extended framing may be given in any form `framing negotiate` reads (raw bytes, JSON, a
/// `DECLARE_SIMPLE_FRAMING_EX` line); a legacy one must be its exact 24 bytes.
///
/// # Errors
///
/// Why the bytes are not a framing of that kind.
pub fn decode(kind: Kind, bytes: &[u8]) -> Result<Report, String> {
    let mut findings = Vec::new();
    let mut text = String::new();
    let mut json = match kind {
        Kind::Extended if input::is_text(bytes) => {
            let owned = input::read(bytes)?;
            let view = owned.view().ok_or("a framing needs at least one item")?;
            render_ex(&view, &mut text);
            view.validate(|finding| findings.push(finding));
            ex_json(&view)
        }
        Kind::Extended => {
            let view = FramingExView::parse(bytes).map_err(|e| {
                let hint = if bytes.len() == LEGACY_LEN && Framing::parse(bytes).is_ok() {
                    "; 24 bytes is a KSALLOCATOR_FRAMING: decode it with --legacy (the \
                     ALLOCATORFRAMING property value) or --request (an allocator create request)"
                } else {
                    ""
                };
                format!("{}{hint}", describe(&e, "KSALLOCATOR_FRAMING_EX"))
            })?;
            render_ex(&view, &mut text);
            view.validate(|finding| findings.push(finding));
            if view.trailing_len() > 0 {
                let _ = writeln!(
                    text,
                    "note: {} bytes after the framing were not read",
                    view.trailing_len()
                );
            }
            let mut json = ex_json(&view);
            json["trailing_bytes"] = view.trailing_len().into();
            json
        }
        Kind::Legacy | Kind::Request { .. } => {
            if bytes.len() > LEGACY_LEN {
                let hint = if FramingExView::parse(bytes).is_ok() {
                    " (it parses as a KSALLOCATOR_FRAMING_EX: decode it without --legacy or --request)"
                } else {
                    ""
                };
                return Err(format!(
                    "not a KSALLOCATOR_FRAMING: {} bytes, but the structure is exactly {LEGACY_LEN}{hint}",
                    bytes.len()
                ));
            }
            let framing = Framing::parse(bytes).map_err(|e| describe(&e, "KSALLOCATOR_FRAMING"))?;
            let role = match kind {
                Kind::Request { lenient: false } => LegacyRole::Request,
                Kind::Request { lenient: true } => LegacyRole::RequestLenient,
                _ => LegacyRole::Query,
            };
            render_legacy(&framing, role, &mut text);
            framing.validate(role, |finding| findings.push(finding));
            legacy_json(&framing, role)
        }
    };
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = findings.len() - errors;
    let verdict = if errors == 0 { "valid" } else { "INVALID" };
    let verdict_line = format!(
        "{verdict}: {errors} error{}, {warnings} warning{}",
        plural(errors),
        plural(warnings)
    );
    let _ = writeln!(text, "{verdict_line}");
    for finding in &findings {
        let _ = writeln!(text, "{finding}");
    }
    let mut error_text = String::new();
    if errors > 0 {
        let _ = writeln!(error_text, "{verdict_line}");
        for finding in findings.iter().filter(|f| f.severity == Severity::Error) {
            let _ = writeln!(error_text, "{finding}");
        }
    }
    json["valid"] = (errors == 0).into();
    json["errors"] = errors.into();
    json["warnings"] = warnings.into();
    json["findings"] = findings.iter().map(finding_json).collect();
    let status = if errors == 0 { EXIT_VALID } else { EXIT_INVALID };
    Ok(Report { text, errors: error_text, json, status })
}

fn finding_json(finding: &Finding) -> Value {
    json!({
        "severity": match finding.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        "item": finding.item,
        "field": finding.field,
        "message": finding.problem.to_string(),
    })
}

fn range_json(range: FramingRange) -> Value {
    json!({ "min": range.min_frame_size, "max": range.max_frame_size, "stepping": range.stepping })
}

fn names<'a>(names: impl Iterator<Item = (&'a str, u32)>) -> Vec<&'a str> {
    names.map(|(name, _)| name).collect()
}

fn ex_json(view: &FramingExView<'_>) -> Value {
    let header = view.header();
    let c = header.output_compression;
    let items: Vec<Value> = view
        .items()
        .map(|item| {
            let mut value = json!({
                "memory_type": item.memory_type.to_string(),
                "memory_type_guid": item.memory_type.0.to_string(),
                "bus_type": item.bus_type.to_string(),
                "bus_type_guid": item.bus_type.0.to_string(),
                "memory_flags": item.memory_flags,
                "bus_flags": item.bus_flags,
                "flags": item.flags.bits(),
                "flag_names": names(item.flags.iter_names().map(|(n, f)| (n, f.bits()))),
                "frames": item.frames,
                "memory_type_weight": item.memory_type_weight,
                "physical_range": range_json(item.physical_range),
                "optimal_range": range_json(item.framing_range.range),
                "in_place_weight": item.framing_range.in_place_weight,
                "not_in_place_weight": item.framing_range.not_in_place_weight,
            });
            if item.flags.contains(ItemFlags::BUFFER_2D_REQUIRED) {
                value["frame_pitch"] = item.frame_pitch().into();
            } else {
                value["file_alignment"] = item.file_alignment.into();
            }
            value
        })
        .collect();
    json!({
        "structure": "KSALLOCATOR_FRAMING_EX",
        "bytes": view.byte_len(),
        "count_items": header.count_items,
        "pin_flags": header.pin_flags,
        "output_compression": { "numerator": c.numerator, "denominator": c.denominator, "margin": c.constant_margin },
        "pin_weight": header.pin_weight,
        "items": items,
    })
}

fn legacy_json(framing: &Framing, role: LegacyRole) -> Value {
    let (role_name, flag_names) = match role {
        LegacyRole::Query => {
            let flags = framing.requirements();
            ("query", names(flags.iter_names().map(|(n, f)| (n, f.bits()))))
        }
        LegacyRole::Request | LegacyRole::RequestLenient => {
            let flags = framing.options();
            ("request", names(flags.iter_names().map(|(n, f)| (n, f.bits()))))
        }
    };
    json!({
        "structure": "KSALLOCATOR_FRAMING",
        "role": role_name,
        "flags": framing.flags,
        "flag_names": flag_names,
        "pool_type": framing.pool_type.0,
        "pool_type_name": framing.pool_type.to_string(),
        "frames": framing.frames,
        "frame_size": framing.frame_size,
        "file_alignment": framing.file_alignment,
        "reserved": framing.reserved,
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn describe(error: &ParseError, what: &str) -> String {
    format!("not a {what}: {error}")
}

fn field(out: &mut String, indent: usize, name: &str, value: impl std::fmt::Display) {
    let width = 26 - indent;
    let _ = writeln!(out, "{:indent$}{name:<width$} {value}", "");
}

/// `0x80000002 KSALLOCATOR_REQUIREMENTF_SYSTEM_MEMORY | …`, unknown bits last in hex.
fn flag_names<'a>(
    bits: u32,
    names: impl Iterator<Item = (&'a str, u32)>,
    prefix: impl Fn(&str, u32) -> String,
) -> String {
    let mut parts = Vec::new();
    let mut known = 0;
    for (name, bit) in names {
        parts.push(prefix(name, bit));
        known |= bit;
    }
    if bits & !known != 0 {
        parts.push(format!("{:#010x}", bits & !known));
    }
    if parts.is_empty() {
        format!("{bits:#010x}")
    } else {
        format!("{bits:#010x} {}", parts.join(" | "))
    }
}

fn item_flags(flags: ItemFlags) -> String {
    let requirement_bits =
        RequirementFlags::all().bits() & !ks_sys::KSALLOCATOR_FLAG_PARTIAL_READ_SUPPORT;
    flag_names(flags.bits(), flags.iter_names().map(|(n, f)| (n, f.bits())), |name, bit| {
        if bit & requirement_bits != 0 {
            format!("KSALLOCATOR_REQUIREMENTF_{name}")
        } else if bit == ItemFlags::BUFFER_2D_REQUIRED.bits() {
            "KSALLOCATOR_FLAG_2D_BUFFER_REQUIRED".to_owned()
        } else {
            format!("KSALLOCATOR_FLAG_{name}")
        }
    })
}

fn requirement_flags(bits: u32) -> String {
    let flags = RequirementFlags::from_bits_retain(bits);
    flag_names(bits, flags.iter_names().map(|(n, f)| (n, f.bits())), |name, _| {
        format!("KSALLOCATOR_REQUIREMENTF_{name}")
    })
}

pub fn option_flags(bits: u32) -> String {
    let flags = OptionFlags::from_bits_retain(bits);
    flag_names(bits, flags.iter_names().map(|(n, f)| (n, f.bits())), |name, _| {
        format!("KSALLOCATOR_OPTIONF_{name}")
    })
}

fn memory_type(value: MemoryType) -> String {
    match value.c_name() {
        Some(c_name) => format!("{value} ({c_name} {{{}}})", value.0),
        None => format!("{{{}}} (not a KSMEMORY_TYPE_* GUID: device-specific memory)", value.0),
    }
}

fn bus_type(value: BusType) -> String {
    match value.c_name() {
        Some(c_name) => format!("{value} ({c_name} {{{}}})", value.0),
        None => format!("{{{}}} (not a known GUID_BUS_TYPE_*)", value.0),
    }
}

pub fn alignment(value: u32) -> String {
    if value & value.wrapping_add(1) == 0 {
        let bytes = u64::from(value) + 1;
        let name = match value {
            ks_sys::FILE_BYTE_ALIGNMENT => " FILE_BYTE_ALIGNMENT",
            ks_sys::FILE_WORD_ALIGNMENT => " FILE_WORD_ALIGNMENT",
            ks_sys::FILE_LONG_ALIGNMENT => " FILE_LONG_ALIGNMENT",
            ks_sys::FILE_QUAD_ALIGNMENT => " FILE_QUAD_ALIGNMENT",
            ks_sys::FILE_OCTA_ALIGNMENT => " FILE_OCTA_ALIGNMENT",
            ks_sys::FILE_32_BYTE_ALIGNMENT => " FILE_32_BYTE_ALIGNMENT",
            ks_sys::FILE_64_BYTE_ALIGNMENT => " FILE_64_BYTE_ALIGNMENT",
            ks_sys::FILE_128_BYTE_ALIGNMENT => " FILE_128_BYTE_ALIGNMENT",
            ks_sys::FILE_256_BYTE_ALIGNMENT => " FILE_256_BYTE_ALIGNMENT",
            ks_sys::FILE_512_BYTE_ALIGNMENT => " FILE_512_BYTE_ALIGNMENT",
            _ => "",
        };
        format!("{value:#010x} ({bytes}-byte{name})")
    } else {
        format!("{value:#010x} (not an alignment mask)")
    }
}

fn range(range: FramingRange) -> String {
    format!("{}..={} stepping {}", range.min_frame_size, range.max_frame_size, range.stepping)
}

fn render_item(index: usize, item: &FramingItem, out: &mut String) {
    let _ = writeln!(out, "  FramingItem[{index}]");
    field(out, 4, "MemoryType", memory_type(item.memory_type));
    field(out, 4, "BusType", bus_type(item.bus_type));
    field(out, 4, "MemoryFlags", requirement_flags(item.memory_flags));
    field(out, 4, "BusFlags", format_args!("{:#010x}", item.bus_flags));
    field(out, 4, "Flags", item_flags(item.flags));
    field(out, 4, "Frames", item.frames);
    if item.flags.contains(ItemFlags::BUFFER_2D_REQUIRED) {
        field(out, 4, "FramePitch", item.frame_pitch());
    } else {
        field(out, 4, "FileAlignment", alignment(item.file_alignment));
    }
    field(out, 4, "MemoryTypeWeight", item.memory_type_weight);
    field(out, 4, "PhysicalRange", range(item.physical_range));
    field(out, 4, "FramingRange", range(item.framing_range.range));
    field(out, 4, "  InPlaceWeight", item.framing_range.in_place_weight);
    field(out, 4, "  NotInPlaceWeight", item.framing_range.not_in_place_weight);
}

fn render_ex(view: &FramingExView<'_>, out: &mut String) {
    let header = view.header();
    let count = view.count();
    let _ = writeln!(
        out,
        "KSALLOCATOR_FRAMING_EX: {} bytes, {count} item{}",
        view.byte_len(),
        plural(count)
    );
    field(out, 2, "CountItems", header.count_items);
    field(out, 2, "PinFlags", format_args!("{:#010x}", header.pin_flags));
    let c = header.output_compression;
    let identity = if c.is_identity() { " (identity)" } else { "" };
    field(
        out,
        2,
        "OutputCompression",
        format_args!("{}/{} + {}{identity}", c.numerator, c.denominator, c.constant_margin),
    );
    field(out, 2, "PinWeight", header.pin_weight);
    for (index, item) in view.items().enumerate() {
        render_item(index, &item, out);
    }
}

fn render_legacy(framing: &Framing, role: LegacyRole, out: &mut String) {
    let (what, flags_name, flags) = match role {
        LegacyRole::Query => {
            ("legacy property value", "RequirementsFlags", requirement_flags(framing.flags))
        }
        LegacyRole::Request | LegacyRole::RequestLenient => {
            ("allocator create request", "OptionsFlags", option_flags(framing.flags))
        }
    };
    let _ = writeln!(out, "KSALLOCATOR_FRAMING ({what}): {LEGACY_LEN} bytes");
    field(out, 2, flags_name, flags);
    field(out, 2, "PoolType", format_args!("{} ({})", framing.pool_type.0, framing.pool_type));
    field(out, 2, "Frames", framing.frames);
    field(out, 2, "FrameSize", framing.frame_size);
    field(out, 2, "FileAlignment", alignment(framing.file_alignment));
    field(out, 2, "Reserved", framing.reserved);
}
