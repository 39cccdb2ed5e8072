//! Reading a framing in any of the forms `ksalloc framing negotiate` accepts:
//!
//! - the raw bytes of a `KSALLOCATOR_FRAMING_EX` (what `framing decode` reads; recognised by the
//!   NUL bytes every binary framing has);
//! - a JSON description (text starting with `{`), documented in the book's test engineer guide;
//! - a `DECLARE_SIMPLE_FRAMING_EX(...)` line pasted from C source, with or without the macro
//!   name and the first (variable name) argument.
//!
//! Every error in a text input names the line and the field.

use std::fmt::Write as _;

use ks_allocator::framing::{
    BusType, Compression, FramingExView, FramingItem, FramingRange, Guid, ItemFlags, MemoryType,
    RequirementFlags,
};
use serde::Deserialize;

/// A framing read from input: its items and the upstream output compression.
pub struct Owned {
    /// Output compression.
    pub compression: Compression,
    /// Items, at least one.
    pub items: Vec<FramingItem>,
}

impl Owned {
    /// The view the library works on.
    pub fn view(&self) -> Option<FramingExView<'_>> {
        FramingExView::from_parts(self.compression, &self.items)
    }
}

/// Reads `bytes` in whichever form they are in.
///
/// Text is JSON when it starts with `{`, or when it is any other JSON value (an array, a string,
/// a number, `true`, `false`, `null`: refused as not an object), after a UTF-8 byte order mark if
/// there is one; anything else is a macro line.
pub fn read(bytes: &[u8]) -> Result<Owned, String> {
    let text = if is_text(bytes) { std::str::from_utf8(bytes).ok() } else { None };
    let Some(text) = text else { return raw(bytes) };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim_start().starts_with('{') {
        return json(text);
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        let kind = match value {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a boolean",
            serde_json::Value::Null | serde_json::Value::Object(_) => "null",
        };
        return Err(format!(
            "line 1: a JSON framing is an object with \"items\", not {kind} (see the JSON form in \
             the book's test engineer guide)"
        ));
    }
    if text.trim_start().starts_with('[') || text.trim_start().starts_with('"') {
        // Broken JSON of another shape: its syntax error, not a macro-line message.
        return json(text);
    }
    declare_simple(text)
}

/// Whether `bytes` are a text input (JSON or a macro line) rather than raw framing bytes: every
/// binary framing has NUL bytes (its high-order bytes are 0), text has none. Empty or blank
/// input is neither; it is read as (too short) raw bytes.
pub fn is_text(bytes: &[u8]) -> bool {
    !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok_and(|text| !text.trim().is_empty())
}

fn raw(bytes: &[u8]) -> Result<Owned, String> {
    let view =
        FramingExView::parse(bytes).map_err(|e| format!("not a KSALLOCATOR_FRAMING_EX: {e}"))?;
    Ok(Owned { compression: view.header().output_compression, items: view.items().collect() })
}

const MEMORY_TYPES: [MemoryType; 6] = [
    MemoryType::DONT_CARE,
    MemoryType::SYSTEM,
    MemoryType::USER,
    MemoryType::KERNEL_PAGED,
    MemoryType::KERNEL_NONPAGED,
    MemoryType::DEVICE_UNKNOWN,
];
const BUS_TYPES: [BusType; 5] =
    [BusType::DONT_CARE, BusType::PCI, BusType::USB, BusType::IEEE1394, BusType::AVC];

fn guid(text: &str) -> Option<Guid> {
    let hex: String =
        text.trim_matches(|c| c == '{' || c == '}').chars().filter(|c| *c != '-').collect();
    (hex.len() == 32).then(|| u128::from_str_radix(&hex, 16).ok().map(Guid::from_u128)).flatten()
}

