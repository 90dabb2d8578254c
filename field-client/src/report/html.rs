//! The report as one self-contained HTML page: no script, no outside resource, thumbnails as
//! `data:` PNGs. Every value comes from a package, which is hostile input: each one goes
//! through [`escape`], and nothing else is written into the page.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Block, Report};

const STYLE: &str = "body{font-family:'Noto Sans CJK SC','Noto Sans SC','Source Han Sans SC','PingFang SC','Microsoft YaHei',sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#111;line-height:1.6}\
h1{text-align:center;font-size:1.6em}p.sub{text-align:center;color:#444;margin:.2em 0;word-break:break-all}\
h2{border-bottom:1px solid #999;margin-top:1.6em}table{border-collapse:collapse;width:100%;margin:.6em 0}\
th,td{border:1px solid #999;padding:.3em .5em;text-align:left;vertical-align:top;word-break:break-all}th{background:#eee}\
.verdict{font-size:1.2em;font-weight:bold;padding:.6em;border:2px solid}.holds{color:#064;border-color:#064}.fails{color:#a00;border-color:#a00}\
.finding{font-weight:bold;color:#a00;margin-bottom:0}.photos{display:flex;flex-wrap:wrap;gap:1em}\
figure{margin:0;width:14em}figure img{max-width:100%;border:1px solid #999}figcaption{font-size:.8em;word-break:break-all}\
footer{margin-top:2em;color:#666;font-size:.8em;text-align:center}";

/// Text made safe for an HTML element's content or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// The page.
pub fn render(report: &Report) -> String {
    let mut html = String::new();
    html.push_str("<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n");
    // Nothing from outside, no script, even if a value escaped its escaping.
    html.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n",
    );
    html.push_str(&format!("<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n", escape(&report.title)));
    html.push_str(&format!("<h1>{}</h1>\n", escape(&report.title)));
    for line in &report.subtitle {
        html.push_str(&format!("<p class=\"sub\">{}</p>\n", escape(line)));
    }
    for block in &report.blocks {
        block_html(&mut html, block);
    }
    html.push_str(&format!("<footer>{}</footer>\n</body>\n</html>\n", escape(&report.footer)));
    html
}

fn paragraph_html(text: &str) -> String {
    text.split('\n').map(escape).collect::<Vec<_>>().join("<br>")
}

fn block_html(html: &mut String, block: &Block) {
    match block {
        Block::Heading(text) => html.push_str(&format!("<h2>{}</h2>\n", escape(text))),
        Block::Paragraph(text) => html.push_str(&format!("<p>{}</p>\n", paragraph_html(text))),
        Block::Verdict { holds, text } => html.push_str(&format!(
            "<p class=\"verdict {}\">{}</p>\n",
            if *holds { "holds" } else { "fails" },
            escape(text)
        )),
        Block::Finding(text) => html.push_str(&format!("<p class=\"finding\">{}</p>\n", escape(text))),
        Block::Pairs(pairs) => {
            html.push_str("<table>\n");
            for (label, value) in pairs {
                html.push_str(&format!(
                    "<tr><th style=\"width:25%\">{}</th><td>{}</td></tr>\n",
                    escape(label),
                    paragraph_html(value)
                ));
            }
            html.push_str("</table>\n");
        }
        Block::Table { columns, rows } => {
            html.push_str("<table>\n<tr>");
            for (title, share) in columns {
                html.push_str(&format!("<th style=\"width:{:.0}%\">{}</th>", share * 100.0, escape(title)));
            }
            html.push_str("</tr>\n");
            for row in rows {
                html.push_str("<tr>");
                for cell in row {
                    html.push_str(&format!("<td>{}</td>", paragraph_html(cell)));
                }
                html.push_str("</tr>\n");
            }
            html.push_str("</table>\n");
        }
        Block::Photos(photos) => {
            html.push_str("<div class=\"photos\">\n");
            for photo in photos {
                html.push_str("<figure>");
                if let Some(thumbnail) = &photo.thumbnail {
                    html.push_str(&format!(
                        "<img src=\"data:image/png;base64,{}\" width=\"{}\" height=\"{}\" alt=\"{}\">",
                        STANDARD.encode(thumbnail.png()),
                        thumbnail.width,
                        thumbnail.height,
                        escape(&photo.caption)
                    ));
                }
                html.push_str(&format!(
                    "<figcaption><b>{}</b><br>SHA-256 {}",
                    escape(&photo.caption),
                    escape(&photo.sha256)
                ));
                if !photo.note.is_empty() {
                    html.push_str(&format!("<br>{}", escape(&photo.note)));
                }
                html.push_str("</figcaption></figure>\n");
            }
            html.push_str("</div>\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Photo;

    #[test]
    fn every_value_is_escaped() {
        let hostile = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&amp;";
        let report = Report {
            title: hostile.into(),
            subtitle: vec![hostile.into()],
            blocks: vec![
                Block::Heading(hostile.into()),
                Block::Paragraph(format!("{hostile}\n{hostile}")),
                Block::Verdict { holds: false, text: hostile.into() },
                Block::Finding(hostile.into()),
                Block::Pairs(vec![(hostile.into(), hostile.into())]),
                Block::Table { columns: vec![(hostile.into(), 1.0)], rows: vec![vec![hostile.into()]] },
                Block::Photos(vec![Photo {
                    sha256: hostile.into(),
                    caption: hostile.into(),
                    thumbnail: None,
                    note: hostile.into(),
                }]),
            ],
            footer: hostile.into(),
        };
        let html = render(&report);
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("'x'"), "{html}");
        assert_eq!(html.matches("&lt;script&gt;").count(), 16, "each value where it belongs, escaped");
        assert!(html.contains("&amp;amp;"));
    }
}
