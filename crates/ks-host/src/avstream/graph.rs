//! Graphs: a chain of filters of loaded drivers, connected output pin to input pin, served by
//! one allocator per pipe as the library's planner ([`ks_allocator::negotiate::plan_chain`])
//! plans them, ending in a consumer.
//!
//! [`Graph::build`] creates the pins stage by stage: the source's output pin in the format
//! given; each transform's input pin in the format of the pin before it (its `SetDataFormat`
//! must accept it), and its output pin in the first format its intersection handler offers for
//! one of the pin's own ranges (a transform's handler offers only what agrees with its input).
//! The framings the pins have then (after their create dispatches resized them) and the sink's
//! are planned; planning decides nothing here that the library does not.
//!
//! Each pipe's frames come from its allocator at its first pin (an output pin: the pipe's
//! requester): the owner pin's `KSPIN_DISPATCH.Allocator` when the owner is a driver pin that
//! has one, the library's default allocator otherwise (standing for the sink's, or for
//! ks.sys's). A completed frame travels to the next pin: into the next filter's input pin, and,
//! when that filter is an in-place transform in the same pipe, into its output pin too (the
//! same frame: their process pins are each other's `InPlaceCounterpart`). It returns to its
//! allocator when the last pin holding it is done with it. A transform that copies takes frames
//! on its input pin and fills frames of the next pipe on its output pin.
//!
//! State changes go one step at a time across the whole chain, each step from the sink end to
//! the source (the order a graph manager uses, so that no pin gets frames from one that runs
//! before it is ready); STOP therefore empties each pipe from the downstream end: every frame
//! goes back to its allocator, and each allocator is deleted once, when its requester stops.

use std::sync::Arc;

use ks_allocator::{
    AllocatorPlan, DefaultAllocator, dispatch_table,
    framing::FramingExView,
    negotiate::{ChainFilter, ChainPin, plan_chain},
};
use ks_sys::{KSSTATE, NTSTATUS, PVOID};

use super::{Filter, Link, Pin, current_descriptor, current_dispatch, object, stream};
use crate::irql::PASSIVE_LEVEL;

/// One filter of a chain: its name in plans and errors, the filter, and its input and output
/// pin factories (none for the source's input; a transform has both).
pub struct Stage<'f> {
    /// The filter's name: its pins are "name.in" and "name.out".
    pub name: String,
    /// The open filter.
    pub filter: &'f Filter<'f>,
    /// Its input pin factory, for every filter but the source.
    pub input: Option<u32>,
    /// Its output pin factory.
    pub output: u32,
}

/// One pipe of a built graph, as planned.
#[derive(Clone, Debug)]
pub struct PipeSummary {
    /// Its pins in the order frames travel ("filter.in", "filter.out", ..., "sink.in").
    pub pins: Vec<String>,
    /// The pin whose allocator serves it.
    pub owner: String,
    /// The plan: its create request's framing, memory type and the pair's reasons.
    pub plan: AllocatorPlan,
    /// Every reason, the pipe's own first.
    pub reasons: Vec<String>,
    /// The index (in [`Graph::pins`]) of its first pin, whose pipe holds the allocator.
    requester: usize,
}

/// Why a graph could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    /// A source, up to six transforms: the stages do not make a chain.
    Shape,
    /// A pin could not be created in the format the chain reached it with (its `SetDataFormat`
    /// or `Create` failed, or the host ran out of memory).
    Pin {
        /// "filter.in" or "filter.out".
        pin: String,
        /// The status its creation failed with.
        status: NTSTATUS,
    },
    /// A transform's output pin offers no format for its input's.
    NoFormat {
        /// The output pin.
        pin: String,
    },
    /// A pin declares no allocator framing.
    NoFraming {
        /// The pin.
        pin: String,
    },
    /// The planner could not plan the chain (its message names the pins).
    Plan(String),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Shape => f.write_str("a graph is a source and up to six transforms"),
            Self::Pin { pin, status } => {
                write!(f, "{pin} could not be created: NTSTATUS {:#010X}", status.cast_unsigned())
            }
            Self::NoFormat { pin } => write!(f, "{pin} offers no format for its input's"),
            Self::NoFraming { pin } => write!(f, "{pin} declares no allocator framing"),
            Self::Plan(message) => write!(f, "cannot plan the pipes: {message}"),
        }
    }
}

impl std::error::Error for GraphError {}

/// A pin of the graph, with its name.
struct Named<'f> {
    name: String,
    pin: Pin<'f>,
}

/// A chain of filters ending in a consumer, with its pipes.
pub struct Graph<'f> {
    /// The pins in chain order: the source's output, then each transform's input and output.
    pins: Vec<Named<'f>>,
    pipes: Vec<PipeSummary>,
}

