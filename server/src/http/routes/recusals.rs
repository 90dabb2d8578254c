//! Recusals against teams (P4): a recusal recorded after a task exists binds at once (validation
//! refuses the recused officer's changes to the entity's records), and the tasks whose team holds
//! a recused officer are listed here, so that a supervisor reassigns them.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::openapi::{self, ErrorBodySchema};
use crate::service::auth::Caller;
use crate::service::error::ApiResult;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/recusals/tasks", get(recused_teams))
}

/// A task whose team holds an officer recused from its entity.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecusedTeam {
    pub task_id: String,
    pub entity_id: String,
    /// The team's officers recused from the entity, with the recorded ground.
    pub recused: Vec<RecusedOfficer>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RecusedOfficer {
    pub officer_id: String,
    /// The ground recorded with the recusal, for example `relative_is_party`.
    pub ground: String,
}

/// Tasks whose team holds an officer recused from the task's entity.
#[utoipa::path(
    get,
    operation_id = "tasks_with_recused_officers",
    path = "/v1/recusals/tasks",
    tag = "tasks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tasks to reassign, by task id.", body = Vec<RecusedTeam>),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: supervisors and administrators only.", body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn recused_teams(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<RecusedTeam>>> {
    caller.require(&["supervisor", "admin"])?;
    let (tasks, recusals) = state.blocking(|store| Ok((store.tasks(None)?, store.recusals()?))).await?;
    Ok(Json(
        tasks
            .into_iter()
            .filter_map(|task| {
                let recused: Vec<RecusedOfficer> = recusals
                    .iter()
                    .filter(|(officer, entity, _)| *entity == task.entity_id && task.team.contains(officer))
                    .map(|(officer, _, ground)| RecusedOfficer { officer_id: officer.clone(), ground: ground.clone() })
                    .collect();
                (!recused.is_empty()).then_some(RecusedTeam {
                    task_id: task.task_id,
                    entity_id: task.entity_id,
                    recused,
                })
            })
            .collect(),
    ))
}
