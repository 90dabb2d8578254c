//! The public pages, no sign-in needed (U1, 一公开): the random-check matter list, the enforcement
//! officers with their certificate numbers, and the campaigns with their commitments, draws and
//! published results.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::Redirect;
use axum::routing::get;
use serde::Deserialize;

use super::{Chrome, Lang, PageError, PageResult, render, time};
use crate::http::AppState;
use crate::service::ApiError;
use crate::service::campaigns::registries::{self, PublicOfficer};
use crate::service::campaigns::{PublicCampaign, public};
use crate::store::Matter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/public", get(|| async { Redirect::to("/") }))
        .route("/public/matters", get(matters))
        .route("/public/officers", get(officers))
        .route("/public/campaigns", get(campaigns))
        .route("/public/campaigns/{campaign_id}", get(campaign))
}

fn refused(lang: Lang) -> impl Fn(ApiError) -> PageError {
    move |error| PageError::Api { error, lang }
}

#[derive(Template)]
#[template(path = "console/public/matters.html")]
struct MattersPage {
    c: Chrome,
    note: String,
    matters: Vec<Matter>,
    ratios: String,
}

async fn matters(State(state): State<AppState>, lang: Lang) -> PageResult {
    let (note, matters, ratios) = match registries::public_matters(&state).await {
        Ok(list) => (list.note, list.matters, serde_json::to_string_pretty(&list.ratios).unwrap_or_default()),
        Err(ApiError::NotFound { .. }) => (String::new(), Vec::new(), String::new()),
        Err(error) => return Err(refused(lang)(error)),
    };
    render(&MattersPage { c: Chrome::public(lang, "/public/matters"), note, matters, ratios }, lang)
}

#[derive(Template)]
#[template(path = "console/public/officers.html")]
struct OfficersPage {
    c: Chrome,
    officers: Vec<PublicOfficer>,
}

async fn officers(State(state): State<AppState>, lang: Lang) -> PageResult {
    let officers = registries::public_officers(&state).await.map_err(refused(lang))?;
    render(&OfficersPage { c: Chrome::public(lang, "/public/officers"), officers }, lang)
}

/// A campaign as the public pages show it.
pub struct CampaignView {
    pub campaign_id: String,
    pub matter: String,
    pub period: String,
    pub starts_on: String,
    pub ends_on: String,
    pub algorithm: String,
    pub commitment: String,
    pub committed_at: String,
    pub drawn_at: Option<String>,
    pub draw: Option<DrawView>,
    /// (entity, inspected on, conclusion, public since), in the draw's order.
    pub results: Vec<(String, String, String, String)>,
}

/// A published draw: its revealed inputs and its tasks.
pub struct DrawView {
    pub seed: String,
    pub public_value: String,
    pub public_on: String,
    /// (entity, tier, team)
    pub tasks: Vec<(String, String, String)>,
}

impl From<&PublicCampaign> for CampaignView {
    fn from(c: &PublicCampaign) -> Self {
        let draw = match (&c.draw, c.draw_public_on) {
            (Some(draw), Some(day)) => Some(DrawView {
                seed: hex::encode(draw.inputs.server_seed),
                public_value: draw.inputs.public_value.clone(),
                public_on: day.to_string(),
                tasks: draw
                    .draw
                    .tasks
                    .iter()
                    .map(|t| (t.entity_id.clone(), t.tier.clone(), t.team.join(", ")))
                    .collect(),
            }),
            _ => None,
        };
        CampaignView {
            campaign_id: c.campaign_id.clone(),
            matter: c.spec.matter.clone(),
            period: c.spec.period.clone(),
            starts_on: c.spec.starts_on.to_string(),
            ends_on: c.spec.ends_on.to_string(),
            algorithm: c.commitment.algorithm.clone(),
            commitment: c.commitment.commitment.clone(),
            committed_at: time(c.commitment.published_at_ms),
            drawn_at: c.drawn_at_ms.map(time),
            draw,
            results: c
                .results
                .iter()
                .map(|r| {
                    (
                        r.entity_id.clone(),
                        r.inspected_on.to_string(),
                        r.conclusion.clone().unwrap_or_default(),
                        r.public_on.to_string(),
                    )
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/public/campaigns.html")]
struct CampaignsPage {
    c: Chrome,
    campaigns: Vec<CampaignView>,
    next: Option<String>,
}

/// A page of the listing: `?limit=` (1 to `Config::max_public_page`, also the default),
/// `?after=` the last campaign id of the previous page.
#[derive(Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    after: Option<String>,
}

/// The campaigns, a page at a time, with a link (and a `Link` header) to the next page.
async fn campaigns(
    State(state): State<AppState>,
    lang: Lang,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> PageResult {
    let Query(query) = query.map_err(|e| refused(lang)(ApiError::bad_request("invalid_query", e.body_text())))?;
    let limit = query.limit;
    let (campaigns, after) = public::public_page(&state, query.after, query.limit).await.map_err(refused(lang))?;
    let next = after.map(|after| {
        let mut query = vec![("after", after)];
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        format!("/public/campaigns?{}", serde_urlencoded::to_string(query).unwrap_or_default())
    });
    let page = CampaignsPage {
        c: Chrome::public(lang, "/public/campaigns"),
        campaigns: campaigns.iter().map(CampaignView::from).collect(),
        next: next.clone(),
    };
    let mut response = render(&page, lang)?;
    if let Some(next) = next
        && let Ok(value) = format!("<{next}>; rel=\"next\"").parse()
    {
        response.headers_mut().insert(header::LINK, value);
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "console/public/campaign.html")]
struct CampaignPage {
    c: Chrome,
    campaign: CampaignView,
}

async fn campaign(State(state): State<AppState>, lang: Lang, Path(campaign_id): Path<String>) -> PageResult {
    let campaign = public::public_campaign(&state, campaign_id).await.map_err(refused(lang))?;
    render(
        &CampaignPage { c: Chrome::public(lang, "/public/campaigns"), campaign: CampaignView::from(&campaign) },
        lang,
    )
}
