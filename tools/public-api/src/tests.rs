//! [`listing`] on small hand-written rustdoc JSON documents (format version 57).

use serde_json::{Value, json};

use crate::{Error, FORMAT_VERSION, listing};

/// Moves every entry of object `extra` into object `base` (the values are moved, not copied,
/// since `json!` only borrows what it is given).
fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}

/// A public item of the local crate; `extra` is merged over the defaults (attrs, ...).
fn item(id: u64, name: Option<&str>, inner: Value, extra: Value) -> Value {
    let mut item = json!({
        "id": id, "crate_id": 0, "name": name, "span": null, "visibility": "public",
        "docs": null, "links": {}, "attrs": [], "deprecation": null,
    });
    item["inner"] = inner;
    merge(item, extra)
}

fn module(id: u64, name: &str, items: &[u64]) -> Value {
    let inner = json!({"module": {"is_crate": id == 0, "items": items, "is_stripped": false}});
    item(id, Some(name), inner, json!({}))
}

fn reexport(id: u64, name: &str, target: u64, glob: bool) -> Value {
    let source = format!("somewhere::{name}");
    let inner = json!({"use": {"source": source, "name": name, "id": target, "is_glob": glob}});
    item(id, None, inner, json!({}))
}

fn no_generics() -> Value {
    json!({"params": [], "where_predicates": []})
}

fn generic(name: &str) -> Value {
    json!({"generic": name})
}

fn field(id: u64, name: &str, ty: Value, visibility: &str) -> Value {
    let mut inner = json!({});
    inner["struct_field"] = ty;
    item(id, Some(name), inner, json!({"visibility": visibility}))
}

fn function(id: u64, name: &str, inputs: Value, output: Value, generics: Value) -> Value {
    let mut function = json!({
        "sig": {"is_c_variadic": false},
        "header": {"is_const": false, "is_unsafe": false, "is_async": false, "abi": "Rust"},
        "has_body": true,
    });
    function["sig"]["inputs"] = inputs;
    function["sig"]["output"] = output;
    function["generics"] = generics;
    let mut inner = json!({});
    inner["function"] = function;
    item(id, Some(name), inner, json!({}))
}

fn trait_impl(id: u64, trait_id: u64, trait_name: &str, for_type: Value, extra: Value) -> Value {
    let mut inner = json!({
        "is_unsafe": false, "generics": no_generics(), "provided_trait_methods": [],
        "trait": {"path": trait_name, "id": trait_id, "args": null}, "items": [],
        "is_negative": false, "is_synthetic": false, "blanket_impl": null,
    });
    inner["for"] = for_type;
    let mut wrapped = json!({});
    wrapped["impl"] = merge(inner, extra);
    item(id, None, wrapped, json!({"visibility": "default"}))
}

/// A document for crate `demo` whose root module (id 0) holds `root_items`.
fn document(root_items: &[u64], items: Vec<Value>) -> Value {
    let mut index = serde_json::Map::new();
    index.insert("0".to_owned(), module(0, "demo", root_items));
    for item in items {
        index.insert(item["id"].to_string(), item);
    }
    json!({
        "root": 0, "crate_version": "0.1.0", "includes_private": false, "index": index,
        "paths": {
            "90": {"crate_id": 1, "path": ["core", "marker", "Send"], "kind": "trait"},
            "91": {"crate_id": 1, "path": ["core", "marker", "Freeze"], "kind": "trait"},
            "92": {"crate_id": 1, "path": ["core", "convert", "From"], "kind": "trait"},
            "93": {"crate_id": 1, "path": ["core", "marker", "StructuralPartialEq"], "kind": "trait"},
            "94": {"crate_id": 1, "path": ["core", "iter", "traits", "iterator", "Iterator"], "kind": "trait"},
            "95": {"crate_id": 1, "path": ["core", "time", "Duration"], "kind": "struct"},
            "96": {"crate_id": 2, "path": ["tokio", "sync", "Semaphore"], "kind": "struct"},
        },
        "external_crates": {}, "target": {"triple": "x86_64-unknown-linux-gnu", "target_features": []},
        "format_version": FORMAT_VERSION,
    })
}