fn memory_type(text: &str) -> Result<MemoryType, String> {
    let text = text.trim();
    if text == "KSMEMORY_TYPE_WILDCARD" || text == "GUID_NULL" {
        return Ok(MemoryType::DONT_CARE);
    }
    MEMORY_TYPES
        .into_iter()
        .find(|m| m.name() == Some(text) || m.c_name() == Some(text))
        .or_else(|| guid(text).map(MemoryType))
        .ok_or_else(|| {
            let names: Vec<&str> = MEMORY_TYPES.iter().filter_map(|m| m.name()).collect();
            format!("unknown memory type {text:?} (expected one of {}, a KSMEMORY_TYPE_* name, or a GUID)", names.join(", "))
        })
}

fn bus_type(text: &str) -> Result<BusType, String> {
    let text = text.trim();
    BUS_TYPES
        .into_iter()
        .find(|b| b.name() == Some(text) || b.c_name() == Some(text))
        .or_else(|| guid(text).map(BusType))
        .ok_or_else(|| format!("unknown bus type {text:?} (expected DontCare, Pci, Usb, Ieee1394, Avc, a GUID_BUS_TYPE_* name, or a GUID)"))
}

/// One flag name: short (`SYSTEM_MEMORY`) or with its header prefix, or a number.
fn flag(text: &str) -> Result<ItemFlags, String> {
    let text = text.trim();
    if let Some(value) = number(text) {
        return u32::try_from(value)
            .map(ItemFlags::from_bits_retain)
            .map_err(|_| format!("flag value {text} does not fit 32 bits"));
    }
    let short = text
        .strip_prefix("KSALLOCATOR_REQUIREMENTF_")
        .or_else(|| text.strip_prefix("KSALLOCATOR_FLAG_"))
        .unwrap_or(text);
    let short = if short == "2D_BUFFER_REQUIRED" { "BUFFER_2D_REQUIRED" } else { short };
    ItemFlags::from_name(short)
        .or_else(|| {
            RequirementFlags::from_name(short).map(|r| ItemFlags::from_bits_retain(r.bits()))
        })
        .ok_or_else(|| format!("unknown flag {text:?}"))
}

/// A decimal or hex integer literal with optional C suffixes.
fn number(text: &str) -> Option<u64> {
    let text = text.trim().trim_end_matches(['u', 'U', 'l', 'L']);
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        text.parse().ok()
    }
}

/// The value of a named constant an integer argument may use.
fn named_constant(name: &str) -> Option<u64> {
    let value = match name {
        "PAGE_SIZE" => ks_sys::PAGE_SIZE,
        "FILE_BYTE_ALIGNMENT" => ks_sys::FILE_BYTE_ALIGNMENT,
        "FILE_WORD_ALIGNMENT" => ks_sys::FILE_WORD_ALIGNMENT,
        "FILE_LONG_ALIGNMENT" => ks_sys::FILE_LONG_ALIGNMENT,
        "FILE_QUAD_ALIGNMENT" => ks_sys::FILE_QUAD_ALIGNMENT,
        "FILE_OCTA_ALIGNMENT" => ks_sys::FILE_OCTA_ALIGNMENT,
        "FILE_32_BYTE_ALIGNMENT" => ks_sys::FILE_32_BYTE_ALIGNMENT,
        "FILE_64_BYTE_ALIGNMENT" => ks_sys::FILE_64_BYTE_ALIGNMENT,
        "FILE_128_BYTE_ALIGNMENT" => ks_sys::FILE_128_BYTE_ALIGNMENT,
        "FILE_256_BYTE_ALIGNMENT" => ks_sys::FILE_256_BYTE_ALIGNMENT,
        "FILE_512_BYTE_ALIGNMENT" => ks_sys::FILE_512_BYTE_ALIGNMENT,
        _ => return None,
    };
    Some(u64::from(value))
}

