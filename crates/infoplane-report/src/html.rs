//! One self-contained HTML page: inline SVG plots, tables of numbers, settings. No script, no
//! stylesheet or font from elsewhere, nothing fetched from a network.

use crate::plot::tick;

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG document made fit to inline: no XML declaration, no namespace URL (HTML parsers do
/// not need it, and the page then names no external address at all), scaled to the page width.
pub fn inline_svg(svg: &str) -> String {
    let body = svg.trim_start();
    let body = if body.starts_with("<?xml") { body.split_once("?>").map(|(_, b)| b.trim_start()).unwrap_or(body) } else { body };
    body.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1).replacen("<svg ", "<svg role=\"img\" preserveAspectRatio=\"xMidYMid meet\" ", 1)
}

/// A cell's text: numbers to 4 significant figures (SI suffixes for large ones).
pub fn cell(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v != 0.0 && v.abs() < 1e-3 => format!("{v:.2e}"),
        Some(v) if v.abs() >= 1e4 => tick(v),
        Some(v) => {
            let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
            format!("{v:.digits$}")
        }
    }
}

pub struct Figure {
    pub id: String,
    pub title: String,
    pub caption: String,
    pub svg: String,
    pub files: Vec<String>,
}

pub struct Page {
    pub title: String,
    pub intro: Vec<String>,
    pub figures: Vec<Figure>,
    /// (heading, header, rows) of plain tables.
    pub tables: Vec<(String, Vec<String>, Vec<Vec<String>>)>,
    pub notes: Vec<String>,
    /// (summary, preformatted text) shown collapsed.
    pub details: Vec<(String, String)>,
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#222;line-height:1.45}\
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd;padding-bottom:.2em}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto;display:block;margin:0 auto}\
figcaption{font-size:.92em;color:#444;margin-top:.4em}figcaption .files{color:#777;font-size:.9em}\
nav ul{columns:2;font-size:.95em}table{border-collapse:collapse;font-size:.85em;margin:.5em 0;display:block;overflow-x:auto}\
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;white-space:nowrap}th{background:#f4f4f4}\
td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}\
.notes li{color:#555;font-size:.92em}";

impl Page {
    pub fn render(&self) -> String {
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        h.push_str(&format!("<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n", escape(&self.title)));
        h.push_str(&format!("<h1>{}</h1>\n", escape(&self.title)));
        for p in &self.intro {
            h.push_str(&format!("<p>{}</p>\n", escape(p)));
        }
        if !self.figures.is_empty() {
            h.push_str("<nav><ul>\n");
            for f in &self.figures {
                h.push_str(&format!("<li><a href=\"#{}\">{}</a></li>\n", f.id, escape(&f.title)));
            }
            for (heading, _, _) in &self.tables {
                h.push_str(&format!("<li><a href=\"#{}\">{}</a></li>\n", anchor(heading), escape(heading)));
            }
            h.push_str("</ul></nav>\n");
        }
        for f in &self.figures {
            h.push_str(&format!("<section id=\"{}\">\n<h2>{}</h2>\n<figure>\n{}\n", f.id, escape(&f.title), inline_svg(&f.svg)));
            let files: Vec<String> = f.files.iter().map(|p| format!("<a href=\"{0}\">{0}</a>", escape(p))).collect();
            h.push_str(&format!("<figcaption>{} <span class=\"files\">Files: {}</span></figcaption>\n</figure>\n</section>\n", escape(&f.caption), files.join(", ")));
        }
        for (heading, header, rows) in &self.tables {
            h.push_str(&format!("<section id=\"{}\">\n<h2>{}</h2>\n<table>\n<thead><tr>", anchor(heading), escape(heading)));
            for c in header {
                h.push_str(&format!("<th>{}</th>", escape(c)));
            }
            h.push_str("</tr></thead>\n<tbody>\n");
            for row in rows {
                h.push_str("<tr>");
                for c in row {
                    h.push_str(&format!("<td>{}</td>", escape(c)));
                }
                h.push_str("</tr>\n");
            }
            h.push_str("</tbody>\n</table>\n</section>\n");
        }
        if !self.notes.is_empty() {
            h.push_str("<h2>Notes</h2>\n<ul class=\"notes\">\n");
            for n in &self.notes {
                h.push_str(&format!("<li>{}</li>\n", escape(n)));
            }
            h.push_str("</ul>\n");
        }
        for (summary, text) in &self.details {
            h.push_str(&format!("<details><summary>{}</summary>\n<pre>{}</pre>\n</details>\n", escape(summary), escape(text)));
        }
        h.push_str("</body>\n</html>\n");
        h
    }
}

fn anchor(heading: &str) -> String {
    let s: String = heading.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    format!("t-{s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_inlining() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"10\" height=\"10\" viewBox=\"0 0 10 10\" xmlns=\"http://www.w3.org/2000/svg\">\n</svg>";
        let inl = inline_svg(svg);
        assert!(inl.starts_with("<svg role=\"img\"") && !inl.contains("http"), "{inl}");
        assert_eq!(cell(Some(0.61234567)), "0.6123");
        assert_eq!(cell(Some(12.5)), "12.50");
        assert_eq!(cell(Some(3.2e-5)), "3.20e-5");
        assert_eq!(cell(Some(162_322_944.0)), "162.32M");
        assert_eq!(cell(None), "—");
    }
}
