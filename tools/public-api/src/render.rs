//! Rust-like text for the types, bounds, generics and signatures found in rustdoc JSON.
//!
//! rustdoc serialises its enums externally tagged: a unit variant is a bare string
//! (`"infer"`), any other variant a one-key object (`{"generic": "T"}`). [`tag`] splits
//! both shapes into the variant's name and body, so every match below reads the same way.

use std::collections::HashMap;

use serde_json::{Map, Value};

/// What [`tag`] returns as the body of a unit variant; a `static` so it can be borrowed.
static NULL: Value = Value::Null;

/// Names that std defines in more than one module (`fmt::Error`, `io::Error`,
/// `error::Error`, ...). Paths to these are not shortened, so they stay unambiguous; only
/// `core::result::Result` is written `Result`.
const AMBIGUOUS_STD_NAMES: &[&str] = &[
    "Drain", "Entry", "Error", "IntoIter", "Iter", "IterMut", "Keys", "Ordering", "Result",
    "Values",
];

/// The variant name and body of an externally tagged rustdoc enum value.
pub(crate) fn tag(value: &Value) -> (&str, &Value) {
    match value {
        Value::String(name) => (name, &NULL),
        Value::Object(map) if map.len() == 1 => map
            .iter()
            .next()
            .map_or(("", &NULL), |(name, body)| (name.as_str(), body)),
        _ => ("", &NULL),
    }
}

/// The string in `value`, or `""` when it is not a string (an absent optional name).
pub(crate) fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The elements of a JSON array; nothing when `value` is not an array (`null` lists).
pub(crate) fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// Shortens a path into `std`, `core` or `alloc` to the name people write (`Duration`,
/// `Arc`), except for the names in [`AMBIGUOUS_STD_NAMES`].
fn shorten_std(segments: &[&str]) -> String {
    match segments {
        ["core", "result", "Result"] => "Result".to_owned(),
        [.., name] if !AMBIGUOUS_STD_NAMES.contains(name) => (*name).to_owned(),
        _ => segments.join("::"),
    }
}

/// The full path of item `id` in rustdoc's `paths` table, unshortened.
pub(crate) fn full_path(paths: &Map<String, Value>, id: &Value) -> Option<String> {
    let summary = paths.get(&id.as_u64()?.to_string())?;
    let segments: Vec<&str> = list(&summary["path"]).iter().map(text).collect();
    (!segments.is_empty()).then(|| segments.join("::"))
}

/// Renders rustdoc JSON fragments as text, naming every item by a stable path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Renderer<'a> {
    /// rustdoc's `paths` table: the crate and path of every item the document refers to.
    pub(crate) paths: &'a Map<String, Value>,
    /// The public path chosen for each reachable item of the crate being listed.
    pub(crate) public: &'a HashMap<u64, String>,
}