/// Evaluates an integer expression of literals, named constants, `+`, `-`, `*`, `/` and
/// parentheses, as C source writes frame sizes (`2 * PAGE_SIZE`, `320 * 240 * 2`).
fn expression(text: &str) -> Result<u32, String> {
    struct Parser<'a> {
        tokens: Vec<&'a str>,
        at: usize,
    }
    impl<'a> Parser<'a> {
        fn peek(&self) -> Option<&'a str> {
            self.tokens.get(self.at).copied()
        }
        fn sum(&mut self) -> Result<u64, String> {
            let mut value = self.product()?;
            while let Some(op @ ("+" | "-")) = self.peek() {
                self.at += 1;
                let rhs = self.product()?;
                value = if op == "+" { value.checked_add(rhs) } else { value.checked_sub(rhs) }
                    .ok_or("overflow")?;
            }
            Ok(value)
        }
        fn product(&mut self) -> Result<u64, String> {
            let mut value = self.atom()?;
            while let Some(op @ ("*" | "/")) = self.peek() {
                self.at += 1;
                let rhs = self.atom()?;
                value = if op == "*" { value.checked_mul(rhs) } else { value.checked_div(rhs) }
                    .ok_or("overflow or division by 0")?;
            }
            Ok(value)
        }
        fn atom(&mut self) -> Result<u64, String> {
            let token = self.peek().ok_or("the expression ends too early")?;
            self.at += 1;
            if token == "(" {
                let value = self.sum()?;
                if self.peek() != Some(")") {
                    return Err("missing ')'".to_owned());
                }
                self.at += 1;
                return Ok(value);
            }
            number(token)
                .or_else(|| named_constant(token))
                .ok_or_else(|| format!("cannot read {token:?}"))
        }
    }
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if c.is_ascii_alphanumeric() || c == '_' {
            start.get_or_insert(i);
            continue;
        }
        if let Some(s) = start.take() {
            tokens.push(&text[s..i]);
        }
        if "+-*/()".contains(c) {
            tokens.push(&text[i..=i]);
        } else if !c.is_whitespace() {
            return Err(format!("unexpected {c:?}"));
        }
    }
    if let Some(s) = start {
        tokens.push(&text[s..]);
    }
    let mut parser = Parser { tokens, at: 0 };
    let value = parser.sum()?;
    if parser.at != parser.tokens.len() {
        return Err(format!("unexpected {:?}", parser.tokens[parser.at]));
    }
    u32::try_from(value).map_err(|_| format!("{value} does not fit 32 bits"))
}

/// Splits at top-level commas: each argument, trimmed, with the byte offset in `text` where it
/// starts.
fn arguments(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    let mut push = |start: usize, end: usize| {
        let raw = &text[start..end];
        let lead = raw.len() - raw.trim_start().len();
        out.push((start + lead, raw.trim()));
    };
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                push(start, i);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(start, text.len());
    out
}

/// The 1-based line of byte `at` of `text`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// The byte range of the text between the parentheses of the macro whose name is at byte `at`.
fn macro_body(text: &str, at: usize) -> Result<std::ops::Range<usize>, String> {
    const MACRO: &str = "DECLARE_SIMPLE_FRAMING_EX";
    let line = line_of(text, at);
    let after = at + MACRO.len();
    let open = after
        + text[after..].find('(').ok_or_else(|| format!("line {line}: {MACRO} without '('"))?;
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return Ok(open + 1..open + i);
                }
            }
            _ => {}
        }
    }
    Err(format!("line {line}: {MACRO}( is never closed"))
}

