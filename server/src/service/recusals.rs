//! Recusals (P4): an officer kept from inspecting an entity. Supervisors and admins list the
//! tasks whose team holds an officer recused from the task's entity.

use crate::service::auth::Caller;
use crate::service::{ApiResult, Context};

/// A task whose team holds officers recused from its entity.
pub struct RecusedTeam {
    pub task_id: String,
    pub entity_id: String,
    /// The recused officers of the team, each with the recorded ground.
    pub recused: Vec<(String, String)>,
}

/// Tasks whose team holds an officer recused from the task's entity.
pub async fn recused_teams(context: &Context, caller: &Caller) -> ApiResult<Vec<RecusedTeam>> {
    caller.require(&["supervisor", "admin"])?;
    let (tasks, recusals) = context.blocking(|store| Ok((store.tasks(None)?, store.recusals()?))).await?;
    Ok(tasks
        .into_iter()
        .filter_map(|task| {
            let recused: Vec<(String, String)> = recusals
                .iter()
                .filter(|(officer, entity, _)| *entity == task.entity_id && task.team.contains(officer))
                .map(|(officer, _, ground)| (officer.clone(), ground.clone()))
                .collect();
            (!recused.is_empty()).then_some(RecusedTeam { task_id: task.task_id, entity_id: task.entity_id, recused })
        })
        .collect())
}

/// Every recorded recusal as (officer id, entity id, ground): for supervisors and admins.
pub async fn all(context: &Context, caller: &Caller) -> ApiResult<Vec<(String, String, String)>> {
    caller.require(&["supervisor", "admin"])?;
    context.blocking(|store| store.recusals()).await
}