fn lines(doc: &Value) -> Vec<String> {
    listing(doc).unwrap_or_else(|err| panic!("listing failed: {err}"))
}

#[test]
fn a_struct_lists_its_public_fields_and_methods_at_every_path_it_is_reexported_to() {
    let doc = document(
        &[1, 9],
        vec![
            module(1, "config", &[2]),
            item(
                2,
                Some("Config"),
                json!({"struct": {
                    "kind": {"plain": {"fields": [3, 4], "has_stripped_fields": true}},
                    "generics": {"params": [{"name": "T", "kind": {"type": {"bounds": [], "default": null, "is_synthetic": false}}}], "where_predicates": []},
                    "impls": [5],
                }}),
                json!({"attrs": ["non_exhaustive"]}),
            ),
            field(
                3,
                "limit",
                json!({"resolved_path": {"path": "Duration", "id": 95, "args": null}}),
                "public",
            ),
            field(4, "secret", json!({"primitive": "u8"}), "default"),
            item(
                5,
                None,
                json!({"impl": {
                    "is_unsafe": false, "provided_trait_methods": [], "trait": null, "items": [6],
                    "generics": {"params": [{"name": "T", "kind": {"type": {"bounds": [{"trait_bound": {"trait": {"path": "Send", "id": 90, "args": null}, "generic_params": [], "modifier": "none"}}], "default": null, "is_synthetic": false}}}], "where_predicates": []},
                    "for": {"resolved_path": {"path": "Config", "id": 2, "args": {"angle_bracketed": {"args": [{"type": generic("T")}], "constraints": []}}}},
                    "is_negative": false, "is_synthetic": false, "blanket_impl": null,
                }}),
                json!({"visibility": "default"}),
            ),
            function(
                6,
                "limit",
                json!([["self", {"borrowed_ref": {"lifetime": null, "is_mutable": false, "type": generic("Self")}}]]),
                json!({"resolved_path": {"path": "Config", "id": 2, "args": null}}),
                no_generics(),
            ),
            reexport(9, "Config", 2, false),
        ],
    );
    assert_eq!(
        lines(&doc),
        [
            "#[non_exhaustive] pub struct demo::Config<T>",
            "#[non_exhaustive] pub struct demo::config::Config<T>",
            "pub demo::Config::limit: Duration",
            "pub demo::config::Config::limit: Duration",
            // A type in a signature is named by its shortest public path.
            "pub fn demo::Config<T>::limit(&self) -> demo::Config where T: Send",
            "pub fn demo::config::Config<T>::limit(&self) -> demo::Config where T: Send",
            "pub mod demo",
            "pub mod demo::config",
        ]
    );
}

#[test]
fn an_enum_lists_each_variant_in_its_shape() {
    let doc = document(
        &[1],
        vec![
            item(
                1,
                Some("Event"),
                json!({"enum": {
                    "generics": {"params": [{"name": "E", "kind": {"type": {"bounds": [], "default": null, "is_synthetic": false}}}], "where_predicates": []},
                    "has_stripped_variants": false, "variants": [2, 3, 5, 7], "impls": [],
                }}),
                json!({}),
            ),
            item(
                2,
                Some("Closed"),
                json!({"variant": {"kind": "plain", "discriminant": {"expr": "4", "value": "4"}}}),
                json!({}),
            ),
            item(
                3,
                Some("Failed"),
                json!({"variant": {"kind": {"tuple": [4, null]}, "discriminant": null}}),
                json!({}),
            ),
            field(4, "0", generic("E"), "default"),
            item(
                5,
                Some("Opened"),
                json!({"variant": {"kind": {"struct": {"fields": [6], "has_stripped_fields": false}}, "discriminant": null}}),
                json!({}),
            ),
            field(6, "after", json!({"primitive": "u32"}), "default"),
            item(
                7,
                Some("Legacy"),
                json!({"variant": {"kind": "plain", "discriminant": null}}),
                json!({"attrs": [{"other": "#[doc(hidden)]"}]}),
            ),
        ],
    );
    assert_eq!(
        lines(&doc),
        [
            "#[doc(hidden)] pub demo::Event::Legacy",
            "pub demo::Event::Closed = 4",
            "pub demo::Event::Failed(E, _)",
            "pub demo::Event::Opened { .. }",
            "pub demo::Event::Opened::after: u32",
            "pub enum demo::Event<E>",
            "pub mod demo",
        ]
    );
}

