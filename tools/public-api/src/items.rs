//! The lines for each kind of item: one per item at each of its places, plus one per member
//! (field, variant, method, associated item) and one per trait implementation.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value};

use crate::render::{Renderer, list, tag, text, where_clause};
use crate::walk::{Place, is_hidden, item};

/// Auto traits that stable code can name. rustdoc also synthesises impls of unstable ones
/// (`Freeze`, `UnsafeUnpin`); those come and go with the toolchain and are left out.
const STABLE_AUTO_TRAITS: &[&str] = &["RefUnwindSafe", "Send", "Sync", "Unpin", "UnwindSafe"];

/// std traits that stable code cannot name but derives implement (`derive(PartialEq)` adds
/// `StructuralPartialEq`, `derive(Clone)` a hidden `TrivialClone`): toolchain internals, left
/// out like the unstable auto traits. Matched on the shortened std name, so a local trait
/// of the same name is still listed.
const INTERNAL_STD_TRAITS: &[&str] = &["StructuralPartialEq", "TrivialClone"];

/// Collects the sorted, de-duplicated lines of a listing.
pub(crate) struct Lines<'a> {
    index: &'a Map<String, Value>,
    render: Renderer<'a>,
    /// Trait impls already listed: each is listed once, however many places its type has.
    impls_done: HashSet<u64>,
    pub(crate) lines: BTreeSet<String>,
}

/// `#[doc(hidden)] #[deprecated] #[non_exhaustive] ` as they apply, in that order.
fn prefix(item: &Value, hidden: bool) -> String {
    let mut prefix = String::new();
    if hidden || is_hidden(item) {
        prefix.push_str("#[doc(hidden)] ");
    }
    if !item["deprecation"].is_null() {
        prefix.push_str("#[deprecated] ");
    }
    if list(&item["attrs"])
        .iter()
        .any(|attr| attr == "non_exhaustive")
    {
        prefix.push_str("#[non_exhaustive] ");
    }
    prefix
}

impl<'a> Lines<'a> {
    pub(crate) fn new(index: &'a Map<String, Value>, render: Renderer<'a>) -> Self {
        Self {
            index,
            render,
            impls_done: HashSet::new(),
            lines: BTreeSet::new(),
        }
    }

    fn push(&mut self, line: String) {
        self.lines.insert(line);
    }

    /// The lines for `item` at `place`. `type_hidden` says whether every place of the item is
    /// hidden, which makes its trait impls (listed once, not per place) hidden too.
    pub(crate) fn item(&mut self, item: &Value, place: &Place, type_hidden: bool) {
        let lead = prefix(item, place.hidden);
        let path = place.path.as_str();
        let (kind, inner) = tag(&item["inner"]);
        let render = self.render;
        match kind {
            "module" => self.push(format!("{lead}pub mod {path}")),
            "struct" | "union" => self.structure(kind, inner, &lead, place, type_hidden),
            "enum" => self.enumeration(inner, &lead, place, type_hidden),
            "trait" => self.trait_(inner, &lead, place, type_hidden),
            "function" => self.push(render.function(&format!("{lead}pub "), path, inner, &[])),
            "type_alias" => {
                let generics = &inner["generics"];
                self.push(format!(
                    "{lead}pub type {path}{} = {}{}",
                    render.params(&generics["params"]),
                    render.ty(&inner["type"]),
                    where_clause(&render.predicates(generics)),
                ));
            }
            "constant" => self.push(format!(
                "{lead}pub const {path}: {}",
                render.ty(&inner["type"])
            )),
            "static" => {
                let mutability = if inner["is_mutable"] == true {
                    "mut "
                } else {
                    ""
                };
                let ty = render.ty(&inner["type"]);
                self.push(format!("{lead}pub static {mutability}{path}: {ty}"));
            }
            "macro" => self.push(format!("{lead}pub macro {path}! {}", macro_rules(inner))),
            "proc_macro" => {
                let form = match text(&inner["kind"]) {
                    "attr" => format!("#[{path}]"),
                    "derive" => format!("#[derive({path})]"),
                    _ => format!("{path}!"),
                };
                self.push(format!("{lead}pub proc macro {form}"));
            }
            "trait_alias" => {
                let generics = &inner["generics"];
                self.push(format!(
                    "{lead}pub trait {path}{} = {}{}",
                    render.params(&generics["params"]),
                    render.bounds(&inner["params"]),
                    where_clause(&render.predicates(generics)),
                ));
            }
            "extern_type" => self.push(format!("{lead}pub extern type {path}")),
            "extern_crate" => {
                self.push(format!(
                    "{lead}pub extern crate {path} = {}",
                    text(&inner["name"])
                ));
            }
            // Only std's own documentation has these.
            "primitive" | "keyword" | "attribute" => {}
            other => self.push(format!("{lead}<unsupported item {other}> {path}")),
        }
    }

