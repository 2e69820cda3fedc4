//! A unified-style line diff between the checked-in listing and a fresh one.

/// One step of an edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Keep,
    Remove,
    Add,
}

/// Above this many cells the longest-common-subsequence table is not built and the changed
/// middle is shown as all removed, then all added: still correct, only less tidy.
const MAX_TABLE_CELLS: usize = 16_000_000;

/// Lines of context around each change.
const CONTEXT: usize = 3;

/// A unified diff (`---`/`+++` headers, `@@` hunks, ` `/`-`/`+` lines) turning `old` into
/// `new`, or the empty string when they are equal.
pub fn unified_diff(old: &[String], new: &[String], old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let ops = edit_script(old, new);
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    // Positions (in ops, old, new) of each op, so a hunk can say where it starts.
    let mut positions = Vec::with_capacity(ops.len());
    let (mut o, mut n) = (0, 0);
    for op in &ops {
        positions.push((o, n));
        match op {
            Op::Keep => (o, n) = (o + 1, n + 1),
            Op::Remove => o += 1,
            Op::Add => n += 1,
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&i| ops[i] != Op::Keep).collect();
    let mut start = 0;
    while start < changed.len() {
        // Grow the hunk while the next change is close enough to share context.
        let mut end = start;
        while end + 1 < changed.len() && changed[end + 1] - changed[end] <= 2 * CONTEXT + 1 {
            end += 1;
        }
        let first = changed[start].saturating_sub(CONTEXT);
        let last = (changed[end] + CONTEXT + 1).min(ops.len());
        let (old_start, new_start) = positions[first];
        let old_len = ops[first..last].iter().filter(|op| **op != Op::Add).count();
        let new_len = ops[first..last]
            .iter()
            .filter(|op| **op != Op::Remove)
            .count();
        out.push_str(&format!(
            "@@ -{},{old_len} +{},{new_len} @@\n",
            old_start + usize::from(old_len > 0),
            new_start + usize::from(new_len > 0),
        ));
        for i in first..last {
            let (o, n) = positions[i];
            let line = match ops[i] {
                Op::Keep => format!(" {}", old[o]),
                Op::Remove => format!("-{}", old[o]),
                Op::Add => format!("+{}", new[n]),
            };
            out.push_str(&line);
            out.push('\n');
        }
        start = end + 1;
    }
    out
}

/// The steps turning `old` into `new`: common prefix and suffix kept, the middle aligned by a
/// longest common subsequence (listings change a few lines at a time, so the middle is small).
fn edit_script(old: &[String], new: &[String]) -> Vec<Op> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (a, b) = (
        &old[prefix..old.len() - suffix],
        &new[prefix..new.len() - suffix],
    );
    let mut ops = vec![Op::Keep; prefix];
    if (a.len() + 1).saturating_mul(b.len() + 1) > MAX_TABLE_CELLS {
        ops.extend(std::iter::repeat_n(Op::Remove, a.len()));
        ops.extend(std::iter::repeat_n(Op::Add, b.len()));
    } else {
        ops.extend(lcs_script(a, b));
    }
    ops.extend(std::iter::repeat_n(Op::Keep, suffix));
    ops
}

/// The edit script from a longest-common-subsequence table; removals come before additions.
fn lcs_script(a: &[String], b: &[String]) -> Vec<Op> {
    let width = b.len() + 1;
    // table[i * width + j]: length of the LCS of a[i..] and b[j..].
    let mut table = vec![0_u32; (a.len() + 1) * width];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            table[i * width + j] = if a[i] == b[j] {
                table[(i + 1) * width + j + 1] + 1
            } else {
                table[(i + 1) * width + j].max(table[i * width + j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut ops = Vec::with_capacity(a.len() + b.len());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push(Op::Keep);
            (i, j) = (i + 1, j + 1);
        } else if j == b.len()
            || (i < a.len() && table[(i + 1) * width + j] >= table[i * width + j + 1])
        {
            ops.push(Op::Remove);
            i += 1;
        } else {
            ops.push(Op::Add);
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::unified_diff;

    fn lines(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn equal_listings_have_an_empty_diff() {
        assert_eq!(unified_diff(&lines("a b"), &lines("a b"), "old", "new"), "");
    }

    #[test]
    fn a_changed_line_shows_as_removed_then_added_with_context() {
        let old = lines("a b c d e f g h i");
        let new = lines("a b c d E f g h i");
        let expected = "--- old\n+++ new\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n";
        assert_eq!(unified_diff(&old, &new, "old", "new"), expected);
    }

    #[test]
    fn distant_changes_make_separate_hunks() {
        let old = lines("a b c d e f g h i j k l m n");
        let new = lines("x a b c d e f g h i j k l m n y");
        let expected = "--- old\n+++ new\n@@ -1,3 +1,4 @@\n+x\n a\n b\n c\n@@ -12,3 +13,4 @@\n l\n m\n n\n+y\n";
        assert_eq!(unified_diff(&old, &new, "old", "new"), expected);
    }

    #[test]
    fn a_missing_listing_diffs_as_all_added() {
        let expected = "--- old\n+++ new\n@@ -0,0 +1,2 @@\n+a\n+b\n";
        assert_eq!(unified_diff(&[], &lines("a b"), "old", "new"), expected);
    }
}