/// `DECLARE_SIMPLE_FRAMING_EX(Name, MemoryType, Flags, Frames, Alignment, Min, Max)`, or its six
/// arguments after the name.
fn declare_simple(text: &str) -> Result<Owned, String> {
    const MACRO: &str = "DECLARE_SIMPLE_FRAMING_EX";
    let body = if let Some(at) = text.find(MACRO) {
        macro_body(text, at)?
    } else {
        let trimmed = text.trim_end().trim_end_matches(';');
        let start = trimmed.len() - trimmed.trim_start().len();
        start..trimmed.len()
    };
    let mut args = arguments(&text[body.clone()]);
    if args.len() == 7 {
        args.remove(0);
    }
    let names = ["MemoryType", "Flags", "Frames", "Alignment", "MinFrameSize", "MaxFrameSize"];
    let [memory, flags, frames, alignment, min, max] = args[..] else {
        return Err(format!(
            "line {}: expected the arguments of {MACRO}({}) but found {} argument(s); \
             a text input that is not JSON must be a {MACRO} line",
            line_of(text, body.start),
            names.join(", "),
            args.len()
        ));
    };
    // Each error names the line its argument starts on.
    let field = |index: usize, (at, _): (usize, &str), error: String| {
        format!("line {}: {}: {error}", line_of(text, body.start + at), names[index])
    };
    let memory_name = memory
        .1
        .strip_prefix("STATICGUIDOF")
        .map_or(memory.1, |rest| rest.trim().trim_start_matches('(').trim_end_matches(')'));
    let memory_value = memory_type(memory_name).map_err(|e| field(0, memory, e))?;
    let mut item_flags = ItemFlags::empty();
    for part in flags.1.split('|') {
        item_flags |= flag(part).map_err(|e| field(1, flags, e))?;
    }
    let number = |index: usize, argument: (usize, &str)| {
        expression(argument.1).map_err(|e| field(index, argument, e))
    };
    let (frames, alignment) = (number(2, frames)?, number(3, alignment)?);
    let (min, max) = (number(4, min)?, number(5, max)?);
    let memory = memory_value;
    let item = FramingItem::new(memory)
        .with_flags(item_flags)
        .with_frames(frames)
        .with_alignment(alignment)
        .with_optimal_range(FramingRange::new(min, max));
    Ok(Owned { compression: Compression::IDENTITY, items: vec![item] })
}

/// A number, or a name the field knows.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrName {
    Number(u64),
    Name(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRange {
    min: u32,
    max: u32,
    #[serde(default = "one")]
    stepping: u32,
}

const fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCompression {
    numerator: u32,
    denominator: u32,
    #[serde(default)]
    margin: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonItem {
    #[serde(deserialize_with = "de_memory")]
    memory_type: MemoryType,
    #[serde(default = "any_bus", deserialize_with = "de_bus")]
    bus_type: BusType,
    #[serde(default = "no_flags", deserialize_with = "de_flags")]
    flags: ItemFlags,
    #[serde(default)]
    frames: u32,
    #[serde(default = "byte_alignment", deserialize_with = "de_alignment")]
    alignment: u32,
    #[serde(default)]
    weight: u32,
    #[serde(default)]
    physical_range: Option<JsonRange>,
    #[serde(default)]
    optimal_range: Option<JsonRange>,
}

const fn no_flags() -> ItemFlags {
    ItemFlags::empty()
}

const fn any_bus() -> BusType {
    BusType::DONT_CARE
}

const fn byte_alignment() -> u32 {
    0
}

fn de_memory<'de, D: serde::Deserializer<'de>>(d: D) -> Result<MemoryType, D::Error> {
    memory_type(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn de_bus<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BusType, D::Error> {
    bus_type(&String::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn de_flags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ItemFlags, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flags {
        Value(u32),
        Names(Vec<String>),
    }
    match Flags::deserialize(d)? {
        Flags::Value(bits) => Ok(ItemFlags::from_bits_retain(bits)),
        Flags::Names(names) => names.iter().try_fold(ItemFlags::empty(), |all, name| {
            Ok(all | flag(name).map_err(serde::de::Error::custom)?)
        }),
    }
}

fn de_alignment<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match NumberOrName::deserialize(d)? {
        NumberOrName::Number(value) => {
            u32::try_from(value).map_err(|_| serde::de::Error::custom("does not fit 32 bits"))
        }
        NumberOrName::Name(name) => expression(&name).map_err(serde::de::Error::custom),
    }
}

/// A framing in the JSON form (the book's test engineer guide): `compression` and `items`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonFraming {
    #[serde(default)]
    compression: Option<JsonCompression>,
    items: Vec<JsonItem>,
}

/// The line and column of the last `"key"` before line `line`, column `column` of `text`.
fn key_position(text: &str, line: usize, column: usize, key: &str) -> Option<(usize, usize)> {
    let line_start: usize =
        text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let end = (line_start + column).min(text.len());
    let at = text.get(..end)?.rfind(&format!("\"{key}\""))?;
    let key_line = line_of(text, at);
    let key_line_start = text[..at].rfind('\n').map_or(0, |newline| newline + 1);
    Some((key_line, text[key_line_start..at].chars().count() + 1))
}

/// `line L: [path: ]message (column C)`: serde_json ends its message with the position; the
/// line goes in front, where the other formats put it, and the column at the end.
fn json_error(error: &serde_json::Error, path: Option<&str>) -> String {
    let mut message = format!("line {}: ", error.line());
    if let Some(path) = path {
        let _ = write!(message, "{path}: ");
    }
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    match text.strip_suffix(&suffix) {
        Some(text) => {
            let _ = write!(message, "{text} (column {})", error.column());
        }
        None => message.push_str(&text),
    }
    message
}

/// Parses `text` as one JSON value of type `T`: an error names the line, the field's path and
/// the column of the field's key; anything after the value is an error, not ignored.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        // A syntax error has no meaningful field path (serde_path_to_error shows the place
        // it stopped at as `items[0].?`); a data error names the field, and is placed at
        // the field's key: serde_json places errors of a value it has already read after the
        // whitespace that follows, often on the next line.
        let inner = error.inner();
        let path = error.path().to_string();
        if inner.classify() != serde_json::error::Category::Data || path == "." {
            return json_error(inner, None);
        }
        let key = match error.path().iter().next_back() {
            Some(serde_path_to_error::Segment::Map { key }) => Some(key.as_str()),
            _ => None,
        };
        match key.and_then(|key| key_position(text, inner.line(), inner.column(), key)) {
            Some((line, column)) => {
                let message = inner.to_string();
                let suffix = format!(" at line {} column {}", inner.line(), inner.column());
                let message = message.strip_suffix(&suffix).unwrap_or(&message);
                format!("line {line}: {path}: {message} (column {column})")
            }
            None => json_error(inner, Some(&path)),
        }
    })?;
    // Anything after the value (a second object, stray text) is an error, not ignored.
    deserializer.end().map_err(|error| json_error(&error, None))?;
    Ok(value)
}

