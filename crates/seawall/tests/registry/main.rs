//! Registries: named instances, configuration documents, live reconfiguration, presets and
//! metrics.
#![cfg(all(feature = "serde", feature = "metrics"))]

mod corpus;
mod documents;
#[cfg(feature = "fault")]
mod fault;
mod hedge;
mod hostile;
mod live;
mod metrics;
mod presets;
mod properties;
