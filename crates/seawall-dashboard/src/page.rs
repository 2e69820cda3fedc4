//! The HTML pages. Assets are embedded with `include_str!`; every name put in the HTML is
//! escaped here, and the script builds tiles with `textContent`, never `innerHTML`.

use std::fmt::Write as _;

/// The page's script.
pub(crate) const SCRIPT: &str = include_str!("../assets/dashboard.js");
/// The page's style sheet.
pub(crate) const STYLE: &str = include_str!("../assets/dashboard.css");
const REGISTRY_PAGE: &str = include_str!("../assets/registry.html");

/// `text` made safe in HTML text and in quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `text` made safe as one path segment of a URL.
pub(crate) fn escape_path_segment(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            let _ = write!(escaped, "%{byte:02X}");
        }
    }
    escaped
}

/// The page of one registry; the script finds its URLs in the body's data attributes.
pub(crate) fn registry_page(base: &str, title: &str, registry: &str, actions: bool) -> String {
    REGISTRY_PAGE
        .replace("{{title}}", &escape_html(title))
        .replace("{{registry}}", &escape_html(registry))
        .replace("{{base}}", &escape_html(base))
        .replace("{{actions}}", if actions { "on" } else { "off" })
}

/// The index: a link to each registry's page.
pub(crate) fn index_page<'a>(
    base: &str,
    title: &str,
    registries: impl Iterator<Item = &'a str>,
) -> String {
    let title = escape_html(title);
    let base = escape_html(base);
    let mut links = String::new();
    for name in registries {
        let _ = write!(
            links,
            "<li><a href=\"{base}/registries/{href}\">{text}</a></li>",
            href = escape_html(&escape_path_segment(name)),
            text = escape_html(name),
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"{base}/assets/dashboard.css\"></head>\
         <body><header><h1>{title}</h1></header><main><ul class=\"registries\">{links}</ul>\
         </main></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_a_name_is_escaped() {
        assert_eq!(
            escape_html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn a_path_segment_keeps_only_unreserved_characters() {
        assert_eq!(
            escape_path_segment("pg-charge[SAMSUNG]"),
            "pg-charge%5BSAMSUNG%5D"
        );
        assert_eq!(escape_path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn a_registry_page_carries_its_names_escaped() {
        let page = registry_page("/admin/dash", "Ops <b>", "main\"><x", false);
        assert!(page.contains("data-registry=\"main&quot;&gt;&lt;x\""));
        assert!(page.contains("<title>Ops &lt;b&gt;"));
        assert!(page.contains("data-actions=\"off\""));
        assert!(!page.contains("<b>"));
    }

    #[test]
    fn the_index_links_every_registry_escaped() {
        let page = index_page("", "t", ["a b", "<i>"].into_iter());
        assert!(page.contains("href=\"/registries/a%20b\">a b</a>"));
        assert!(page.contains("href=\"/registries/%3Ci%3E\">&lt;i&gt;</a>"));
    }

    #[test]
    fn the_page_loads_no_outside_resource_and_polls_nothing() {
        let all = format!("{REGISTRY_PAGE}{SCRIPT}{STYLE}");
        assert!(!all.contains("http://") && !all.contains("https://"));
        assert!(!SCRIPT.contains("setInterval") && !SCRIPT.contains("setTimeout"));
        assert!(SCRIPT.contains("new EventSource("));
        assert!(!SCRIPT.contains("innerHTML"));
    }
}