fn json(text: &str) -> Result<Owned, String> {
    parse_json::<JsonFraming>(text)?.into_owned().map_err(|e| format!("items: {e}"))
}

impl JsonFraming {
    /// The framing's items and compression; an empty item list is refused.
    pub fn into_owned(self) -> Result<Owned, String> {
        if self.items.is_empty() {
            return Err("a framing needs at least one item".to_owned());
        }
        let items = self
            .items
            .into_iter()
            .map(|i| {
                let mut item = FramingItem::new(i.memory_type)
                    .with_bus(i.bus_type)
                    .with_flags(i.flags)
                    .with_frames(i.frames)
                    .with_alignment(i.alignment)
                    .with_weight(i.weight);
                if let Some(r) = i.physical_range {
                    item = item.with_physical_range(
                        FramingRange::new(r.min, r.max).with_stepping(r.stepping),
                    );
                }
                if let Some(r) = i.optimal_range {
                    item = item.with_optimal_range(
                        FramingRange::new(r.min, r.max).with_stepping(r.stepping),
                    );
                }
                item
            })
            .collect();
        let compression = self.compression.map_or(Compression::IDENTITY, |c| {
            Compression::new(c.numerator, c.denominator, c.margin)
        });
        Ok(Owned { compression, items })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_as_c_writes_them() {
        assert_eq!(expression("2 * PAGE_SIZE"), Ok(8192));
        assert_eq!(expression("320*240*2"), Ok(153_600));
        assert_eq!(
            expression("(48000 * 16 * 2 + 29) / 30"),
            Ok(51_200),
            "integer division, as in C"
        );
        assert_eq!(expression("0x1000UL"), Ok(4096));
        assert_eq!(expression("FILE_QUAD_ALIGNMENT"), Ok(7));
        assert!(expression("2 * FOO").unwrap_err().contains("\"FOO\""));
        assert!(expression("1 << 3").is_err());
        assert!(expression("5000000000").unwrap_err().contains("does not fit 32 bits"));
    }
}
