//! Configuration documents of the worst shapes we could think of, each grown to just under
//! seawall's size limit, for the `documents` bench and the `documents` check binary.
//!
//! A shape is a function from a count (of entries, levels or bytes) to a document in one
//! format; [`sized`] finds the largest count whose document fits the target size.

use std::fmt::Write as _;

use seawall::registry::document::{Format, MAX_DOCUMENT_BYTES, MAX_INHERITANCE_DEPTH, MAX_NESTING};

/// The size every shape is grown to: the limit, less room for a shape's last line.
pub const TARGET_BYTES: usize = MAX_DOCUMENT_BYTES - 4096;

/// A worst case: its name, and how it grows (`None` where the format cannot express it).
#[derive(Clone, Copy)]
pub struct Shape {
    /// What it is, e.g. `tags-inherited-by-many`.
    pub name: &'static str,
    /// The document with `n` of whatever the shape repeats.
    pub build: fn(usize, Format) -> Option<String>,
}

impl std::fmt::Debug for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// All three formats, by name.
pub const FORMATS: [(Format, &str); 3] = [
    (Format::Yaml, "yaml"),
    (Format::Toml, "toml"),
    (Format::Json, "json"),
];

/// Every shape.
pub fn shapes() -> Vec<Shape> {
    vec![
        shape("nesting-at-the-limit", nesting_at_limit),
        shape("nesting-past-the-limit", nesting_past_limit),
        shape("block-nesting-at-the-limit", block_nesting),
        shape("chain-at-the-limit-and-many-heirs", chain_and_heirs),
        shape("breaker-instances", |n, f| {
            Some(bulk("circuitbreaker", Group::Instances, n, f, breaker_keys))
        }),
        shape("rate-limiter-instances", |n, f| {
            Some(bulk("ratelimiter", Group::Instances, n, f, |_| {
                vec![("limit_for_period", "10".into())]
            }))
        }),
        shape("configs-inheriting-default", configs_inheriting_default),
        shape("tags-inherited-by-many", tags_inherited_by_many),
        shape("section-tags", section_tags),
        shape("long-string", long_string),
        shape("long-key", long_key),
        shape("lookalike-names-and-keys", lookalikes),
        shape("yaml-alias-bomb", alias_bomb),
        shape("yaml-aliases", aliases),
        shape("yaml-aliases-of-a-big-anchor", big_anchor),
        shape("toml-dotted-keys", dotted_keys),
        shape("comments", comments),
        shape("random-bytes", random_bytes),
        shape("random-tokens", random_tokens),
    ]
}

fn shape(name: &'static str, build: fn(usize, Format) -> Option<String>) -> Shape {
    Shape { name, build }
}

/// The document of `shape` in `format` with the largest count that keeps it within
/// `target` bytes, or `None` if the format cannot express the shape.
pub fn sized(shape: Shape, format: Format, target: usize) -> Option<String> {
    let fits = |n: usize| (shape.build)(n, format).filter(|text| text.len() <= target);
    let mut best = fits(1)?;
    let (mut low, mut high) = (1usize, 2usize);
    // Double until too big, then halve the gap.
    while let Some(text) = fits(high) {
        best = text;
        low = high;
        if high >= target * 2 {
            return Some(best);
        }
        high *= 2;
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        match fits(mid) {
            Some(text) => {
                best = text;
                low = mid;
            }
            None => high = mid,
        }
    }
    Some(best)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    Configs,
    Instances,
}

impl Group {
    fn as_str(self) -> &'static str {
        match self {
            Self::Configs => "configs",
            Self::Instances => "instances",
        }
    }
}