impl Renderer<'_> {
    /// The path naming item `id`: its public path when it is a reachable local item, the path
    /// from rustdoc's table otherwise (std paths shortened), `written` as the last resort.
    pub(crate) fn item_path(&self, id: &Value, written: &str) -> String {
        let Some(id) = id.as_u64() else {
            return written.to_owned();
        };
        if let Some(path) = self.public.get(&id) {
            return path.clone();
        }
        let Some(summary) = self.paths.get(&id.to_string()) else {
            return written.to_owned();
        };
        let segments: Vec<&str> = list(&summary["path"]).iter().map(text).collect();
        let foreign = summary["crate_id"].as_u64() != Some(0);
        match segments.first() {
            Some(&("std" | "core" | "alloc")) if foreign => shorten_std(&segments),
            Some(_) => segments.join("::"),
            None => written.to_owned(),
        }
    }

    /// A type.
    pub(crate) fn ty(&self, ty: &Value) -> String {
        match tag(ty) {
            ("resolved_path", path) => self.resolved(path),
            ("dyn_trait", dyn_trait) => self.dyn_trait(dyn_trait),
            ("generic" | "primitive", name) => text(name).to_owned(),
            ("function_pointer", pointer) => self.fn_pointer(pointer),
            ("tuple", items) => match list(items) {
                [one] => format!("({},)", self.ty(one)),
                items => format!("({})", self.join(items, ", ", Self::ty)),
            },
            ("slice", inner) => format!("[{}]", self.ty(inner)),
            ("array", array) => format!("[{}; {}]", self.ty(&array["type"]), text(&array["len"])),
            // Pattern types are unstable; stable code only ever sees the base type.
            ("pat", pat) => self.ty(&pat["type"]),
            ("impl_trait", bounds) => format!("impl {}", self.bounds(bounds)),
            ("infer", _) => "_".to_owned(),
            ("raw_pointer", pointer) => {
                let mutability = if pointer["is_mutable"] == true {
                    "mut"
                } else {
                    "const"
                };
                format!("*{mutability} {}", self.ty(&pointer["type"]))
            }
            ("borrowed_ref", reference) => {
                format!(
                    "{}{}",
                    reference_prefix(reference),
                    self.ty(&reference["type"])
                )
            }
            ("qualified_path", qualified) => self.qualified(qualified),
            (other, _) => format!("<unsupported type {other}>"),
        }
    }

    /// A path to an item with its generic arguments (`rustdoc_types::Path`).
    pub(crate) fn resolved(&self, path: &Value) -> String {
        let name = self.item_path(&path["id"], text(&path["path"]));
        format!("{name}{}", self.generic_args(&path["args"]))
    }

    /// `<Type as Trait<A>>::Name`, or `T::Name` when the self type is a type parameter (or
    /// `Self`) and the trait has no generic arguments, so the parameter's bounds say which
    /// trait is meant. Chosen from the types alone, whichever way the source spelled it.
    fn qualified(&self, qualified: &Value) -> String {
        let self_type = self.ty(&qualified["self_type"]);
        let name = text(&qualified["name"]);
        let args = self.generic_args(&qualified["args"]);
        let by_parameter = tag(&qualified["self_type"]).0 == "generic"
            && self.generic_args(&qualified["trait"]["args"]).is_empty();
        if by_parameter || qualified["trait"].is_null() {
            format!("{self_type}::{name}{args}")
        } else {
            let trait_path = self.resolved(&qualified["trait"]);
            format!("<{self_type} as {trait_path}>::{name}{args}")
        }
    }

    fn dyn_trait(&self, dyn_trait: &Value) -> String {
        let mut parts: Vec<String> = list(&dyn_trait["traits"])
            .iter()
            .map(|poly| {
                let binder = self.binder(&poly["generic_params"]);
                format!("{binder}{}", self.resolved(&poly["trait"]))
            })
            .collect();
        if let Some(lifetime) = dyn_trait["lifetime"].as_str() {
            parts.push(lifetime.to_owned());
        }
        format!("dyn {}", parts.join(" + "))
    }

    fn fn_pointer(&self, pointer: &Value) -> String {
        let binder = self.binder(&pointer["generic_params"]);
        let header = header(&pointer["header"]);
        let sig = &pointer["sig"];
        let mut inputs: Vec<String> = list(&sig["inputs"])
            .iter()
            .map(|input| self.ty(&input[1]))
            .collect();
        if sig["is_c_variadic"] == true {
            inputs.push("...".to_owned());
        }
        format!(
            "{binder}{header}fn({}){}",
            inputs.join(", "),
            self.output(&sig["output"])
        )
    }

    /// ` -> T`, or nothing for `()` returns (which rustdoc leaves out).
    fn output(&self, output: &Value) -> String {
        if output.is_null() {
            String::new()
        } else {
            format!(" -> {}", self.ty(output))
        }
    }

    /// `<'a, T, Item = U>`, `(A, B) -> C`, or nothing.
    pub(crate) fn generic_args(&self, args: &Value) -> String {
        match tag(args) {
            ("angle_bracketed", angle) => {
                let mut parts: Vec<String> = list(&angle["args"])
                    .iter()
                    .map(|arg| self.generic_arg(arg))
                    .collect();
                parts.extend(
                    list(&angle["constraints"])
                        .iter()
                        .map(|c| self.constraint(c)),
                );
                if parts.is_empty() {
                    String::new()
                } else {
                    format!("<{}>", parts.join(", "))
                }
            }
            ("parenthesized", parenthesized) => {
                let inputs = self.join(list(&parenthesized["inputs"]), ", ", Self::ty);
                format!("({inputs}){}", self.output(&parenthesized["output"]))
            }
            ("return_type_notation", _) => "(..)".to_owned(),
            _ => String::new(),
        }
    }

    fn generic_arg(&self, arg: &Value) -> String {
        match tag(arg) {
            ("lifetime", lifetime) => text(lifetime).to_owned(),
            ("type", ty) => self.ty(ty),
            ("const", constant) => text(&constant["expr"]).to_owned(),
            _ => "_".to_owned(),
        }
    }

    /// `Item = T` or `Item: Bound` inside generic arguments.
    fn constraint(&self, constraint: &Value) -> String {
        let name = text(&constraint["name"]);
        let args = self.generic_args(&constraint["args"]);
        match tag(&constraint["binding"]) {
            ("equality", term) => format!("{name}{args} = {}", self.term(term)),
            ("constraint", bounds) => format!("{name}{args}: {}", self.bounds(bounds)),
            _ => format!("{name}{args}"),
        }
    }

    fn term(&self, term: &Value) -> String {
        match tag(term) {
            ("type", ty) => self.ty(ty),
            ("constant", constant) => text(&constant["expr"]).to_owned(),
            _ => "_".to_owned(),
        }
    }

    /// Bounds joined with ` + `.
    pub(crate) fn bounds(&self, bounds: &Value) -> String {
        self.join(list(bounds), " + ", Self::bound)
    }

    /// `: A + B`, or nothing when there are no bounds.
    pub(crate) fn colon_bounds(&self, bounds: &Value) -> String {
        if list(bounds).is_empty() {
            String::new()
        } else {
            format!(": {}", self.bounds(bounds))
        }
    }

    fn bound(&self, bound: &Value) -> String {
        match tag(bound) {
            ("trait_bound", trait_bound) => {
                let binder = self.binder(&trait_bound["generic_params"]);
                let modifier = match text(&trait_bound["modifier"]) {
                    "maybe" => "?",
                    "maybe_const" => "~const ",
                    _ => "",
                };
                format!("{binder}{modifier}{}", self.resolved(&trait_bound["trait"]))
            }
            ("outlives", lifetime) => text(lifetime).to_owned(),
            ("use", args) => {
                let args: Vec<&str> = list(args).iter().map(|arg| text(tag(arg).1)).collect();
                format!("use<{}>", args.join(", "))
            }
            (other, _) => format!("<unsupported bound {other}>"),
        }
    }

    /// `for<'a> ` for higher-ranked bounds, or nothing.
    fn binder(&self, params: &Value) -> String {
        let params = self.params(params);
        if params.is_empty() {
            String::new()
        } else {
            format!("for{params} ")
        }
    }

    /// Generic parameters with their inline bounds and defaults: `<'a, T: Clone = u8>`.
    /// Synthetic parameters (`impl Trait` arguments) are left out: the argument shows them.
    pub(crate) fn params(&self, params: &Value) -> String {
        let rendered: Vec<String> = list(params)
            .iter()
            .filter(|param| param["kind"]["type"]["is_synthetic"] != true)
            .map(|param| self.param(param))
            .collect();
        if rendered.is_empty() {
            String::new()
        } else {
            format!("<{}>", rendered.join(", "))
        }
    }

    fn param(&self, param: &Value) -> String {
        let name = text(&param["name"]);
        match tag(&param["kind"]) {
            ("lifetime", lifetime) => with_outlives(name, &lifetime["outlives"]),
            ("type", ty) => {
                let mut out = name.to_owned();
                if !list(&ty["bounds"]).is_empty() {
                    out = format!("{out}: {}", self.bounds(&ty["bounds"]));
                }
                if !ty["default"].is_null() {
                    out = format!("{out} = {}", self.ty(&ty["default"]));
                }
                out
            }
            ("const", constant) => {
                let mut out = format!("const {name}: {}", self.ty(&constant["type"]));
                if let Some(default) = constant["default"].as_str() {
                    out = format!("{out} = {default}");
                }
                out
            }
            _ => name.to_owned(),
        }
    }

    /// The where-clause predicates of a `Generics`, one string each.
    pub(crate) fn predicates(&self, generics: &Value) -> Vec<String> {
        list(&generics["where_predicates"])
            .iter()
            .map(|p| self.predicate(p))
            .collect()
    }

    fn predicate(&self, predicate: &Value) -> String {
        match tag(predicate) {
            ("bound_predicate", bound) => {
                let binder = self.binder(&bound["generic_params"]);
                let ty = self.ty(&bound["type"]);
                format!("{binder}{ty}: {}", self.bounds(&bound["bounds"]))
                    .trim_end()
                    .to_owned()
            }
            ("lifetime_predicate", lifetime) => {
                with_outlives(text(&lifetime["lifetime"]), &lifetime["outlives"])
            }
            ("eq_predicate", eq) => format!("{} = {}", self.ty(&eq["lhs"]), self.term(&eq["rhs"])),
            (other, _) => format!("<unsupported predicate {other}>"),
        }
    }

    /// The inline bounds of an impl's parameters, as where predicates (`C: Clock`): a method
    /// line names the impl's self type but not its `impl<..>`, so they go to its where clause.
    pub(crate) fn param_bounds(&self, generics: &Value) -> Vec<String> {
        let mut predicates = Vec::new();
        for param in list(&generics["params"]) {
            let name = text(&param["name"]);
            match tag(&param["kind"]) {
                ("lifetime", lifetime) if !list(&lifetime["outlives"]).is_empty() => {
                    predicates.push(with_outlives(name, &lifetime["outlives"]));
                }
                ("type", ty) if !list(&ty["bounds"]).is_empty() && ty["is_synthetic"] != true => {
                    predicates.push(format!("{name}: {}", self.bounds(&ty["bounds"])));
                }
                _ => {}
            }
        }
        predicates
    }

    /// A function line: `{lead}const fn {path}<T>(&self, x: T) -> U where T: Clone`, with the
    /// `outer` predicates (those of an enclosing impl) ahead of the function's own.
    pub(crate) fn function(
        &self,
        lead: &str,
        path: &str,
        function: &Value,
        outer: &[String],
    ) -> String {
        let generics = &function["generics"];
        let sig = &function["sig"];
        let mut inputs: Vec<String> = list(&sig["inputs"])
            .iter()
            .map(|input| self.input(input))
            .collect();
        if sig["is_c_variadic"] == true {
            inputs.push("...".to_owned());
        }
        let mut predicates = outer.to_vec();
        predicates.extend(self.predicates(generics));
        format!(
            "{lead}{}fn {path}{}({}){}{}",
            header(&function["header"]),
            self.params(&generics["params"]),
            inputs.join(", "),
            self.output(&sig["output"]),
            where_clause(&predicates),
        )
    }

    /// One parameter: `self`, `&mut self`, `self: Pin<&mut Self>` or `name: Type`.
    fn input(&self, input: &Value) -> String {
        let (name, ty) = (text(&input[0]), &input[1]);
        if name == "self" {
            let is_self = |ty: &Value| tag(ty) == ("generic", &Value::from("Self"));
            match tag(ty) {
                ("generic", _) if is_self(ty) => return "self".to_owned(),
                ("borrowed_ref", reference) if is_self(&reference["type"]) => {
                    return format!("{}self", reference_prefix(reference));
                }
                _ => {}
            }
        }
        format!("{name}: {}", self.ty(ty))
    }

    fn join(
        &self,
        items: &[Value],
        separator: &str,
        render: fn(&Self, &Value) -> String,
    ) -> String {
        items
            .iter()
            .map(|item| render(self, item))
            .collect::<Vec<_>>()
            .join(separator)
    }
}