    /// A struct or union, its public fields, inherent members and trait impls.
    fn structure(
        &mut self,
        kind: &str,
        inner: &Value,
        lead: &str,
        place: &Place,
        type_hidden: bool,
    ) {
        let path = &place.path;
        let generics = &inner["generics"];
        let (shape, fields) = match tag(&inner["kind"]) {
            ("unit", _) => (";".to_owned(), &[][..]),
            ("tuple", fields) => {
                let fields = list(fields);
                (format!("({})", vec!["_"; fields.len()].join(", ")), fields)
            }
            ("plain", plain) => (String::new(), list(&plain["fields"])),
            // Unions keep their fields next to the generics.
            _ => (String::new(), list(&inner["fields"])),
        };
        let (params, predicates) = (
            self.render.params(&generics["params"]),
            self.render.predicates(generics),
        );
        let (shape, tail) = if shape == ";" {
            (String::new(), format!("{};", where_clause(&predicates)))
        } else {
            (shape, where_clause(&predicates))
        };
        self.push(format!("{lead}pub {kind} {path}{params}{shape}{tail}"));
        for field_id in fields.iter().filter_map(Value::as_u64) {
            let Some(field) = item(self.index, field_id) else {
                continue;
            };
            if field["visibility"] == "public" {
                let lead = prefix(field, place.hidden);
                let ty = self.render.ty(&field["inner"]["struct_field"]);
                self.push(format!("{lead}pub {path}::{}: {ty}", text(&field["name"])));
            }
        }
        self.impls(&inner["impls"], place, type_hidden);
    }

    /// An enum, each variant and variant field, inherent members and trait impls.
    fn enumeration(&mut self, inner: &Value, lead: &str, place: &Place, type_hidden: bool) {
        let path = &place.path;
        let generics = &inner["generics"];
        self.push(format!(
            "{lead}pub enum {path}{}{}",
            self.render.params(&generics["params"]),
            where_clause(&self.render.predicates(generics)),
        ));
        for variant_id in list(&inner["variants"]).iter().filter_map(Value::as_u64) {
            let Some(variant) = item(self.index, variant_id) else {
                continue;
            };
            let lead = prefix(variant, place.hidden);
            let variant_path = format!("{path}::{}", text(&variant["name"]));
            let fields = self.variant_fields(&variant["inner"]["variant"], &variant_path, place);
            self.push(format!("{lead}pub {variant_path}{fields}"));
        }
        self.impls(&inner["impls"], place, type_hidden);
    }

