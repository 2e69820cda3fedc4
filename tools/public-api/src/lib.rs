//! Turns the rustdoc JSON of a crate into a listing of its public API: one line per public
//! item, at every path where it is reachable, sorted.
//!
//! The binary (`public-api`) runs rustdoc and writes or checks `crates/<name>/public-api.txt`;
//! this library holds everything that does not touch the file system or run processes, so it
//! can be tested on small hand-written JSON documents. See the README for the line format.
//!
//! rustdoc's JSON output is unstable: its layout changes with each `format_version`. The
//! document is read as a plain [`serde_json::Value`] and [`listing`] refuses any version but
//! [`FORMAT_VERSION`], so a toolchain upgrade fails loudly instead of listing garbage.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::Value;

mod diff;
mod items;
mod render;
mod walk;

pub use crate::diff::unified_diff;

/// The rustdoc JSON `format_version` this tool understands (what rustc 1.95 emits).
pub const FORMAT_VERSION: u64 = 57;

/// Why a rustdoc JSON document could not be listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The document's `format_version` is not [`FORMAT_VERSION`].
    FormatVersion {
        /// The version the document declares (`None` if it declares none).
        found: Option<u64>,
    },
    /// The document lacks a part every rustdoc JSON document has.
    Malformed(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FormatVersion { found } => {
                let found = found.map_or_else(|| "none".to_owned(), |v| v.to_string());
                write!(
                    f,
                    "rustdoc JSON format_version is {found}, but this tool understands \
                     {FORMAT_VERSION}; the toolchain changed the format: update FORMAT_VERSION \
                     in tools/public-api/src/lib.rs and the walker for what changed"
                )
            }
            Self::Malformed(what) => write!(f, "not a rustdoc JSON document: {what}"),
        }
    }
}

impl std::error::Error for Error {}

/// The listing of the crate documented by `doc` (a parsed rustdoc JSON document): its
/// lines, sorted byte-wise and without duplicates.
pub fn listing(doc: &Value) -> Result<Vec<String>, Error> {
    let found = doc["format_version"].as_u64();
    if found != Some(FORMAT_VERSION) {
        return Err(Error::FormatVersion { found });
    }
    let index = doc["index"]
        .as_object()
        .ok_or(Error::Malformed("no `index` object"))?;
    let paths = doc["paths"]
        .as_object()
        .ok_or(Error::Malformed("no `paths` object"))?;
    let root = doc["root"]
        .as_u64()
        .ok_or(Error::Malformed("no `root` id"))?;
    if walk::item(index, root).is_none() {
        return Err(Error::Malformed("the `root` id is not in the index"));
    }

    let reach = walk::reach(index, paths, root);
    let public = walk::canonical_paths(&reach);
    let render = render::Renderer {
        paths,
        public: &public,
    };
    let mut lines = items::Lines::new(index, render);
    for (id, places) in &reach.places {
        let Some(item) = walk::item(index, *id) else {
            continue;
        };
        let all_hidden = places.iter().all(|place| place.hidden);
        for place in places {
            lines.item(item, place, all_hidden);
        }
    }
    let mut all: BTreeSet<String> = lines.lines;
    all.extend(reach.foreign);
    Ok(all.into_iter().collect())
}

#[cfg(test)]
mod tests;