#[test]
fn trait_impls_are_listed_once_without_blanket_or_toolchain_internal_impls() {
    let unit = json!({"resolved_path": {"path": "Unit", "id": 1, "args": null}});
    let doc = document(
        &[1, 9],
        vec![
            item(
                1,
                Some("Unit"),
                json!({"struct": {"kind": "unit", "generics": no_generics(), "impls": [2, 3, 4, 5, 6]}}),
                json!({}),
            ),
            trait_impl(2, 90, "Send", unit.clone(), json!({"is_synthetic": true})),
            trait_impl(3, 91, "Freeze", unit.clone(), json!({"is_synthetic": true})),
            trait_impl(
                4,
                92,
                "From",
                unit.clone(),
                json!({"blanket_impl": generic("T")}),
            ),
            trait_impl(5, 93, "StructuralPartialEq", unit.clone(), json!({})),
            trait_impl(6, 94, "Iterator", unit, json!({"items": [7]})),
            item(
                7,
                Some("Item"),
                json!({"assoc_type": {"generics": no_generics(), "bounds": [], "type": {"primitive": "u8"}}}),
                json!({}),
            ),
            reexport(9, "Again", 1, false),
        ],
    );
    assert_eq!(
        lines(&doc),
        [
            "impl Iterator for demo::Again",
            "impl Send for demo::Again",
            "pub mod demo",
            "pub struct demo::Again;",
            "pub struct demo::Unit;",
            "type <demo::Again as Iterator>::Item = u8",
        ]
    );
}

#[test]
fn a_trait_lists_required_and_provided_members_and_its_implementations() {
    let mut provided = function(
        3,
        "describe",
        json!([["self", {"borrowed_ref": {"lifetime": null, "is_mutable": false, "type": generic("Self")}}]]),
        Value::Null,
        no_generics(),
    );
    provided["inner"]["function"]["has_body"] = json!(true);
    let mut required = function(
        4,
        "check",
        json!([["x", generic("T")]]),
        json!({"primitive": "bool"}),
        no_generics(),
    );
    required["inner"]["function"]["has_body"] = json!(false);
    let doc = document(
        &[1],
        vec![
            item(
                1,
                Some("Check"),
                json!({"trait": {
                    "is_auto": false, "is_unsafe": true, "is_dyn_compatible": true, "items": [2, 3, 4, 5],
                    "generics": {"params": [{"name": "T", "kind": {"type": {"bounds": [], "default": null, "is_synthetic": false}}}], "where_predicates": []},
                    "bounds": [{"trait_bound": {"trait": {"path": "Send", "id": 90, "args": null}, "generic_params": [], "modifier": "none"}}],
                    "implementations": [6],
                }}),
                json!({}),
            ),
            item(
                2,
                Some("Output"),
                json!({"assoc_type": {"generics": no_generics(), "bounds": [], "type": null}}),
                json!({}),
            ),
            provided,
            required,
            item(
                5,
                Some("LIMIT"),
                json!({"assoc_const": {"type": {"primitive": "u32"}, "value": "3"}}),
                json!({}),
            ),
            trait_impl(
                6,
                1,
                "Check",
                generic("F"),
                json!({"is_unsafe": true, "generics": {"params": [{"name": "F", "kind": {"type": {"bounds": [], "default": null, "is_synthetic": false}}}], "where_predicates": []}}),
            ),
        ],
    );
    assert_eq!(
        lines(&doc),
        [
            "pub const demo::Check::LIMIT: u32 = ...",
            "pub fn demo::Check::check(x: T) -> bool",
            "pub fn demo::Check::describe(&self) { ... }",
            "pub mod demo",
            "pub type demo::Check::Output",
            "pub unsafe trait demo::Check<T>: Send",
            "unsafe impl<F> demo::Check for F",
        ]
    );
}