/// One configuration or instance: its name and keys, values written as in every format.
type Entry = (String, Vec<(&'static str, String)>);

/// A section with groups of entries, written in `format`.
fn section(name: &str, groups: &[(Group, Vec<Entry>)], format: Format) -> String {
    let mut out = String::new();
    match format {
        Format::Yaml => {
            let _ = writeln!(out, "{name}:");
            for (group, entries) in groups {
                let _ = writeln!(out, "  {}:", group.as_str());
                for (entry, keys) in entries {
                    let keys: Vec<String> = keys.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    let _ = writeln!(out, "    \"{entry}\": {{{}}}", keys.join(", "));
                }
            }
        }
        Format::Toml => {
            for (group, entries) in groups {
                let _ = writeln!(out, "[{name}.{}]", group.as_str());
                for (entry, keys) in entries {
                    let keys: Vec<String> =
                        keys.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    let _ = writeln!(out, "\"{entry}\" = {{ {} }}", keys.join(", "));
                }
            }
        }
        Format::Json => {
            let groups: Vec<String> = groups
                .iter()
                .map(|(group, entries)| {
                    let entries: Vec<String> = entries
                        .iter()
                        .map(|(entry, keys)| {
                            let keys: Vec<String> =
                                keys.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                            format!("\"{entry}\": {{{}}}", keys.join(", "))
                        })
                        .collect();
                    format!("\"{}\": {{\n{}\n}}", group.as_str(), entries.join(",\n"))
                })
                .collect();
            let _ = write!(out, "{{\"{name}\": {{{}}}}}", groups.join(", "));
        }
    }
    out
}

fn breaker_keys(i: usize) -> Vec<(&'static str, String)> {
    vec![
        ("failure_rate_threshold", format!("{}", 1 + i % 100)),
        ("sliding_window_size", "20".into()),
        ("minimum_number_of_calls", "5".into()),
        ("wait_duration_in_open_state", "\"10s\"".into()),
    ]
}

/// `n` entries of one group of one section.
fn bulk(
    name: &str,
    group: Group,
    n: usize,
    format: Format,
    keys: fn(usize) -> Vec<(&'static str, String)>,
) -> String {
    let entries = (0..n).map(|i| (format!("e{i}"), keys(i))).collect();
    section(name, &[(group, entries)], format)
}

/// `n` top-level keys, each a map nested `MAX_NESTING - 1` deep (accepted up to the sections
/// check, which refuses the unknown names after everything was parsed).
fn nesting_at_limit(n: usize, format: Format) -> Option<String> {
    nested(n, MAX_NESTING - 1, format)
}

/// As [`nesting_at_limit`], one level too deep: refused before parsing.
fn nesting_past_limit(n: usize, format: Format) -> Option<String> {
    nested(n, MAX_NESTING + 1, format)
}

fn nested(n: usize, depth: usize, format: Format) -> Option<String> {
    let mut out = String::new();
    match format {
        Format::Yaml | Format::Json => {
            let quote = if format == Format::Json { "\"" } else { "" };
            out.push('{');
            for i in 0..n {
                let _ = write!(out, "{quote}x{i}{quote}: ");
                for _ in 1..depth {
                    let _ = write!(out, "{{{quote}a{quote}: ");
                }
                out.push('1');
                out.push_str(&"}".repeat(depth - 1));
                out.push_str(if i + 1 < n { ",\n" } else { "\n" });
            }
            out.push('}');
        }
        Format::Toml => {
            for i in 0..n {
                let _ = writeln!(
                    out,
                    "x{i} = {}1{}",
                    "{ a = ".repeat(depth - 1),
                    " }".repeat(depth - 1)
                );
            }
        }
    }
    Some(out)
}

/// YAML block mappings indented `MAX_NESTING - 1` deep, `n` times: nesting no bracket shows.
fn block_nesting(n: usize, format: Format) -> Option<String> {
    (format == Format::Yaml).then(|| {
        let mut out = String::new();
        for i in 0..n {
            let _ = writeln!(out, "x{i}:");
            for level in 1..MAX_NESTING - 1 {
                let _ = writeln!(out, "{}a:", "  ".repeat(level));
            }
            let _ = writeln!(out, "{}a: 1", "  ".repeat(MAX_NESTING - 1));
        }
        out
    })
}

/// A chain of configurations as long as allowed, `n` configurations inheriting its end, and
/// `n` breakers each inheriting one of them.
fn chain_and_heirs(n: usize, format: Format) -> Option<String> {
    let links = MAX_INHERITANCE_DEPTH - 2;
    let mut configs: Vec<Entry> = (0..links)
        .map(|level| {
            let keys = match level {
                0 => vec![("failure_rate_threshold", "40".to_owned())],
                _ => vec![("base_config", format!("\"c{}\"", level - 1))],
            };
            (format!("c{level}"), keys)
        })
        .collect();
    configs.extend((0..n).map(|i| {
        let base = format!("\"c{}\"", links - 1);
        (
            format!("d{i}"),
            vec![
                ("base_config", base),
                ("minimum_number_of_calls", "7".into()),
            ],
        )
    }));
    let instances = (0..n)
        .map(|i| (format!("i{i}"), vec![("base_config", format!("\"d{i}\""))]))
        .collect();
    Some(section(
        "circuitbreaker",
        &[(Group::Configs, configs), (Group::Instances, instances)],
        format,
    ))
}

fn configs_inheriting_default(n: usize, format: Format) -> Option<String> {
    let mut configs = vec![("default".to_owned(), breaker_keys(0))];
    configs.extend((0..n).map(|i| {
        (
            format!("c{i}"),
            vec![("slow_call_rate_threshold", "80".into())],
        )
    }));
    Some(section(
        "circuitbreaker",
        &[(Group::Configs, configs)],
        format,
    ))
}

/// A `default` configuration with `n` tags, and `n` instances that inherit them.
fn tags_inherited_by_many(n: usize, format: Format) -> Option<String> {
    let tags: Vec<String> = (0..n)
        .map(|i| match format {
            Format::Toml => format!("t{i} = \"v\""),
            _ => format!("\"t{i}\": \"v\""),
        })
        .collect();
    let tags = format!("{{{}}}", tags.join(", "));
    let configs = vec![("default".to_owned(), vec![("tags", tags)])];
    let instances = (0..n).map(|i| (format!("i{i}"), Vec::new())).collect();
    Some(section(
        "bulkhead",
        &[(Group::Configs, configs), (Group::Instances, instances)],
        format,
    ))
}

/// A section with `n` tags of its own.
fn section_tags(n: usize, format: Format) -> Option<String> {
    let mut out = String::new();
    match format {
        Format::Yaml => {
            out.push_str("retry:\n  tags:\n");
            for i in 0..n {
                let _ = writeln!(out, "    tag{i}: value{i}");
            }
        }
        Format::Toml => {
            out.push_str("[retry.tags]\n");
            for i in 0..n {
                let _ = writeln!(out, "tag{i} = \"value{i}\"");
            }
        }
        Format::Json => {
            let tags: Vec<String> = (0..n)
                .map(|i| format!("\"tag{i}\": \"value{i}\""))
                .collect();
            let _ = write!(out, "{{\"retry\": {{\"tags\": {{{}}}}}}}", tags.join(",\n"));
        }
    }
    Some(out)
}

/// One tag value `n` bytes long, with escapes in it.
fn long_string(n: usize, format: Format) -> Option<String> {
    let value = format!("\"{}\"", "ab\\\"{[#".repeat(n / 7 + 1));
    let instances = vec![("pg".to_owned(), vec![("tags", tag("note", &value, format))])];
    Some(section(
        "timelimiter",
        &[(Group::Instances, instances)],
        format,
    ))
}

fn tag(key: &str, value: &str, format: Format) -> String {
    match format {
        Format::Toml => format!("{{ {key} = {value} }}"),
        _ => format!("{{\"{key}\": {value}}}"),
    }
}

/// One instance whose name is `n` bytes long.
fn long_key(n: usize, format: Format) -> Option<String> {
    let instances = vec![("k".repeat(n), vec![("max_concurrent_calls", "3".into())])];
    Some(section(
        "bulkhead",
        &[(Group::Instances, instances)],
        format,
    ))
}

/// Instances whose names differ only by case and separators, each writing its keys in
/// another spelling.
fn lookalikes(n: usize, format: Format) -> Option<String> {
    const SPELLINGS: [[&str; 2]; 3] = [
        ["max_attempts", "wait_duration"],
        ["maxAttempts", "waitDuration"],
        ["max-attempts", "wait-duration"],
    ];
    const NAMES: [&str; 4] = ["pg-query", "pg_query", "pgQuery", "PG-QUERY"];
    let instances = (0..n)
        .map(|i| {
            let [attempts, wait] = SPELLINGS[i % 3];
            let name = format!("{}{}", NAMES[i % 4], i / 4);
            (
                name,
                vec![(attempts, "3".to_owned()), (wait, "\"100ms\"".to_owned())],
            )
        })
        .collect();
    Some(section("retry", &[(Group::Instances, instances)], format))
}

/// The billion laughs: each anchor a list of ten aliases of the one before, `n` levels.
fn alias_bomb(n: usize, format: Format) -> Option<String> {
    (format == Format::Yaml && n <= 12).then(|| {
        let mut out = String::from("a0: &a0 [\"lol\"]\n");
        for level in 1..=n {
            let aliases = vec![format!("*a{}", level - 1); 10].join(", ");
            let _ = writeln!(out, "a{level}: &a{level} [{aliases}]");
        }
        out
    })
}

/// A breaker written once under an anchor and used by `n` instances through aliases.
fn aliases(n: usize, format: Format) -> Option<String> {
    (format == Format::Yaml).then(|| {
        let mut out = String::from(
            "circuitbreaker:\n  configs:\n    default: &shared {failure_rate_threshold: 40, sliding_window_size: 20}\n  instances:\n",
        );
        for i in 0..n {
            let _ = writeln!(out, "    i{i}: *shared");
        }
        out
    })
}

/// A list of `n` items under an anchor, and `n` aliases of it: few repetitions (which
/// the YAML parser bounds), each of a large value.
fn big_anchor(n: usize, format: Format) -> Option<String> {
    (format == Format::Yaml).then(|| {
        let items = vec!["\"x\""; n].join(", ");
        let aliases = vec!["*big"; n].join(", ");
        format!("anchor: &big [{items}]\naliases: [{aliases}]\n")
    })
}

/// `n` breakers written key by key with dotted keys.
fn dotted_keys(n: usize, format: Format) -> Option<String> {
    (format == Format::Toml).then(|| {
        let mut out = String::new();
        for i in 0..n {
            let _ = writeln!(
                out,
                "circuitbreaker.instances.b{i}.failure_rate_threshold = 50"
            );
            let _ = writeln!(
                out,
                "circuitbreaker.instances.b{i}.sliding_window_size = 20"
            );
        }
        out
    })
}

/// `n` comment lines full of brackets and quotes, then a small document.
fn comments(n: usize, format: Format) -> Option<String> {
    (format != Format::Json).then(|| {
        let mut out = String::new();
        for _ in 0..n {
            out.push_str("# {[\"' a comment that looks like it opens things {{{{ [[[[ \"\n");
        }
        out.push_str(match format {
            Format::Toml => "[retry.instances.q]\nmax_attempts = 2\n",
            _ => "retry: {instances: {q: {max_attempts: 2}}}\n",
        });
        out
    })
}

/// A small deterministic generator: the same bytes on every run.
fn random(n: usize, mut state: u64) -> impl Iterator<Item = u64> {
    (0..n).map(move |_| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// `n` random bytes, made valid UTF-8 (what a `&str` entry point can receive).
fn random_bytes(n: usize, _format: Format) -> Option<String> {
    let bytes: Vec<u8> = random(n, 7).map(|x| x as u8).collect();
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// `n` random pieces of syntax: brackets, colons, quotes, dashes, names and newlines.
fn random_tokens(n: usize, _format: Format) -> Option<String> {
    const TOKENS: [&str; 16] = [
        "{", "}", "[", "]", ": ", ",", "- ", "\"", "'", "=", "\n", "  ", "a", "1", "&x ", "*x",
    ];
    Some(random(n, 11).map(|x| TOKENS[(x % 16) as usize]).collect())
}