/// `&`, `&mut `, `&'a ` or `&'a mut ` for a `borrowed_ref` type.
fn reference_prefix(reference: &Value) -> String {
    let mut prefix = "&".to_owned();
    if let Some(lifetime) = reference["lifetime"].as_str() {
        prefix = format!("{prefix}{lifetime} ");
    }
    if reference["is_mutable"] == true {
        prefix.push_str("mut ");
    }
    prefix
}

/// `'a: 'b + 'c`, or just `'a`.
fn with_outlives(lifetime: &str, outlives: &Value) -> String {
    let outlives: Vec<&str> = list(outlives).iter().map(text).collect();
    if outlives.is_empty() {
        lifetime.to_owned()
    } else {
        format!("{lifetime}: {}", outlives.join(" + "))
    }
}

/// ` where A, B`, or nothing.
pub(crate) fn where_clause(predicates: &[String]) -> String {
    if predicates.is_empty() {
        String::new()
    } else {
        format!(" where {}", predicates.join(", "))
    }
}

/// The qualifiers before `fn`: `const async unsafe extern "C" `.
fn header(header: &Value) -> String {
    let mut out = String::new();
    for (flag, word) in [
        ("is_const", "const "),
        ("is_async", "async "),
        ("is_unsafe", "unsafe "),
    ] {
        if header[flag] == true {
            out.push_str(word);
        }
    }
    let abi = match tag(&header["abi"]) {
        ("Rust", _) | ("", _) => return out,
        ("Other", name) => text(name).trim_matches('"').to_owned(),
        (name, details) => {
            let name = if name == "C" {
                "C".to_owned()
            } else {
                name.to_lowercase()
            };
            if details["unwind"] == true {
                format!("{name}-unwind")
            } else {
                name
            }
        }
    };
    format!("{out}extern \"{abi}\" ")
}

#[cfg(test)]
mod tests;
