//! ASCII tables as etcdctl draws them (olekukonko/tablewriter with etcdctl's settings): a border
//! line, centred upper-case headers, cells right-aligned, one space of padding each side.

/// Renders `header` and `rows` as an etcdctl table (each line ends with `\n`).
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let border = {
        let mut s = String::from("+");
        for w in &widths {
            s.push_str(&"-".repeat(w + 2));
            s.push('+');
        }
        s.push('\n');
        s
    };
    let mut out = String::new();
    out.push_str(&border);
    out.push('|');
    for (h, w) in header.iter().zip(&widths) {
        let gap = w - h.chars().count();
        let left = gap / 2;
        out.push(' ');
        out.push_str(&" ".repeat(left));
        out.push_str(h);
        out.push_str(&" ".repeat(gap - left));
        out.push_str(" |");
    }
    out.push('\n');
    out.push_str(&border);
    for row in rows {
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            let cell = row.get(i).map(|s| s.as_str()).unwrap_or("");
            out.push(' ');
            out.push_str(&" ".repeat(w - cell.chars().count()));
            out.push_str(cell);
            out.push_str(" |");
        }
        out.push('\n');
    }
    out.push_str(&border);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_etcdctl_member_table() {
        let t = render(
            &["ID", "STATUS", "NAME"],
            &[vec![
                "dbf5dc14efe8abc1".into(),
                "started".into(),
                "gt".into(),
            ]],
        );
        assert_eq!(
            t,
            "+------------------+---------+------+\n\
             |        ID        | STATUS  | NAME |\n\
             +------------------+---------+------+\n\
             | dbf5dc14efe8abc1 | started |   gt |\n\
             +------------------+---------+------+\n"
        );
    }
}