    /// What follows a variant's path: `(T, _)`, ` { .. }` (its fields get their own lines),
    /// ` = discriminant`, or nothing.
    fn variant_fields(&mut self, variant: &Value, variant_path: &str, place: &Place) -> String {
        let field = |id: &Value| id.as_u64().and_then(|id| item(self.index, id));
        match tag(&variant["kind"]) {
            ("tuple", fields) => {
                let types: Vec<String> = list(fields)
                    .iter()
                    .map(|id| {
                        field(id).map_or("_".to_owned(), |f| {
                            self.render.ty(&f["inner"]["struct_field"])
                        })
                    })
                    .collect();
                format!("({})", types.join(", "))
            }
            ("struct", fields) => {
                let mut lines = Vec::new();
                for field in list(&fields["fields"]).iter().filter_map(field) {
                    let lead = prefix(field, place.hidden);
                    let ty = self.render.ty(&field["inner"]["struct_field"]);
                    lines.push(format!(
                        "{lead}pub {variant_path}::{}: {ty}",
                        text(&field["name"])
                    ));
                }
                self.lines.extend(lines);
                " { .. }".to_owned()
            }
            _ => match variant["discriminant"]["expr"].as_str() {
                Some(expr) => format!(" = {expr}"),
                None => String::new(),
            },
        }
    }

    /// A trait, its required and provided members, and its local implementations.
    fn trait_(&mut self, inner: &Value, lead: &str, place: &Place, type_hidden: bool) {
        let path = &place.path;
        let generics = &inner["generics"];
        let render = self.render;
        let mut header = format!("{lead}pub ");
        for (flag, word) in [("is_unsafe", "unsafe "), ("is_auto", "auto ")] {
            if inner[flag] == true {
                header.push_str(word);
            }
        }
        self.push(format!(
            "{header}trait {path}{}{}{}",
            render.params(&generics["params"]),
            render.colon_bounds(&inner["bounds"]),
            where_clause(&render.predicates(generics)),
        ));
        for member in list(&inner["items"])
            .iter()
            .filter_map(|id| item(self.index, id.as_u64()?))
        {
            let line = self.trait_member(member, path, place.hidden);
            self.push(line);
        }
        for impl_id in list(&inner["implementations"])
            .iter()
            .filter_map(Value::as_u64)
        {
            self.trait_impl(impl_id, type_hidden);
        }
    }

    /// A trait's method (` { ... }` when it is provided), associated type or constant
    /// (` = ...` when it has a default).
    fn trait_member(&self, member: &Value, trait_path: &str, hidden: bool) -> String {
        let render = self.render;
        let lead = prefix(member, hidden);
        let path = format!("{trait_path}::{}", text(&member["name"]));
        let (kind, body) = tag(&member["inner"]);
        match kind {
            "function" => {
                let provided = if body["has_body"] == true {
                    " { ... }"
                } else {
                    ""
                };
                let signature = render.function(&format!("{lead}pub "), &path, body, &[]);
                format!("{signature}{provided}")
            }
            "assoc_type" => {
                let default = if body["type"].is_null() {
                    String::new()
                } else {
                    format!(" = {}", render.ty(&body["type"]))
                };
                format!(
                    "{lead}pub type {path}{}{}{default}{}",
                    render.params(&body["generics"]["params"]),
                    render.colon_bounds(&body["bounds"]),
                    where_clause(&render.predicates(&body["generics"])),
                )
            }
            "assoc_const" => {
                let default = if body["value"].is_null() {
                    ""
                } else {
                    " = ..."
                };
                format!(
                    "{lead}pub const {path}: {}{default}",
                    render.ty(&body["type"])
                )
            }
            other => format!("{lead}<unsupported trait item {other}> {path}"),
        }
    }