#[test]
fn reexports_of_other_crates_and_glob_reexports_are_followed() {
    let doc = document(
        &[1, 4, 5],
        vec![
            module(1, "inner", &[2, 3]),
            function(2, "run", json!([]), Value::Null, no_generics()),
            item(
                3,
                Some("LIMIT"),
                json!({"constant": {"type": {"primitive": "u32"}, "const": {"expr": "_", "value": null, "is_literal": false}}}),
                json!({}),
            ),
            reexport(4, "inner", 1, true),
            reexport(5, "Semaphore", 96, false),
        ],
    );
    assert_eq!(
        lines(&doc),
        [
            "pub const demo::LIMIT: u32",
            "pub const demo::inner::LIMIT: u32",
            "pub fn demo::inner::run()",
            "pub fn demo::run()",
            "pub mod demo",
            "pub mod demo::inner",
            "pub use demo::Semaphore = tokio::sync::Semaphore",
        ]
    );
}

#[test]
fn hidden_modules_hide_everything_reached_through_them() {
    let doc = document(
        &[1, 3],
        vec![
            item(
                1,
                Some("internal"),
                json!({"module": {"is_crate": false, "items": [2], "is_stripped": false}}),
                json!({"attrs": [{"other": "#[doc(hidden)]"}]}),
            ),
            function(2, "helper", json!([]), Value::Null, no_generics()),
            reexport(3, "helper", 2, false),
        ],
    );
    assert_eq!(
        lines(&doc),
        [
            "#[doc(hidden)] pub fn demo::internal::helper()",
            "#[doc(hidden)] pub mod demo::internal",
            "pub fn demo::helper()",
            "pub mod demo",
        ]
    );
}

#[test]
fn a_module_that_reexports_itself_is_listed_without_walking_forever() {
    let doc = document(
        &[1],
        vec![module(1, "again", &[2]), reexport(2, "again", 1, false)],
    );
    assert_eq!(
        lines(&doc),
        [
            "pub mod demo",
            "pub mod demo::again",
            "pub mod demo::again::again"
        ]
    );
}

#[test]
fn another_format_version_is_refused_naming_both_versions() {
    let mut doc = document(&[], vec![]);
    doc["format_version"] = json!(58);
    let err = listing(&doc).expect_err("version 58 must be refused");
    assert_eq!(err, Error::FormatVersion { found: Some(58) });
    let message = err.to_string();
    assert!(message.contains("is 58"), "{message}");
    assert!(
        message.contains(&format!("understands {FORMAT_VERSION}")),
        "{message}"
    );
}

#[test]
fn a_document_without_an_index_is_refused() {
    let mut doc = document(&[], vec![]);
    doc["index"] = Value::Null;
    assert_eq!(listing(&doc), Err(Error::Malformed("no `index` object")));
}

#[test]
fn signatures_name_a_type_by_its_shortest_path_not_its_first_in_sorting() {
    let doc = document(
        &[1, 4, 5],
        vec![
            module(1, "a", &[2]),
            module(2, "b", &[3]),
            item(
                3,
                Some("Token"),
                json!({"struct": {"kind": "unit", "generics": no_generics(), "impls": []}}),
                json!({}),
            ),
            module(4, "z", &[6]),
            function(
                5,
                "token",
                json!([]),
                json!({"resolved_path": {"path": "a::b::Token", "id": 3, "args": null}}),
                no_generics(),
            ),
            reexport(6, "Token", 3, false),
        ],
    );
    assert!(lines(&doc).contains(&"pub fn demo::token() -> demo::z::Token".to_owned()));
}
