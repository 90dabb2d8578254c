//! A campaign's progress as supervisors follow it: each drawn task with its inspection.

use super::{Inspection, inspections, one_campaign};
use crate::service::auth::Caller;
use crate::service::{ApiResult, Context};
use crate::store::{CampaignTask, StoredCampaign};

/// One campaign with each of its tasks and the task's inspection (its locked record), if it has
/// one: for supervisors.
pub async fn campaign_progress(
    context: &Context,
    caller: &Caller,
    campaign_id: String,
) -> ApiResult<(StoredCampaign, Vec<(CampaignTask, Option<Inspection>)>)> {
    let (campaign, tasks) = one_campaign(context, caller, campaign_id).await?;
    let progress = context
        .blocking(move |store| {
            let ids: Vec<String> = tasks.iter().map(|t| t.task_id.clone()).collect();
            Ok(inspections(store, &ids).map(|mut found| {
                tasks
                    .into_iter()
                    .map(|task| {
                        let inspected = found.remove(&task.task_id);
                        (task, inspected)
                    })
                    .collect::<Vec<_>>()
            }))
        })
        .await??;
    Ok((campaign, progress))
}