    /// The members of a type's inherent impls, at this place; its trait impls, once.
    fn impls(&mut self, impls: &Value, place: &Place, type_hidden: bool) {
        for impl_id in list(impls).iter().filter_map(Value::as_u64) {
            let Some(impl_item) = item(self.index, impl_id) else {
                continue;
            };
            let imp = &impl_item["inner"]["impl"];
            if !imp["trait"].is_null() {
                self.trait_impl(impl_id, type_hidden);
                continue;
            }
            let render = self.render;
            // The impl's self type at this place, with the impl's own arguments: `Policy<S>`.
            let owner = format!(
                "{}{}",
                place.path,
                render.generic_args(&imp["for"]["resolved_path"]["args"])
            );
            let mut outer = render.param_bounds(&imp["generics"]);
            outer.extend(render.predicates(&imp["generics"]));
            let hidden = place.hidden || is_hidden(impl_item);
            for member in list(&imp["items"])
                .iter()
                .filter_map(|id| item(self.index, id.as_u64()?))
            {
                if member["visibility"] != "public" {
                    continue;
                }
                let lead = prefix(member, hidden);
                let member_path = format!("{owner}::{}", text(&member["name"]));
                let (kind, body) = tag(&member["inner"]);
                let line = match kind {
                    "function" => {
                        render.function(&format!("{lead}pub "), &member_path, body, &outer)
                    }
                    "assoc_const" => format!(
                        "{lead}pub const {member_path}: {}",
                        render.ty(&body["type"])
                    ),
                    "assoc_type" => format!(
                        "{lead}pub type {member_path} = {}",
                        render.ty(&body["type"])
                    ),
                    other => format!("{lead}<unsupported impl item {other}> {member_path}"),
                };
                self.push(line);
            }
        }
    }

    /// `impl<T: Clone> Trait for Type<T> where ..`, plus one line per associated type or
    /// const it defines. Its methods are the trait's and are not repeated. Blanket impls
    /// (`impl<T> From<T> for T`) and impls of toolchain-internal traits are left out.
    fn trait_impl(&mut self, impl_id: u64, type_hidden: bool) {
        if !self.impls_done.insert(impl_id) {
            return;
        }
        let Some(impl_item) = item(self.index, impl_id) else {
            return;
        };
        let imp = &impl_item["inner"]["impl"];
        let render = self.render;
        let trait_path = render.resolved(&imp["trait"]);
        let trait_name = render.item_path(&imp["trait"]["id"], text(&imp["trait"]["path"]));
        let internal = if imp["is_synthetic"] == true {
            !STABLE_AUTO_TRAITS.contains(&trait_name.as_str())
        } else {
            INTERNAL_STD_TRAITS.contains(&trait_name.as_str())
        };
        if !imp["blanket_impl"].is_null() || internal {
            return;
        }
        let lead = prefix(impl_item, type_hidden);
        let unsafety = if imp["is_unsafe"] == true {
            "unsafe "
        } else {
            ""
        };
        let negation = if imp["is_negative"] == true { "!" } else { "" };
        let for_type = render.ty(&imp["for"]);
        self.push(format!(
            "{lead}{unsafety}impl{} {negation}{trait_path} for {for_type}{}",
            render.params(&imp["generics"]["params"]),
            where_clause(&render.predicates(&imp["generics"])),
        ));
        let qualified = format!("<{for_type} as {trait_path}>");
        for member in list(&imp["items"])
            .iter()
            .filter_map(|id| item(self.index, id.as_u64()?))
        {
            let name = text(&member["name"]);
            let lead = prefix(member, type_hidden);
            match tag(&member["inner"]) {
                ("assoc_type", body) => self.push(format!(
                    "{lead}type {qualified}::{name}{} = {}",
                    render.params(&body["generics"]["params"]),
                    render.ty(&body["type"]),
                )),
                ("assoc_const", body) => {
                    self.push(format!(
                        "{lead}const {qualified}::{name}: {}",
                        render.ty(&body["type"])
                    ));
                }
                _ => {}
            }
        }
    }
}

/// The arms of a `macro_rules!` macro on one line: rustdoc gives them with `{ ... }` bodies,
/// which is what callers depend on (the matchers), without the expansion.
fn macro_rules(source: &Value) -> String {
    let source = text(source);
    let arms = source.find('{').map_or("", |start| &source[start..]);
    arms.split_whitespace().collect::<Vec<_>>().join(" ")
}
