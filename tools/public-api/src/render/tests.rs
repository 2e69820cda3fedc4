//! The renderer on hand-written fragments of rustdoc JSON (format version 57).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::Renderer;

/// rustdoc's `paths` table for the fragments below: a few std items, one item of another
/// crate and one local item that is not publicly reachable.
fn paths() -> Map<String, Value> {
    let entries = json!({
        "1": {"crate_id": 1, "path": ["core", "clone", "Clone"], "kind": "trait"},
        "2": {"crate_id": 1, "path": ["core", "result", "Result"], "kind": "enum"},
        "3": {"crate_id": 1, "path": ["core", "time", "Duration"], "kind": "struct"},
        "4": {"crate_id": 1, "path": ["core", "fmt", "Error"], "kind": "struct"},
        "5": {"crate_id": 2, "path": ["tower_service", "Service"], "kind": "trait"},
        "6": {"crate_id": 0, "path": ["demo", "inner", "Hidden"], "kind": "struct"},
        "7": {"crate_id": 0, "path": ["demo", "inner", "Config"], "kind": "struct"},
        "8": {"crate_id": 1, "path": ["core", "ops", "function", "Fn"], "kind": "trait"},
        "9": {"crate_id": 3, "path": ["alloc", "sync", "Arc"], "kind": "struct"},
    });
    entries.as_object().cloned().unwrap_or_default()
}

