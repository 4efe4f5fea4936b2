//! A unified diff of two texts, line by line, for showing a setup before it is written.

/// Lines of context around each change.
const CONTEXT: usize = 3;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Same,
    Gone,
    Added,
}

/// The line operations that turn `a` into `b` (longest common subsequence; config files are
/// small).
fn ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(Op, &'a str)> {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(n + m);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push((Op::Same, a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push((Op::Gone, a[i]));
            i += 1;
        } else {
            out.push((Op::Added, b[j]));
            j += 1;
        }
    }
    out
}

/// `--- path` / `+++ path` and hunks turning `before` (`None`: a new file) into `after`.
pub fn unified(path: &str, before: Option<&str>, after: &str) -> String {
    let a: Vec<&str> = before.map(|b| b.lines().collect()).unwrap_or_default();
    let b: Vec<&str> = after.lines().collect();
    let ops = ops(&a, &b);
    let mut out = match before {
        Some(_) => format!("--- {path}\n+++ {path}\n"),
        None => format!("--- /dev/null\n+++ {path} (new file)\n"),
    };
    // Positions of changed operations, grouped into hunks with their context.
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != Op::Same).collect();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = (changed[k] + CONTEXT + 1).min(ops.len());
        while k + 1 < changed.len() && changed[k + 1] <= end + CONTEXT {
            k += 1;
            end = (changed[k] + CONTEXT + 1).min(ops.len());
        }
        let a_start = ops[..start].iter().filter(|o| o.0 != Op::Added).count();
        let b_start = ops[..start].iter().filter(|o| o.0 != Op::Gone).count();
        let a_len = ops[start..end].iter().filter(|o| o.0 != Op::Added).count();
        let b_len = ops[start..end].iter().filter(|o| o.0 != Op::Gone).count();
        out.push_str(&format!(
            "@@ -{},{a_len} +{},{b_len} @@\n",
            a_start + usize::from(a_len > 0),
            b_start + usize::from(b_len > 0)
        ));
        for (op, line) in &ops[start..end] {
            let mark = match op {
                Op::Same => ' ',
                Op::Gone => '-',
                Op::Added => '+',
            };
            out.push(mark);
            out.push_str(line);
            out.push('\n');
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_in_the_middle_shows_with_its_context() {
        let before = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let after = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified("x.toml", Some(before), after),
            "--- x.toml\n+++ x.toml\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn a_new_file_is_all_additions_and_far_changes_make_two_hunks() {
        assert_eq!(
            unified("n.json", None, "{\n}\n"),
            "--- /dev/null\n+++ n.json (new file)\n@@ -0,0 +1,2 @@\n+{\n+}\n"
        );
        let before: String = (0..20).map(|i| format!("{i}\n")).collect();
        let after = before
            .replace("2\n", "two\n")
            .replace("17\n", "seventeen\n");
        let d = unified("f", Some(&before), &after);
        assert_eq!(d.matches("@@ ").count(), 2, "{d}");
        assert_eq!(unified("f", Some("same\n"), "same\n"), "--- f\n+++ f\n");
    }
}
