//! Output helpers shared by listing commands: tables, `{{.Field}}`
//! templates, human sizes and ages.

use serde_json::Value;

/// `--format`: `table` (default), `json`, or a Go-style template whose
/// `{{.Field}}` placeholders name keys of each row's JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Template(String),
}

pub fn parse_format(s: &str) -> Result<Format, String> {
    match s {
        "table" | "" => Ok(Format::Table),
        "json" => Ok(Format::Json),
        t if t.contains("{{") => Ok(Format::Template(t.to_string())),
        other => Err(format!(
            "unknown format {other:?}: use table, json or a {{{{.Field}}}} template"
        )),
    }
}

/// Render one row through a template.
pub fn render(template: &str, row: &Value) -> String {
    let t = template
        .strip_prefix("table ")
        .unwrap_or(template)
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    let mut out = String::new();
    let mut rest = t.as_str();
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else { break };
        let key = rest[i + 2..i + j].trim().trim_start_matches('.');
        match &row[key] {
            Value::String(s) => out.push_str(s),
            Value::Null => {}
            v => out.push_str(&v.to_string()),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

/// Print `rows` in `format`: a JSON array, a template per row, or a table
/// of `headers` with the cells `cells` makes of each row.
pub fn print_rows(
    format: &Format,
    rows: &[Value],
    headers: &[&str],
    cells: impl Fn(&Value) -> Vec<String>,
) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(rows)?),
        Format::Template(t) => rows.iter().for_each(|r| println!("{}", render(t, r))),
        Format::Table => table(headers, &rows.iter().map(cells).collect::<Vec<_>>()),
    }
    Ok(())
}

/// The string at `v` ("" when it is not one).
pub fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// Print rows as aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = w[i]))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(headers.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

pub fn human_size(n: u64) -> String {
    const U: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.3} {}", U[i]).replace(".000", "")
    }
}

pub fn human_age(created: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(created);
    let s = (now - created).max(0);
    match s {
        0..=59 => format!("{s} seconds ago"),
        60..=3599 => format!("{} minutes ago", s / 60),
        3600..=86399 => format!("{} hours ago", s / 3600),
        _ => format!("{} days ago", s / 86400),
    }
}