/// Renders with `Config` (id 7) public at `demo::Config`.
fn render<T>(body: impl FnOnce(Renderer<'_>) -> T) -> T {
    let paths = paths();
    let public = HashMap::from([(7, "demo::Config".to_owned())]);
    body(Renderer {
        paths: &paths,
        public: &public,
    })
}

fn path(id: u64, written: &str, args: Value) -> Value {
    let mut path = json!({"resolved_path": {"path": written, "id": id}});
    path["resolved_path"]["args"] = args;
    path
}

fn angle(types: &[Value]) -> Value {
    let args: Vec<Value> = types.iter().map(|ty| json!({"type": ty})).collect();
    json!({"angle_bracketed": {"args": args, "constraints": []}})
}

fn generic(name: &str) -> Value {
    json!({"generic": name})
}

fn trait_bound(id: u64, written: &str) -> Value {
    json!({"trait_bound": {"trait": {"path": written, "id": id, "args": null}, "generic_params": [], "modifier": "none"}})
}

#[test]
fn a_function_with_generics_and_a_where_clause_renders_its_whole_signature() {
    let function = json!({
        "sig": {
            "inputs": [
                ["self", {"borrowed_ref": {"lifetime": null, "is_mutable": false, "type": generic("Self")}}],
                ["items", {"slice": generic("T")}],
                ["limit", path(3, "Duration", Value::Null)],
            ],
            "output": path(2, "Result", angle(&[generic("T"), path(4, "fmt::Error", Value::Null)])),
            "is_c_variadic": false,
        },
        "generics": {
            "params": [
                {"name": "'a", "kind": {"lifetime": {"outlives": []}}},
                {"name": "T", "kind": {"type": {"bounds": [trait_bound(1, "Clone")], "default": null, "is_synthetic": false}}},
            ],
            "where_predicates": [
                {"bound_predicate": {"type": generic("T"), "bounds": [{"outlives": "'a"}], "generic_params": []}},
            ],
        },
        "header": {"is_const": true, "is_unsafe": false, "is_async": false, "abi": "Rust"},
        "has_body": true,
    });
    let line = render(|r| {
        r.function(
            "pub ",
            "demo::Config::pick",
            &function,
            &["C: Clone".to_owned()],
        )
    });
    assert_eq!(
        line,
        "pub const fn demo::Config::pick<'a, T: Clone>(&self, items: [T], limit: Duration) \
         -> Result<T, core::fmt::Error> where C: Clone, T: 'a"
    );
}

#[test]
fn receivers_are_written_the_way_rust_spells_them() {
    let function = |receiver: Value| {
        json!({
            "sig": {"inputs": [["self", receiver]], "output": null, "is_c_variadic": false},
            "generics": {"params": [], "where_predicates": []},
            "header": {"is_const": false, "is_unsafe": true, "is_async": true, "abi": {"C": {"unwind": false}}},
            "has_body": true,
        })
    };
    let by_value = function(generic("Self"));
    let by_mut_ref = function(
        json!({"borrowed_ref": {"lifetime": "'a", "is_mutable": true, "type": generic("Self")}}),
    );
    let pinned = function(
        json!({"resolved_path": {"path": "Pin", "id": 99, "args": angle(&[json!({"borrowed_ref": {"lifetime": null, "is_mutable": true, "type": generic("Self")}})])}}),
    );
    render(|r| {
        assert_eq!(
            r.function("pub ", "demo::f", &by_value, &[]),
            "pub async unsafe extern \"C\" fn demo::f(self)"
        );
        assert_eq!(
            r.function("", "f", &by_mut_ref, &[]),
            "async unsafe extern \"C\" fn f(&'a mut self)"
        );
        assert_eq!(
            r.function("", "f", &pinned, &[]),
            "async unsafe extern \"C\" fn f(self: Pin<&mut Self>)"
        );
    });
}

#[test]
fn local_items_take_their_public_path_and_unreachable_ones_their_defining_path() {
    render(|r| {
        assert_eq!(r.ty(&path(7, "inner::Config", Value::Null)), "demo::Config");
        assert_eq!(r.ty(&path(6, "Hidden", Value::Null)), "demo::inner::Hidden");
        // An id missing from every table falls back to the path as written.
        assert_eq!(
            r.ty(&path(404, "somewhere::Thing", Value::Null)),
            "somewhere::Thing"
        );
    });
}

#[test]
fn std_paths_are_shortened_except_names_std_defines_twice() {
    render(|r| {
        assert_eq!(
            r.ty(&path(3, "std::time::Duration", Value::Null)),
            "Duration"
        );
        assert_eq!(
            r.ty(&path(9, "Arc", angle(&[json!({"primitive": "str"})]))),
            "Arc<str>"
        );
        assert_eq!(
            r.ty(&path(2, "io::Result", angle(&[json!({"tuple": []})]))),
            "Result<()>"
        );
        assert_eq!(
            r.ty(&path(4, "fmt::Error", Value::Null)),
            "core::fmt::Error"
        );
        assert_eq!(
            r.ty(&path(5, "Service", angle(&[generic("R")]))),
            "tower_service::Service<R>"
        );
    });
}

#[test]
fn compound_types_render_as_rust_source() {
    let dyn_fn = json!({"dyn_trait": {
        "traits": [
            {"trait": {"path": "Fn", "id": 8, "args": {"parenthesized": {"inputs": [{"borrowed_ref": {"lifetime": null, "is_mutable": false, "type": {"primitive": "str"}}}], "output": {"primitive": "bool"}}}}, "generic_params": []},
            {"trait": {"path": "Send", "id": 98, "args": null}, "generic_params": []},
        ],
        "lifetime": "'static",
    }});
    let pointer = json!({"function_pointer": {
        "sig": {"inputs": [["_", {"borrowed_ref": {"lifetime": "'b", "is_mutable": false, "type": {"primitive": "u8"}}}]], "output": {"primitive": "u8"}, "is_c_variadic": false},
        "generic_params": [{"name": "'b", "kind": {"lifetime": {"outlives": []}}}],
        "header": {"is_const": false, "is_unsafe": false, "is_async": false, "abi": "Rust"},
    }});
    render(|r| {
        assert_eq!(r.ty(&dyn_fn), "dyn Fn(&str) -> bool + Send + 'static");
        assert_eq!(r.ty(&pointer), "for<'b> fn(&'b u8) -> u8");
        assert_eq!(r.ty(&json!({"tuple": [generic("A")]})), "(A,)");
        assert_eq!(
            r.ty(&json!({"array": {"type": {"primitive": "u8"}, "len": "4"}})),
            "[u8; 4]"
        );
        assert_eq!(
            r.ty(&json!({"raw_pointer": {"is_mutable": false, "type": generic("T")}})),
            "*const T"
        );
        assert_eq!(
            r.ty(&json!({"impl_trait": [trait_bound(1, "Clone"), {"outlives": "'a"}]})),
            "impl Clone + 'a"
        );
    });
}

#[test]
fn associated_types_are_qualified_unless_a_parameter_names_them_plainly() {
    let qualified = |self_type: Value, args: Value| json!({"qualified_path": {"name": "Response", "args": null, "self_type": self_type, "trait": {"path": "", "id": 5, "args": args}}});
    render(|r| {
        assert_eq!(r.ty(&qualified(generic("S"), Value::Null)), "S::Response");
        assert_eq!(
            r.ty(&qualified(generic("S"), angle(&[generic("R")]))),
            "<S as tower_service::Service<R>>::Response"
        );
        assert_eq!(
            r.ty(&qualified(path(7, "Config", Value::Null), Value::Null)),
            "<demo::Config as tower_service::Service>::Response"
        );
    });
}

#[test]
fn generic_parameters_show_bounds_and_defaults_but_not_impl_trait_arguments() {
    let params = json!([
        {"name": "'a", "kind": {"lifetime": {"outlives": ["'b"]}}},
        {"name": "C", "kind": {"type": {"bounds": [trait_bound(1, "Clone")], "default": path(7, "Config", Value::Null), "is_synthetic": false}}},
        {"name": "impl Clone", "kind": {"type": {"bounds": [trait_bound(1, "Clone")], "default": null, "is_synthetic": true}}},
        {"name": "N", "kind": {"const": {"type": {"primitive": "usize"}, "default": "3"}}},
    ]);
    render(|r| {
        assert_eq!(
            r.params(&params),
            "<'a: 'b, C: Clone = demo::Config, const N: usize = 3>"
        );
        assert_eq!(
            r.param_bounds(&json!({"params": params})),
            ["'a: 'b", "C: Clone"]
        );
    });
}
