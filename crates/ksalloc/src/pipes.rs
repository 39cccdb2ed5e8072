//! `ksalloc framing pipes`: the pipes (allocators) of a chain of filters.
//!
//! The graph is JSON:
//!
//! ```json
//! {"filters": [{"name": "cap", "pins": [{"name": "out", "flow": "out", "framing": F}]}, ...],
//!  "connections": [["cap.out", "ovl.in"], ...]}
//! ```
//!
//! where each `F` is a framing in the JSON form `framing negotiate` reads. The connections must
//! make one chain (a source, transforms with one connected input and one connected output, a
//! sink); the order of `filters` does not matter, and pins no connection names are ignored.
//! The library's [`plan_chain`] plans it; nothing here decides a pipe.

use std::{collections::HashMap, fmt::Write as _};

use ks_allocator::{
    framing::FramingExView,
    negotiate::{ChainFilter, ChainPin, MAX_CHAIN, Pipe, PipeError, plan_chain},
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    Failure, decode,
    input::{self, JsonFraming, Owned},
    negotiate::{EXIT_CONFLICT, conflict_name, hex},
};

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "lowercase")]
enum Flow {
    #[serde(alias = "In", alias = "IN", alias = "input")]
    In,
    #[serde(alias = "Out", alias = "OUT", alias = "output")]
    Out,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPin {
    name: String,
    flow: Flow,
    framing: JsonFraming,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonFilter {
    name: String,
    pins: Vec<JsonPin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonGraph {
    filters: Vec<JsonFilter>,
    connections: Vec<[String; 2]>,
}

/// One pin of the graph, read.
struct GraphPin {
    /// "filter.pin".
    name: String,
    /// Its filter's index.
    filter: usize,
    flow: Flow,
    framing: Owned,
}

/// A graph whose connections make a chain: its pins, and the chain's filters in order as
/// (input pin, output pin) indices into `pins`.
struct Chain {
    pins: Vec<GraphPin>,
    order: Vec<Place>,
}

/// A filter's place in a chain, with its connected pins (indices into [`Chain::pins`]).
#[derive(Clone, Copy)]
enum Place {
    Source { output: usize },
    Transform { input: usize, output: usize },
    Sink { input: usize },
}

fn unreadable(message: String) -> Failure {
    Failure::unreadable(message)
}

fn not_a_chain(message: &str) -> Failure {
    Failure {
        status: EXIT_CONFLICT,
        kind: "not_a_chain",
        message: format!("not a chain: {message}"),
    }
}

/// Reads the graph: names and flows checked (a wrong one is unreadable input, naming the
/// field); the connections' shape checked (anything but a chain cannot be planned).
fn read_graph(text: &str) -> Result<Chain, Failure> {
    let graph: JsonGraph = input::parse_json(text).map_err(unreadable)?;
    let (pins, by_name, names) = read_pins(graph.filters)?;
    let order = order(&pins, &by_name, &names, &graph.connections)?;
    Ok(Chain { pins, order })
}

/// The pins of the graph's filters, by index, by name, and the filters' names by index.
type Pins = (Vec<GraphPin>, HashMap<String, usize>, Vec<String>);

fn read_pins(filters: Vec<JsonFilter>) -> Result<Pins, Failure> {
    let mut pins = Vec::new();
    let mut by_name = HashMap::new();
    let mut filter_names: HashMap<String, usize> = HashMap::new();
    let mut names = Vec::new();
    for (f, filter) in filters.into_iter().enumerate() {
        let valid = |name: &str| !name.is_empty() && !name.contains('.');
        if !valid(&filter.name) {
            return Err(unreadable(format!(
                "filters[{f}].name: {:?} is not a name (not empty, no '.')",
                filter.name
            )));
        }
        if let Some(other) = filter_names.insert(filter.name.clone(), f) {
            return Err(unreadable(format!(
                "filters[{f}].name: {:?} is also the name of filters[{other}]",
                filter.name
            )));
        }
        for (p, pin) in filter.pins.into_iter().enumerate() {
            let field = format!("filters[{f}].pins[{p}]");
            if !valid(&pin.name) {
                return Err(unreadable(format!(
                    "{field}.name: {:?} is not a name (not empty, no '.')",
                    pin.name
                )));
            }
            let name = format!("{}.{}", filter.name, pin.name);
            let framing = pin
                .framing
                .into_owned()
                .map_err(|e| unreadable(format!("{field}.framing: {e}")))?;
            if by_name.insert(name.clone(), pins.len()).is_some() {
                return Err(unreadable(format!(
                    "{field}.name: {filter_name} has two pins named {:?}",
                    pin.name,
                    filter_name = filter.name
                )));
            }
            pins.push(GraphPin { name, filter: f, flow: pin.flow, framing });
        }
        names.push(filter.name);
    }
    Ok((pins, by_name, names))
}

/// The chain's filters in order from the source, from the connections.
fn order(
    pins: &[GraphPin],
    by_name: &HashMap<String, usize>,
    names: &[String],
    connections: &[[String; 2]],
) -> Result<Vec<Place>, Failure> {
    let filter_count = names.len();
    // For each filter: its connected input and output pin; for each pin: its connection.
    let mut connected_in: Vec<Option<usize>> = vec![None; filter_count];
    let mut connected_out: Vec<Option<usize>> = vec![None; filter_count];
    let mut next: Vec<Option<usize>> = vec![None; filter_count];
    let mut used: Vec<Option<usize>> = vec![None; pins.len()];
    let known = |c: usize, end: usize, name: &str| {
        by_name.get(name).copied().ok_or_else(|| {
            let mut all: Vec<&str> = pins.iter().map(|p| p.name.as_str()).collect();
            all.sort_unstable();
            unreadable(format!(
                "connections[{c}][{end}]: no pin {name:?} (the pins: {})",
                all.join(", ")
            ))
        })
    };
    for (c, [from, to]) in connections.iter().enumerate() {
        let (out, into) = (known(c, 0, from)?, known(c, 1, to)?);
        for (end, pin, flow) in [(0, out, Flow::Out), (1, into, Flow::In)] {
            if pins[pin].flow != flow {
                let (what, expected) = if end == 0 {
                    ("starts", "an output (\"out\")")
                } else {
                    ("ends", "an input (\"in\")")
                };
                return Err(unreadable(format!(
                    "connections[{c}][{end}]: a connection {what} at {expected} pin; {} is not",
                    pins[pin].name
                )));
            }
            if let Some(other) = used[pin].replace(c) {
                return Err(not_a_chain(&format!(
                    "{} is in connections[{other}] and connections[{c}]; a pin feeding or fed by \
                     several pins (a splitter or a mixer) needs a pipe per branch, which a chain \
                     does not describe",
                    pins[pin].name
                )));
            }
        }
        let (source, target) = (pins[out].filter, pins[into].filter);
        if source == target {
            return Err(not_a_chain(&format!(
                "connections[{c}] connects {from} to {to}, a filter to itself"
            )));
        }
        for (slot, pin, what) in [
            (&mut connected_out[source], out, "output"),
            (&mut connected_in[target], into, "input"),
        ] {
            if let Some(other) = slot.replace(pin) {
                return Err(not_a_chain(&format!(
                    "{} and {} are both connected: a filter of a chain has one connected {what} pin",
                    pins[other].name, pins[pin].name
                )));
            }
        }
        next[source] = Some(target);
    }
    if !(2..=MAX_CHAIN).contains(&filter_count) {
        return Err(not_a_chain(&format!(
            "{filter_count} filter(s); a chain has 2 to {MAX_CHAIN} (a source, up to {} \
             transforms, a sink)",
            MAX_CHAIN - 2
        )));
    }
    walk(names, &connected_in, &connected_out, &next)
}

/// Walks the chain from its one source: every filter visited once, in order.
fn walk(
    names: &[String],
    connected_in: &[Option<usize>],
    connected_out: &[Option<usize>],
    next: &[Option<usize>],
) -> Result<Vec<Place>, Failure> {
    let filter_count = names.len();
    let mut sources = Vec::new();
    for f in 0..filter_count {
        match (connected_in[f], connected_out[f]) {
            (None, None) => {
                return Err(not_a_chain(&format!("filter {} is not connected", names[f])));
            }
            (None, Some(_)) => sources.push(f),
            _ => {}
        }
    }
    let [source] = sources[..] else {
        let listed: Vec<&str> = sources.iter().map(|&f| names[f].as_str()).collect();
        return Err(not_a_chain(&if listed.is_empty() {
            "every filter has a connected input: the connections make a cycle".to_owned()
        } else {
            format!(
                "{} filters have no connected input ({}); a chain has one source",
                listed.len(),
                listed.join(", ")
            )
        }));
    };
    let mut order = Vec::new();
    let mut at = Some(source);
    while let Some(f) = at.filter(|_| order.len() < filter_count) {
        order.push(match (connected_in[f], connected_out[f]) {
            (Some(input), Some(output)) => Place::Transform { input, output },
            (Some(input), None) => Place::Sink { input },
            (None, Some(output)) => Place::Source { output },
            (None, None) => break,
        });
        at = next[f];
    }
    if order.len() != filter_count || at.is_some() {
        return Err(not_a_chain("the connections make a cycle or more than one chain"));
    }
    Ok(order)
}

/// Plans the graph in `text`; returns the pipes (text or JSON), or the failure.
pub fn run(text: &str, as_json: bool) -> Result<String, Failure> {
    let chain = read_graph(text)?;
    let views: Vec<FramingExView<'_>> = chain
        .pins
        .iter()
        .map(|pin| {
            pin.framing
                .view()
                .ok_or_else(|| unreadable(format!("{}: a framing has no items", pin.name)))
        })
        .collect::<Result<_, _>>()?;
    // Each pin's framing checked on its own first, so that an invalid one is named.
    for (pin, view) in chain.pins.iter().zip(&views) {
        if let Err(finding) = view.check() {
            return Err(Failure {
                status: EXIT_CONFLICT,
                kind: "invalid_framing",
                message: format!("cannot plan: {}: the framing is invalid: {finding}", pin.name),
            });
        }
    }
    let pin = |index: usize| ChainPin { name: &chain.pins[index].name, framing: views[index] };
    let filters: Vec<ChainFilter<'_>> = chain
        .order
        .iter()
        .map(|&place| match place {
            Place::Source { output } => ChainFilter::Source { output: pin(output) },
            Place::Transform { input, output } => {
                ChainFilter::Transform { input: pin(input), output: pin(output) }
            }
            Place::Sink { input } => ChainFilter::Sink { input: pin(input) },
        })
        .collect();
    let plan = plan_chain(&filters).map_err(|error| Failure {
        status: EXIT_CONFLICT,
        kind: pipe_error_name(&error),
        message: format!("cannot plan: {error}"),
    })?;
    let pipes: Vec<&Pipe<'_>> = plan.pipes().collect();
    let mut out = String::new();
    if as_json {
        let pipes: Vec<serde_json::Value> = pipes.iter().map(|p| pipe_json(p)).collect();
        let _ = writeln!(out, "{}", json!({ "pipes": pipes }));
    } else {
        for (number, pipe) in pipes.iter().enumerate() {
            render(number + 1, pipe, &mut out);
        }
    }
    Ok(out)
}

fn pipe_error_name(error: &PipeError<'_>) -> &'static str {
    match error {
        PipeError::Shape => "not_a_chain",
        PipeError::BothMustAllocate { .. } => "both_must_allocate",
        PipeError::TooManyCombinations { .. } => "too_many_combinations",
        PipeError::Pipe { error, .. } => conflict_name(error),
    }
}

fn render(number: usize, pipe: &Pipe<'_>, out: &mut String) {
    let f = pipe.plan.framing;
    let names: Vec<&str> = pipe.pins().map(|(name, _)| name).collect();
    let _ = writeln!(out, "pipe {number}: {}", names.join(" -> "));
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<16} {value}");
    };
    field("owner", pipe.owner.to_owned());
    field("Frames", f.frames.to_string());
    field("FrameSize", f.frame_size.to_string());
    field("FileAlignment", decode::alignment(f.file_alignment));
    field("PoolType", format!("{} ({})", f.pool_type.0, f.pool_type));
    field("OptionsFlags", decode::option_flags(f.flags));
    field("memory type", pipe.plan.memory_type.to_string());
    let items: Vec<String> = pipe.pins().map(|(name, item)| format!("{name} {item}")).collect();
    field("items", items.join(", "));
    let _ = writeln!(out, "  reasons:");
    for reason in reasons(pipe) {
        let _ = writeln!(out, "    - {reason}");
    }
    let _ = writeln!(
        out,
        "  KSALLOCATOR_FRAMING for the allocator create request: {}",
        hex(&f.to_bytes())
    );
}

/// The pipe's decisions, then the pair negotiation's, whose "upstream" is the pipe's first pin
/// and "downstream" the others taken together.
fn reasons(pipe: &Pipe<'_>) -> Vec<String> {
    let mut all: Vec<String> = pipe.reasons().map(ToString::to_string).collect();
    let mut names = pipe.pins().map(|(name, _)| name);
    let first = names.next().unwrap_or_default();
    let rest: Vec<&str> = names.collect();
    if rest.len() > 1 {
        all.push(format!(
            "negotiated as a pair: upstream {first}, downstream {} taken together",
            rest.join(", ")
        ));
    }
    all.extend(pipe.plan.reasons().map(ToString::to_string));
    all
}

fn pipe_json(pipe: &Pipe<'_>) -> serde_json::Value {
    let f = pipe.plan.framing;
    let options: Vec<&str> = f.options().iter_names().map(|(name, _)| name).collect();
    let pins: Vec<&str> = pipe.pins().map(|(name, _)| name).collect();
    let items: Vec<usize> = pipe.pins().map(|(_, item)| item).collect();
    json!({
        "pins": pins,
        "items": items,
        "owner": pipe.owner,
        "frames": f.frames,
        "frame_size": f.frame_size,
        "file_alignment": f.file_alignment,
        "memory_type": pipe.plan.memory_type.to_string(),
        "pool_type": f.pool_type.0,
        "pool_type_name": f.pool_type.to_string(),
        "options_flags": f.flags,
        "options": options,
        "in_place": pipe.plan.in_place,
        "reasons": reasons(pipe),
        "framing_bytes": hex(&f.to_bytes()),
    })
}
