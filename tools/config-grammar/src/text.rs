//! A document tree that can say what serde_json's `Value` cannot (duplicate keys, `.nan`,
//! integers past `u64`), written out as YAML, TOML or JSON text.

use std::fmt::Write as _;

use crate::Syntax;

/// One value of a generated document, as written (a map may repeat a key).
#[derive(Clone, Debug)]
pub enum Node {
    /// A map, in order, keys possibly repeated.
    Map(Vec<(String, Self)>),
    /// A list.
    List(Vec<Self>),
    /// An integer, possibly past what `u64` or `i64` holds.
    Int(i128),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// Null (TOML, which has none, gets an empty inline table).
    Null,
    /// A number written differently in each syntax.
    Special(Special),
}

/// Numbers each format spells its own way, or cannot hold.
#[derive(Clone, Copy, Debug)]
pub enum Special {
    /// Not a number.
    Nan,
    /// Positive infinity.
    Inf,
    /// Negative infinity.
    NegInf,
    /// `1e400`: a float literal past `f64::MAX`.
    Exp400,
}

/// How a document is laid out in its format.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// YAML: block mappings down to this depth, flow below. TOML: `[tables]` down to this
    /// depth, inline tables below. JSON: ignored.
    pub blocks: usize,
}

/// Writes `node` out as text in `syntax`.
pub fn render(node: &Node, syntax: Syntax, style: Style) -> String {
    let mut out = String::new();
    match syntax {
        Syntax::Json => json(node, &mut out),
        Syntax::Yaml => yaml_block(node, 0, style.blocks, &mut out),
        Syntax::Toml => match node {
            Node::Map(entries) => toml_table(&mut Vec::new(), entries, style.blocks, &mut out),
            // A TOML document is a table; anything else becomes one key of it.
            other => {
                out.push_str("value = ");
                toml_inline(other, &mut out);
                out.push('\n');
            }
        },
    }
    out
}

fn quoted(text: &str, out: &mut String) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            ch if u32::from(ch) < 0x20 || ch == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(ch));
            }
            ch => out.push(ch),
        }
    }
    out.push('"');
}

fn is_bare(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && key.as_bytes()[0].is_ascii_alphabetic()
        && !matches!(
            key.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "inf" | "nan"
        )
}

fn key(text: &str, out: &mut String) {
    if is_bare(text) {
        out.push_str(text);
    } else {
        quoted(text, out);
    }
}

fn float(value: f64) -> String {
    // `{:?}` always writes a `.` or an exponent, so the number reads back as a float.
    format!("{value:?}")
}

fn json(node: &Node, out: &mut String) {
    match node {
        Node::Map(entries) => {
            out.push('{');
            for (i, (name, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quoted(name, out);
                out.push_str(": ");
                json(value, out);
            }
            out.push('}');
        }
        Node::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                json(item, out);
            }
            out.push(']');
        }
        Node::Special(Special::Nan) => out.push_str("NaN"),
        Node::Special(Special::Inf) => out.push_str("Infinity"),
        Node::Special(Special::NegInf) => out.push_str("-Infinity"),
        scalar => common_scalar(scalar, out),
    }
}

/// Scalars written the same way in all three formats.
fn common_scalar(node: &Node, out: &mut String) {
    match node {
        Node::Int(value) => {
            let _ = write!(out, "{value}");
        }
        Node::Float(value) => out.push_str(&float(*value)),
        Node::Str(text) => quoted(text, out),
        Node::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Node::Null => out.push_str("null"),
        Node::Special(Special::Exp400) => out.push_str("1e400"),
        _ => unreachable!("containers and format-specific numbers are written by the caller"),
    }
}

fn yaml_flow(node: &Node, out: &mut String) {
    match node {
        Node::Map(entries) => {
            out.push('{');
            for (i, (name, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                key(name, out);
                out.push_str(": ");
                yaml_flow(value, out);
            }
            out.push('}');
        }
        Node::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_flow(item, out);
            }
            out.push(']');
        }
        Node::Special(Special::Nan) => out.push_str(".nan"),
        Node::Special(Special::Inf) => out.push_str(".inf"),
        Node::Special(Special::NegInf) => out.push_str("-.inf"),
        scalar => common_scalar(scalar, out),
    }
}

fn yaml_block(node: &Node, depth: usize, blocks: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    match node {
        Node::Map(entries) if depth < blocks && !entries.is_empty() => {
            for (name, value) in entries {
                out.push_str(&indent);
                key(name, out);
                out.push(':');
                match value {
                    Node::Map(inner) if depth + 1 < blocks && !inner.is_empty() => {
                        out.push('\n');
                        yaml_block(value, depth + 1, blocks, out);
                    }
                    Node::List(items) if depth + 1 < blocks && !items.is_empty() => {
                        out.push('\n');
                        for item in items {
                            out.push_str(&indent);
                            out.push_str("  - ");
                            yaml_flow(item, out);
                            out.push('\n');
                        }
                    }
                    _ => {
                        out.push(' ');
                        yaml_flow(value, out);
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&indent);
            yaml_flow(other, out);
            out.push('\n');
        }
    }
}

fn toml_inline(node: &Node, out: &mut String) {
    match node {
        Node::Map(entries) => {
            out.push('{');
            for (i, (name, value)) in entries.iter().enumerate() {
                out.push_str(if i > 0 { ", " } else { " " });
                key(name, out);
                out.push_str(" = ");
                toml_inline(value, out);
            }
            out.push_str(if entries.is_empty() { "}" } else { " }" });
        }
        Node::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                toml_inline(item, out);
            }
            out.push(']');
        }
        // TOML has no null: the nearest thing a writer would reach for.
        Node::Null => out.push_str("{}"),
        Node::Special(Special::Nan) => out.push_str("nan"),
        Node::Special(Special::Inf) => out.push_str("inf"),
        Node::Special(Special::NegInf) => out.push_str("-inf"),
        scalar => common_scalar(scalar, out),
    }
}

fn toml_table(path: &mut Vec<String>, entries: &[(String, Node)], blocks: usize, out: &mut String) {
    let tables = path.len() + 1 < blocks;
    let as_table = |value: &Node| tables && matches!(value, Node::Map(_));
    for (name, value) in entries.iter().filter(|(_, value)| !as_table(value)) {
        key(name, out);
        out.push_str(" = ");
        toml_inline(value, out);
        out.push('\n');
    }
    for (name, value) in entries.iter().filter(|(_, value)| as_table(value)) {
        let Node::Map(inner) = value else { continue };
        path.push(name.clone());
        out.push('[');
        for (i, part) in path.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            key(part, out);
        }
        out.push_str("]\n");
        toml_table(path, inner, blocks, out);
        path.pop();
    }
}