/// Delivers a completed frame to the pin at `address` (and first to its in-place counterpart,
/// the output pin that passes the same frame on); a pin that is gone or not active lets the
/// frame go back.
fn deliver(
    targets: (usize, Option<usize>),
    completed: &stream::Completed,
    release: stream::Release,
) {
    let (input, mirror) = targets;
    if let Some(mirror) = mirror {
        let pin = std::ptr::with_exposed_provenance_mut(mirror);
        // SAFETY: a pin of the graph: live until the graph is dropped, which stops every pin
        // (so no frame travels) before it closes any; a pin that is gone fails the lookup.
        if let Some(state) = unsafe { object::pin_object(pin) } {
            state.shared.deliver(completed, release.clone(), true);
        }
    }
    let pin = std::ptr::with_exposed_provenance_mut(input);
    // SAFETY: as above.
    if let Some(state) = unsafe { object::pin_object(pin) } {
        state.shared.deliver(completed, release, false);
    }
}

impl<'f> Graph<'f> {
    /// Builds the chain `stages` (the source first) ending in a sink that declares
    /// `sink_framing` and hands each frame to `consumer`; the source's output pin is created
    /// in `source_format`. Every pin is connected and in STOP. PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// A [`GraphError`] naming the pin.
    pub fn build(
        stages: &[Stage<'f>],
        source_format: &[u8],
        sink_framing: &FramingExView<'_>,
        consumer: stream::Consumer,
    ) -> Result<Self, GraphError> {
        crate::verifier::require_irql_at_most("Graph::build", PASSIVE_LEVEL);
        let shaped = stages.first().is_some_and(|s| s.input.is_none())
            && stages.iter().skip(1).all(|s| s.input.is_some())
            && stages.len() < ks_allocator::negotiate::MAX_CHAIN;
        if !shaped {
            return Err(GraphError::Shape);
        }
        let pins = Self::create_pins(stages, source_format)?;
        let mut graph = Self { pins, pipes: Vec::new() };
        graph.plan(stages.len(), sink_framing)?;
        graph.connect(consumer);
        Ok(graph)
    }

    fn create_pins(
        stages: &[Stage<'f>],
        source_format: &[u8],
    ) -> Result<Vec<Named<'f>>, GraphError> {
        let mut pins: Vec<Named<'f>> = Vec::new();
        for stage in stages {
            let filter = stage.filter;
            if let Some(input) = stage.input {
                let name = format!("{}.in", stage.name);
                let format = pins.last().map(|p| p.pin.connection_format()).unwrap_or_default();
                let pin = filter
                    .create_pin(input, &format)
                    .map_err(|status| GraphError::Pin { pin: name.clone(), status })?;
                pins.push(Named { name, pin });
            }
            let name = format!("{}.out", stage.name);
            let format = if stage.input.is_none() {
                source_format.to_vec()
            } else {
                filter
                    .data_ranges(stage.output)
                    .into_iter()
                    .find_map(|range| filter.intersect(stage.output, range).ok())
                    .ok_or_else(|| GraphError::NoFormat { pin: name.clone() })?
            };
            let pin = filter
                .create_pin(stage.output, &format)
                .map_err(|status| GraphError::Pin { pin: name.clone(), status })?;
            pins.push(Named { name, pin });
        }
        Ok(pins)
    }

    /// Plans the pipes from the pins' framings and the sink's.
    fn plan(&mut self, stages: usize, sink_framing: &FramingExView<'_>) -> Result<(), GraphError> {
        let mut views = Vec::with_capacity(self.pins.len());
        for named in &self.pins {
            // SAFETY: a live pin of the graph.
            let descriptor = unsafe { current_descriptor(named.pin.as_ptr()) };
            // SAFETY: NULL or the pin's framing, `CountItems` items long.
            let framing = unsafe { FramingExView::from_raw(descriptor.AllocatorFraming) }
                .ok_or_else(|| GraphError::NoFraming { pin: named.name.clone() })?;
            views.push(framing);
        }
        let chain_pin = |i: usize| ChainPin { name: &self.pins[i].name, framing: views[i] };
        let mut chain = vec![ChainFilter::Source { output: chain_pin(0) }];
        for stage in 1..stages {
            chain.push(ChainFilter::Transform {
                input: chain_pin(2 * stage - 1),
                output: chain_pin(2 * stage),
            });
        }
        chain.push(ChainFilter::Sink {
            input: ChainPin { name: "sink.in", framing: *sink_framing },
        });
        let plan = plan_chain(&chain).map_err(|error| GraphError::Plan(error.to_string()))?;
        for pipe in plan.pipes() {
            let pins: Vec<String> = pipe.pins().map(|(name, _)| name.to_owned()).collect();
            let requester = self.pins.iter().position(|p| p.name == pins[0]).unwrap_or(0);
            let mut reasons: Vec<String> = pipe.reasons().map(ToString::to_string).collect();
            reasons.extend(pipe.plan.reasons().map(ToString::to_string));
            self.pipes.push(PipeSummary {
                pins,
                owner: pipe.owner.to_owned(),
                plan: pipe.plan,
                reasons,
                requester,
            });
        }
        Ok(())
    }

    /// Connects every pin: each pipe's requester to its allocator, the others to the pin before
    /// them; completed frames to the next pin, the last to `consumer`.
    fn connect(&mut self, consumer: stream::Consumer) {
        let address = |i: usize| self.pins.get(i).map(|p| p.pin.as_ptr().addr());
        let in_pipe = |a: &str, b: &str| {
            self.pipes
                .iter()
                .any(|p| p.pins.iter().any(|n| n == a) && p.pins.iter().any(|n| n == b))
        };
        // In-place transforms: input 2k-1 and output 2k in one pipe.
        let mut in_place = vec![false; self.pins.len()];
        for k in (2..self.pins.len()).step_by(2) {
            if in_pipe(&self.pins[k - 1].name, &self.pins[k].name) {
                in_place[k] = true;
                in_place[k - 1] = true;
                let (input, output) = (&self.pins[k - 1].pin, &self.pins[k].pin);
                *crate::lock(&input.object.state().in_place) = address(k);
                *crate::lock(&output.object.state().in_place) = address(k - 1);
            }
        }
        let mut consumer = Some(consumer);
        for i in 0..self.pins.len() {
            let output = i % 2 == 0;
            let downstream = if !output {
                stream::Downstream::Forward(Box::new(|_, release| drop(release)))
            } else if i + 1 == self.pins.len() {
                match consumer.take() {
                    Some(consumer) => stream::Downstream::Consumer(consumer),
                    None => stream::Downstream::Forward(Box::new(|_, release| drop(release))),
                }
            } else {
                let next = address(i + 1).unwrap_or(0);
                let mirror =
                    in_place.get(i + 2).copied().unwrap_or(false).then(|| address(i + 2)).flatten();
                stream::Downstream::Forward(Box::new(move |completed, release| {
                    deliver((next, mirror), &completed, release);
                }))
            };
            let requester = self.pipes.iter().find(|p| p.requester == i && output && !in_place[i]);
            let (link, frames) = match requester {
                Some(pipe) => {
                    let owner = self.pins.iter().find(|p| p.name == pipe.owner);
                    // SAFETY: a live pin of the graph.
                    let own = owner
                        .and_then(|o| unsafe { current_dispatch(o.pin.as_ptr()) })
                        .map_or(std::ptr::null(), |d| d.Allocator);
                    let (table, owner) = if own.is_null() {
                        (dispatch_table::<DefaultAllocator>(), None)
                    } else {
                        // SAFETY: the owner's allocator table, a driver static.
                        (unsafe { &*own }, owner.map(|o| o.pin.as_ptr().addr()))
                    };
                    let frames =
                        if pipe.plan.framing.frames == 0 { 2 } else { pipe.plan.framing.frames };
                    (Link::Pin { plan: Box::new(pipe.plan), table, owner }, frames)
                }
                None => (Link::Delivered, 0),
            };
            let pin = &self.pins[i].pin;
            let pipe =
                stream::Pipe::new(Arc::clone(&pin.object.state().shared), frames, downstream);
            *crate::lock(&pin.object.state().connection) = Some(super::Connection { link, pipe });
        }
    }

    /// The pipes, in order from the source.
    #[must_use]
    pub fn pipes(&self) -> &[PipeSummary] {
        &self.pipes
    }

    /// The pins in chain order, with their names.
    pub fn pins(&self) -> impl Iterator<Item = (&str, &Pin<'f>)> {
        self.pins.iter().map(|p| (p.name.as_str(), &p.pin))
    }

    /// The context `InitializeAllocator` returned for pipe `index`'s allocator, while the
    /// graph is out of STOP.
    #[must_use]
    pub fn allocator_context(&self, index: usize) -> Option<PVOID> {
        let pipe = self.pipes.get(index)?;
        self.pins.get(pipe.requester)?.pin.allocator_context()
    }

    /// Moves every pin to `target` one step at a time, each step from the sink end to the
    /// source. PASSIVE_LEVEL.
    ///
    /// # Errors
    ///
    /// The first pin's failure (the pins keep the states they reached).
    pub fn set_state(&self, target: KSSTATE) -> Result<(), NTSTATUS> {
        loop {
            let from = self.pins.first().map_or(target, |p| p.pin.state());
            if from == target {
                return Ok(());
            }
            let to = if target > from { from + 1 } else { from - 1 };
            for named in self.pins.iter().rev() {
                named.pin.set_state(to)?;
            }
        }
    }
}

impl Drop for Graph<'_> {
    /// Stops the chain (every frame back with its allocator, each allocator deleted), then
    /// closes the pins from the sink end.
    fn drop(&mut self) {
        for named in self.pins.iter().rev() {
            let _ = named.pin.set_state(ks_sys::KSSTATE_STOP);
        }
        while let Some(named) = self.pins.pop() {
            drop(named);
        }
    }
}
