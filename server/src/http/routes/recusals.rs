//! Recusals against teams (P4): a recusal recorded after a task exists binds at once (validation
//! refuses the recused officer's changes to the entity's records), and the tasks whose team holds
//! a recused officer are listed here, so that a supervisor reassigns them.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::AppState;
use crate::http::openapi::{CallerErrors, ErrorBodySchema};
use crate::service::auth::Caller;
use crate::service::error::ApiResult;
use crate::service::recusals;

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
        (status = 403, description = "`role_required`: supervisors and administrators only.", body = ErrorBodySchema),
        CallerErrors,
    ),
)]
async fn recused_teams(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<RecusedTeam>>> {
    let teams = recusals::recused_teams(&state, &caller).await?;
    Ok(Json(
        teams
            .into_iter()
            .map(|team| RecusedTeam {
                task_id: team.task_id,
                entity_id: team.entity_id,
                recused: team
                    .recused
                    .into_iter()
                    .map(|(officer_id, ground)| RecusedOfficer { officer_id, ground })
                    .collect(),
            })
            .collect(),
    ))
}
