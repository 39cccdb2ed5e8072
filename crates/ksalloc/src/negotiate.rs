//! `ksalloc framing negotiate`: the allocator plan for two connected pins.

use std::fmt::Write as _;

use ks_allocator::{
    NegotiationError, negotiate,
    negotiate::{AllocatorPlan, Reason},
};
use serde_json::json;

use crate::{Failure, decode, input::Owned};

/// Exit status: the framings cannot be reconciled.
pub const EXIT_CONFLICT: u8 = 1;

/// Negotiates; returns the exit status and the plan (text or JSON), or the failure.
pub fn run(upstream: &Owned, downstream: &Owned, as_json: bool) -> Result<String, Failure> {
    let (Some(up), Some(down)) = (upstream.view(), downstream.view()) else {
        return Err(Failure::unreadable("a framing has no items".to_owned()));
    };
    match negotiate(&up, &down) {
        Ok(plan) => {
            let mut out = String::new();
            if as_json {
                let _ = writeln!(out, "{}", plan_json(&plan));
            } else {
                render(&plan, &mut out);
            }
            Ok(out)
        }
        Err(error) => Err(Failure {
            status: EXIT_CONFLICT,
            kind: conflict_name(&error),
            message: format!("cannot negotiate: {error}"),
        }),
    }
}

pub fn conflict_name(error: &NegotiationError) -> &'static str {
    match error {
        NegotiationError::InvalidFraming { .. } => "invalid_framing",
        NegotiationError::MemoryTypesDisjoint => "memory_types_disjoint",
        NegotiationError::BothMustAllocate { .. } => "both_must_allocate",
        NegotiationError::RangesDisjoint { .. } => "ranges_disjoint",
        NegotiationError::OwnerCannotHold { .. } => "owner_cannot_hold",
        NegotiationError::CompressionImpossible { .. } => "compression_impossible",
        NegotiationError::NoFrameSize => "no_frame_size",
        NegotiationError::Pitched2dBuffers => "pitched_2d_buffers",
        NegotiationError::InvalidPlan(_) => "invalid_plan",
        NegotiationError::TooManyPairs { .. } => "too_many_pairs",
    }
}

pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, byte) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push(' ');
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}

pub fn render(plan: &AllocatorPlan, out: &mut String) {
    let f = plan.framing;
    let _ = writeln!(out, "plan: the {} pin owns the allocator", plan.owner);
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<16} {value}");
    };
    field("Frames", f.frames.to_string());
    field("FrameSize", f.frame_size.to_string());
    field("FileAlignment", decode::alignment(f.file_alignment));
    field("PoolType", format!("{} ({})", f.pool_type.0, f.pool_type));
    field("OptionsFlags", decode::option_flags(f.flags));
    field("memory type", plan.memory_type.to_string());
    field("items", format!("upstream {}, downstream {}", plan.upstream_item, plan.downstream_item));
    field("in place", if plan.in_place { "yes" } else { "no" }.to_owned());
    let _ = writeln!(out, "reasons:");
    for reason in plan.reasons() {
        let _ = writeln!(out, "  - {reason}");
    }
    let _ = writeln!(
        out,
        "KSALLOCATOR_FRAMING for the allocator create request: {}",
        hex(&f.to_bytes())
    );
}

pub fn plan_json(plan: &AllocatorPlan) -> serde_json::Value {
    let f = plan.framing;
    let options: Vec<&str> = f.options().iter_names().map(|(name, _)| name).collect();
    let reasons: Vec<String> = plan.reasons().map(Reason::to_string).collect();
    json!({
        "owner": plan.owner.name(),
        "frames": f.frames,
        "frame_size": f.frame_size,
        "file_alignment": f.file_alignment,
        "pool_type": f.pool_type.0,
        "pool_type_name": f.pool_type.to_string(),
        "options_flags": f.flags,
        "options": options,
        "memory_type": plan.memory_type.to_string(),
        "upstream_item": plan.upstream_item,
        "downstream_item": plan.downstream_item,
        "in_place": plan.in_place,
        "reasons": reasons,
        "framing_bytes": hex(&f.to_bytes()),
    })
}
