//! Finds every public path of every item, walking from the crate root through public modules
//! and `pub use` re-exports, and picks the one path that names each item in signatures.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::render::{full_path, list, tag, text};

/// A path at which an item can be named from outside the crate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Place {
    /// The full path, starting with the crate's name.
    pub(crate) path: String,
    /// Whether the item or anything on the way to it is `#[doc(hidden)]`.
    pub(crate) hidden: bool,
}

/// Everything reachable from the crate root.
#[derive(Debug, Default)]
pub(crate) struct Reach {
    /// Every place of every reachable local item, by id (sorted, so output is deterministic).
    pub(crate) places: BTreeMap<u64, BTreeSet<Place>>,
    /// Finished lines for re-exports of other crates' items, which have no local item to list.
    pub(crate) foreign: BTreeSet<String>,
}

/// The item with `id` in rustdoc's `index`.
pub(crate) fn item(index: &Map<String, Value>, id: u64) -> Option<&Value> {
    index.get(&id.to_string())
}

/// The kind of an item: the one key of its `inner` object (`"struct"`, `"function"`, ...).
pub(crate) fn kind(item: &Value) -> &str {
    tag(&item["inner"]).0
}

/// Whether the item itself carries `#[doc(hidden)]`.
pub(crate) fn is_hidden(item: &Value) -> bool {
    list(&item["attrs"]).iter().any(|attr| {
        let attr = text(&attr["other"]);
        attr.starts_with("#[doc(") && attr.contains("hidden")
    })
}

/// Walks the module tree of a rustdoc JSON document.
struct Walker<'a> {
    index: &'a Map<String, Value>,
    paths: &'a Map<String, Value>,
    reach: Reach,
}

/// Finds every place of every item reachable from the root module `root`.
pub(crate) fn reach(index: &Map<String, Value>, paths: &Map<String, Value>, root: u64) -> Reach {
    let mut walker = Walker {
        index,
        paths,
        reach: Reach::default(),
    };
    if let Some(name) = item(index, root).and_then(|root| root["name"].as_str()) {
        let hidden = item(index, root).is_some_and(is_hidden);
        walker.place(root, name, hidden, &mut Vec::new());
    }
    walker.reach
}

impl Walker<'_> {
    /// Records that item `id` is reachable at `path`; walks into it the first time a module
    /// is reached there. `stack` holds the modules being walked, so a module that re-exports
    /// one of its ancestors is listed but not walked again (which would never end).
    fn place(&mut self, id: u64, path: &str, hidden: bool, stack: &mut Vec<u64>) {
        let Some(item) = item(self.index, id) else {
            return;
        };
        let place = Place {
            path: path.to_owned(),
            hidden,
        };
        let is_new = self.reach.places.entry(id).or_default().insert(place);
        if is_new && kind(item) == "module" && !stack.contains(&id) {
            self.module(id, path, hidden, stack);
        }
    }

    /// Walks the items of module `id`, which is reachable at `path`.
    fn module(&mut self, id: u64, path: &str, hidden: bool, stack: &mut Vec<u64>) {
        let Some(module) = item(self.index, id) else {
            return;
        };
        stack.push(id);
        for child_id in list(&module["inner"]["module"]["items"])
            .iter()
            .filter_map(Value::as_u64)
        {
            let Some(child) = item(self.index, child_id) else {
                continue;
            };
            let hidden = hidden || is_hidden(child);
            match kind(child) {
                "use" => self.reexport(&child["inner"]["use"], path, hidden, stack),
                // Impls are found through the types and traits they belong to.
                "impl" => {}
                _ => {
                    if let Some(name) = child["name"].as_str() {
                        self.place(child_id, &format!("{path}::{name}"), hidden, stack);
                    }
                }
            }
        }
        stack.pop();
    }

    /// Follows a `pub use` in the module at `path`.
    fn reexport(&mut self, reexport: &Value, path: &str, hidden: bool, stack: &mut Vec<u64>) {
        let target_id = reexport["id"].as_u64();
        let target = target_id.and_then(|id| item(self.index, id));
        let name = text(&reexport["name"]);
        match (target_id, target) {
            // A glob brings the target module's items into this module, under this path.
            (Some(id), Some(target)) if reexport["is_glob"] == true && kind(target) == "module" => {
                if !stack.contains(&id) {
                    self.module(id, path, hidden, stack);
                }
            }
            (Some(id), Some(_)) if reexport["is_glob"] != true => {
                self.place(id, &format!("{path}::{name}"), hidden, stack);
            }
            // Another crate's item (or a glob over an enum's variants): one line naming the
            // source, since there is no local item behind it to list.
            _ => {
                let source = text(&reexport["source"]).to_owned();
                let full = full_path(self.paths, &reexport["id"]);
                let (name, target) = if reexport["is_glob"] == true {
                    ("*", format!("{}::*", full.unwrap_or(source)))
                } else {
                    (name, full.unwrap_or(source))
                };
                let prefix = if hidden { "#[doc(hidden)] " } else { "" };
                self.reach
                    .foreign
                    .insert(format!("{prefix}pub use {path}::{name} = {target}"));
            }
        }
    }
}

/// The path that names each reachable item in signatures: its shortest public path (fewest
/// segments, ties broken by sorting), the way users are meant to name it; visible paths win
/// over `#[doc(hidden)]` ones.
pub(crate) fn canonical_paths(reach: &Reach) -> HashMap<u64, String> {
    let mut canonical = HashMap::new();
    for (id, places) in &reach.places {
        let visible = places.iter().filter(|place| !place.hidden);
        let chosen = visible
            .min_by_key(|place| place_key(place))
            .or_else(|| places.iter().min_by_key(|place| place_key(place)));
        if let Some(place) = chosen {
            canonical.insert(*id, place.path.clone());
        }
    }
    canonical
}

/// Orders places by segment count, then by path.
fn place_key(place: &Place) -> (usize, &str) {
    (place.path.matches("::").count(), place.path.as_str())
}
