//! Real framings from Microsoft's AVStream samples (`tests/data/framings.json`, expanded from
//! the sample sources) validate without errors, both as declared and as the drivers resize them
//! at pin creation; their bytes are kept as sample files under `tests/data/framings/` for the
//! `ksalloc` tool and for test engineers.
//!
//! Set `KSALLOC_BLESS=1` to rewrite the sample files after an intended change.

use std::{fs, path::PathBuf};

use ks_allocator::framing::{
    BusType, Compression, FramingExView, FramingItem, FramingRange, Guid, ItemFlags, MemoryType,
    WeightedRange,
};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn corpus() -> Vec<Value> {
    let text = fs::read_to_string(root().join("tests/data/framings.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap().as_array().unwrap().clone()
}

fn u32_of(value: &Value) -> u32 {
    let number =
        value.as_u64().or_else(|| value["value"].as_u64()).unwrap_or_else(|| panic!("{value}"));
    u32::try_from(number).unwrap()
}

fn guid_of(value: &Value) -> Guid {
    let text: String = value["guid"].as_str().unwrap().chars().filter(|c| *c != '-').collect();
    Guid::from_u128(u128::from_str_radix(&text, 16).unwrap())
}

fn range_of(value: &Value) -> FramingRange {
    FramingRange::new(u32_of(&value["MinFrameSize"]), u32_of(&value["MaxFrameSize"]))
        .with_stepping(u32_of(&value["Stepping"]))
}

fn item_of(value: &Value) -> FramingItem {
    FramingItem {
        memory_type: MemoryType(guid_of(&value["MemoryType"])),
        bus_type: BusType(guid_of(&value["BusType"])),
        memory_flags: u32_of(&value["MemoryFlags"]),
        bus_flags: u32_of(&value["BusFlags"]),
        flags: ItemFlags::from_bits_retain(u32_of(&value["Flags"])),
        frames: u32_of(&value["Frames"]),
        file_alignment: u32_of(&value["FileAlignment"]),
        memory_type_weight: u32_of(&value["MemoryTypeWeight"]),
        physical_range: range_of(&value["PhysicalRange"]),
        framing_range: WeightedRange::new(range_of(&value["FramingRange"]["Range"])).with_weights(
            u32_of(&value["FramingRange"]["InPlaceWeight"]),
            u32_of(&value["FramingRange"]["NotInPlaceWeight"]),
        ),
    }
}

/// The C bytes of a framing given in the corpus' JSON form.
fn bytes_of(value: &Value) -> Vec<u8> {
    let items: Vec<FramingItem> =
        value["FramingItem"].as_array().unwrap().iter().map(item_of).collect();
    assert_eq!(u32_of(&value["CountItems"]) as usize, items.len());
    let compression = &value["OutputCompression"];
    let compression = Compression::new(
        u32_of(&compression["RatioNumerator"]),
        u32_of(&compression["RatioDenominator"]),
        u32_of(&compression["RatioConstantMargin"]),
    );
    let mut out = Vec::new();
    for word in [
        u32_of(&value["CountItems"]),
        u32_of(&value["PinFlags"]),
        compression.numerator,
        compression.denominator,
        compression.constant_margin,
        u32_of(&value["PinWeight"]),
    ] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for item in items {
        let framing = ks_allocator::framing::FramingEx::new([item]).with_compression(compression);
        let mut buffer = [0u8; 112];
        framing.encode(&mut buffer).unwrap();
        out.extend_from_slice(&buffer[24..]);
    }
    out
}

/// Every framing of the corpus as `(file name, bytes)`: declared, resized for the default
/// format, and resized for each other format the sample offers.
fn variants() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in corpus() {
        let id = entry["id"].as_str().unwrap();
        out.push((format!("{id}.declared.bin"), bytes_of(&entry["declared"])));
        let runtime = &entry["runtime"]["value_for_default_format"];
        out.push((format!("{id}.runtime.bin"), bytes_of(runtime)));
        if let Some(others) = entry["runtime"]["other_formats"].as_object() {
            for (format, size) in others {
                let mut resized = runtime.clone();
                for pointer in ["/FramingItem/0/PhysicalRange", "/FramingItem/0/FramingRange/Range"]
                {
                    let range = resized.pointer_mut(pointer).unwrap();
                    range["MinFrameSize"] = size.clone();
                    range["MaxFrameSize"] = size.clone();
                }
                let slug: String = format
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
                    .collect();
                out.push((format!("{id}.runtime-{slug}.bin"), bytes_of(&resized)));
            }
        }
    }
    out
}

#[test]
fn every_corpus_framing_validates_without_errors() {
    let variants = variants();
    assert!(variants.len() >= 14, "the corpus shrank: {}", variants.len());
    for (name, bytes) in &variants {
        let view = FramingExView::parse(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut errors = Vec::new();
        view.validate(|finding| {
            if finding.severity == ks_allocator::framing::Severity::Error {
                errors.push(finding.to_string());
            }
        });
        assert!(errors.is_empty(), "{name}: {errors:?}");
    }
}

#[test]
fn declared_corpus_framings_are_exactly_declare_simple_framing_ex() {
    use ks_allocator::framing::FramingEx;
    // avshws: DECLARE_SIMPLE_FRAMING_EX(KERNEL_NONPAGED, SYSTEM_MEMORY | PREFERENCES_ONLY, 2, 0,
    // 2 * PAGE_SIZE, 2 * PAGE_SIZE)
    let ours = FramingEx::simple(
        MemoryType::KERNEL_NONPAGED,
        ItemFlags::SYSTEM_MEMORY | ItemFlags::PREFERENCES_ONLY,
        2,
        0,
        2 * ks_sys::PAGE_SIZE,
        2 * ks_sys::PAGE_SIZE,
    );
    let mut bytes = [0u8; 112];
    ours.encode(&mut bytes).unwrap();
    let entry = corpus().into_iter().find(|e| e["id"] == "wds-avshws-capture").unwrap();
    assert_eq!(bytes.as_slice(), bytes_of(&entry["declared"]).as_slice());
}

#[test]
fn sample_files_match_the_corpus() {
    let dir = root().join("tests/data/framings");
    let bless = std::env::var_os("KSALLOC_BLESS").is_some();
    for (name, bytes) in variants() {
        let path = dir.join(&name);
        if bless {
            fs::write(&path, &bytes).unwrap();
        }
        let committed = fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with KSALLOC_BLESS=1)", path.display()));
        assert_eq!(committed, bytes, "{name} differs from the corpus (run with KSALLOC_BLESS=1)");
    }
}
