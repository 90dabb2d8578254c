//! The public side of random inspection (一公开): the campaigns as anyone may see them, a page at a
//! time, with no sign-in.

use super::registries::today;
use super::{CampaignError, PublicCampaign, public_view, published_results};
use crate::service::{ApiError, ApiResult, Context};

/// Which campaigns the public asks for.
enum PublicSelection {
    One(String),
    /// A page of the listing: at most `limit`, by campaign id, after `after`.
    Page {
        after: Option<String>,
        limit: usize,
    },
}

/// The campaigns of one public page of at most `limit` (1 to `Config::max_public_page`, which is
/// also the default) after the campaign id `after`, and the `after` of the next page when there
/// is one.
pub async fn public_page(
    context: &Context,
    after: Option<String>,
    limit: Option<usize>,
) -> ApiResult<(Vec<PublicCampaign>, Option<String>)> {
    let max = context.config.max_public_page;
    let limit = limit.unwrap_or(max);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", format!("limit must be 1 to {max}")));
    }
    let mut campaigns = public_campaigns(context, PublicSelection::Page { after, limit }).await?;
    let next = (campaigns.len() > limit).then(|| {
        campaigns.truncate(limit);
        campaigns.last().map(|c| c.campaign_id.clone()).unwrap_or_default()
    });
    Ok((campaigns, next))
}

/// One campaign as the public sees it.
pub async fn public_campaign(context: &Context, campaign_id: String) -> ApiResult<PublicCampaign> {
    let mut found = public_campaigns(context, PublicSelection::One(campaign_id)).await?;
    found.pop().ok_or(ApiError::NotFound { what: "campaign" })
}

async fn public_campaigns(context: &Context, selection: PublicSelection) -> ApiResult<Vec<PublicCampaign>> {
    let today = today()?;
    let campaigns = context
        .blocking(move |store| {
            let campaigns = match &selection {
                PublicSelection::One(id) => store.campaign(id)?.into_iter().collect(),
                // One more than the page, to know whether another follows.
                PublicSelection::Page { after, limit } => store.campaigns_after(after.as_deref(), limit + 1)?,
            };
            Ok(campaigns
                .into_iter()
                .map(|campaign| {
                    let tasks = store.campaign_tasks(&campaign.campaign_id)?;
                    let results = published_results(store, &campaign, &tasks)?;
                    Ok(public_view(&campaign, &tasks, results, today))
                })
                .collect::<Result<Vec<_>, CampaignError>>())
        })
        .await??;
    Ok(campaigns)
}
