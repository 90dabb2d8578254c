//! The server's HTML pages: plain server-rendered HTML with no script, no style sheet, no image
//! and no form (see [`crate::http::HTML_CONTENT_SECURITY_POLICY`]). Everything shown is escaped.

use crate::service::campaigns::PublicCampaign;

/// Escapes text for HTML.
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

/// The public listing as a plain HTML page.
pub fn render_page(campaigns: &[PublicCampaign]) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>双随机抽查公示</title></head><body>\n\
         <h1>双随机、一公开 抽查公示</h1>\n",
    );
    for c in campaigns {
        page.push_str(&format!(
            "<section><h2>{} · {} · {}</h2>\n<p>{} – {}</p>\n<p>commitment <code>{}</code> ({}, published {})</p>\n",
            escape(&c.campaign_id),
            escape(&c.spec.matter),
            escape(&c.spec.period),
            c.spec.starts_on,
            c.spec.ends_on,
            escape(&c.commitment.commitment),
            escape(&c.commitment.algorithm),
            c.commitment.published_at_ms,
        ));
        match (&c.draw, c.draw_public_on) {
            (Some(draw), Some(day)) => {
                page.push_str(&format!(
                    "<p>seed <code>{}</code>, public value {:?}, public since {day}</p>\n<ol>\n",
                    hex::encode(draw.inputs.server_seed),
                    escape(&draw.inputs.public_value),
                ));
                for task in &draw.draw.tasks {
                    page.push_str(&format!(
                        "<li>{} ({}): {}</li>\n",
                        escape(&task.entity_id),
                        escape(&task.tier),
                        escape(&task.team.join(", "))
                    ));
                }
                page.push_str("</ol>\n");
            }
            _ => page.push_str("<p>The draw is not public yet.</p>\n"),
        }
        if !c.results.is_empty() {
            page.push_str(
                "<table><tr><th>entity</th><th>inspected</th><th>conclusion</th><th>public since</th></tr>\n",
            );
            for r in &c.results {
                page.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    escape(&r.entity_id),
                    r.inspected_on,
                    escape(r.conclusion.as_deref().unwrap_or("")),
                    r.public_on
                ));
            }
            page.push_str("</table>\n");
        }
        page.push_str("</section>\n");
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CampaignCommitment, CampaignSpec};

    #[test]
    fn the_page_escapes_what_it_shows() {
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
        let campaign = PublicCampaign {
            campaign_id: "C1".into(),
            spec: CampaignSpec {
                matter: "<b>M01</b>".into(),
                period: "2026-Q4".into(),
                starts_on: "2026-10-01".parse().unwrap(),
                ends_on: "2026-12-31".parse().unwrap(),
                tiers: vec![],
                divisions: vec![],
                team_size: 2,
                max_tasks_per_officer: 3,
                joint_departments: vec![],
            },
            commitment: CampaignCommitment {
                algorithm: "fieldsync-draw/v1".into(),
                commitment: "ab".into(),
                campaign_canonical: String::new(),
                campaign_sha256: String::new(),
                entities_hash: String::new(),
                officers_hash: String::new(),
                recusals_hash: String::new(),
                entities: 0,
                officers: 0,
                recusals: 0,
                published_at_ms: 0,
            },
            drawn_at_ms: None,
            draw: None,
            draw_public_on: None,
            results: vec![],
        };
        let page = render_page(&[campaign]);
        assert!(page.contains("&lt;b&gt;M01&lt;/b&gt;") && !page.contains("<b>M01"), "{page}");
        assert!(page.contains("not public yet"));
    }
}
