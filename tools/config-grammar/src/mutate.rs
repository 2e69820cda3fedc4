//! Documents damaged the way editors, templates and copy-paste damage them, random text, and
//! deep nesting.

use crate::Syntax;
use proptest::prelude::*;
use proptest::sample::{Index, select};

/// Text an editor or a template might slip into a document.
const TOKENS: [&str; 24] = [
    "{",
    "}",
    "[",
    "]",
    ":",
    ": ",
    "-",
    "- ",
    ".",
    ",",
    "=",
    "\"",
    "'",
    "#",
    "\n",
    "  ",
    ".nan",
    "1e400",
    "99999999999999999999",
    "\"x\"",
    "&a",
    "*a",
    "!!binary",
    "\u{feff}",
];

/// One way to damage a document's text.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Replaces the byte at a position.
    FlipByte(Index, u8),
    /// Cuts the text at a position.
    Truncate(Index),
    /// Deletes up to this many bytes from a position.
    Delete(Index, usize),
    /// Writes a line twice.
    DuplicateLine(Index),
    /// Swaps two lines.
    SwapLines(Index, Index),
    /// Inserts text at a position.
    Insert(Index, String),
}

fn inserted() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(&TOKENS[..]).prop_map(str::to_owned),
        1 => (1usize..200).prop_map(|n| "y".repeat(n * 500)),
        1 => (1usize..60, select(&["{a: ", "[", "{\"a\": ", "a = ["][..]))
            .prop_map(|(depth, open)| open.repeat(depth)),
        1 => "[ -~]{0,12}",
    ]
    .boxed()
}

/// One random [`Mutation`].
pub fn mutation() -> BoxedStrategy<Mutation> {
    prop_oneof![
        3 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::FlipByte(at, byte)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete(at, len)),
        2 => any::<Index>().prop_map(Mutation::DuplicateLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        4 => (any::<Index>(), inserted()).prop_map(|(at, text)| Mutation::Insert(at, text)),
    ]
    .boxed()
}

/// Applies `mutations` to `text`; invalid UTF-8 is repaired lossily (a `&str` entry point
/// cannot receive it).
pub fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for mutation in mutations {
        let len = bytes.len().max(1);
        match mutation {
            Mutation::FlipByte(at, byte) => {
                if !bytes.is_empty() {
                    let at = at.index(len);
                    bytes[at] = *byte;
                }
            }
            Mutation::Truncate(at) => bytes.truncate(at.index(len)),
            Mutation::Delete(at, n) => {
                let start = at.index(len).min(bytes.len());
                let end = (start + n).min(bytes.len());
                bytes.drain(start..end);
            }
            Mutation::DuplicateLine(at) => {
                let mut lines = split_lines(&bytes);
                let at = at.index(lines.len());
                let line = lines[at].clone();
                lines.insert(at, line);
                bytes = lines.concat();
            }
            Mutation::SwapLines(a, b) => {
                let mut lines = split_lines(&bytes);
                let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                lines.swap(a, b);
                bytes = lines.concat();
            }
            Mutation::Insert(at, text) => {
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, text.bytes());
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn split_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    if lines.is_empty() {
        lines.push(Vec::new());
    }
    lines
}

/// One of `seeds`, damaged one to four times, and its format.
pub fn mutated(seeds: Vec<(Syntax, &'static str)>) -> BoxedStrategy<(Syntax, String)> {
    (
        select(seeds),
        prop::collection::vec(mutation(), 1..5),
        prop::sample::select(
            &[
                None,
                Some(Syntax::Yaml),
                Some(Syntax::Toml),
                Some(Syntax::Json),
            ][..],
        ),
    )
        .prop_map(|((format, text), mutations, other)| {
            // Now and then the right text under the wrong format.
            (other.unwrap_or(format), apply(text, &mutations))
        })
        .boxed()
}

/// Random text: printable, any Unicode, or a tangle of brackets, colons and quotes.
pub fn random_text() -> BoxedStrategy<String> {
    prop_oneof![
        "[ -~\n\t]{0,200}",
        ".{0,100}",
        prop::collection::vec(select(&TOKENS[..]), 0..80).prop_map(|parts| parts.concat()),
    ]
    .boxed()
}

/// Deep nesting in each format's spelling, closed or not, up to well past `MAX_NESTING`.
pub fn deep_text() -> BoxedStrategy<String> {
    let opener = select(
        &[
            "{a: ",
            "[",
            "- ",
            "{\"a\": ",
            "{\"a\": [",
            "a = [",
            "a = { b = ",
            "[[a]]\n",
            "{a: [",
        ][..],
    );
    (
        opener,
        prop_oneof![0usize..40, 0usize..3000],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(open, depth, closed, indented)| {
            let mut text = String::new();
            // Indented block nesting grows as depth squared: keep it under a megabyte.
            let depth = if indented && open == "- " {
                depth.min(300)
            } else {
                depth
            };
            for level in 0..depth {
                if indented && open == "- " {
                    text.push_str(&" ".repeat(level * 2));
                    text.push_str("- \n");
                } else {
                    text.push_str(open);
                }
            }
            text.push('1');
            if closed {
                for ch in open.chars().rev() {
                    let close = match ch {
                        '{' => '}',
                        '[' => ']',
                        _ => continue,
                    };
                    text.push_str(&close.to_string().repeat(depth));
                }
            }
            text
        })
        .boxed()
}
