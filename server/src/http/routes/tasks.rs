//! Inspection tasks: a supervisor names the entity, the team and the window; the team's
//! officers fetch the task, and with it what their devices need to sign its records offline.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use schemas::TaskTeam;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::http::ApiJson;
use crate::http::AppState;
use crate::http::openapi::{
    self, CallerErrors, ErrorBodySchema, JsonBodyErrors, SupervisorOnly, TaskNotFound, TaskSchema, TaskTeamSchema,
    WriteErrors,
};
use crate::service::auth::Caller;
use crate::service::error::ApiResult;
use crate::service::tasks;
use crate::store::Task;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/tasks", post(create).get(list))
        .route("/v1/tasks/{task_id}", get(one))
        .route("/v1/tasks/{task_id}/team", get(team))
}

#[derive(Deserialize, ToSchema)]
pub struct NewTask {
    /// The task's id, an identifier; `T-` and a random UUID when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub task_id: Option<String>,
    /// An entity of the imported registry.
    pub entity_id: String,
    /// One line of 1 to 200 characters.
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 200
    )]
    pub matter: String,
    /// Officer ids: at least two with a valid certificate at the window's start, none recused.
    pub team: Vec<String>,
    /// Unix milliseconds.
    pub window_start_ms: i64,
    /// Unix milliseconds, after the start.
    pub window_end_ms: i64,
}

/// Creates an inspection task: for supervisors.
#[utoipa::path(
    post,
    operation_id = "create_task",
    path = "/v1/tasks",
    tag = "tasks",
    request_body = NewTask,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task as stored.", body = TaskSchema),
        (status = 409, description = "`task_exists`: a task with this id exists.", body = ErrorBodySchema),
        (
            status = 422,
            description = openapi::invalid_body_422(
                "NewTask",
                "`invalid_task`: the task id or the matter is not acceptable, or the window does not end \
                 after it starts. `unknown_entity`: the entity is not in the registry. \
                 `officer_recused`: an officer of the team is recused from the entity (P4). \
                 `officer_not_certified`: an officer has no valid certificate at the window's start (P2, P3). \
                 `team_too_small`: fewer than two officers with a valid certificate (P1). \
                 `duplicate_officer`: an officer is listed twice.",
            ),
            body = ErrorBodySchema,
        ),
        CallerErrors, JsonBodyErrors, WriteErrors, SupervisorOnly,
    ),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewTask>,
) -> ApiResult<Json<Task>> {
    let NewTask { task_id, entity_id, matter, team, window_start_ms, window_end_ms } = request;
    let new = tasks::NewTask { task_id, entity_id, matter, team, window_start_ms, window_end_ms };
    Ok(Json(tasks::create(&state, &caller, new).await?))
}

/// Officers see the tasks they are on; supervisors see all; reviewers see all but a campaign's
/// drawn tasks before its draw is public (the list is confidential until the inspection).
#[utoipa::path(
    get,
    operation_id = "list_tasks",
    path = "/v1/tasks",
    tag = "tasks",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tasks the caller may see, with an `ETag`.", body = Vec<TaskSchema>),
        (status = 304, description = openapi::NOT_MODIFIED_304),
        CallerErrors,
    ),
)]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Task>>> {
    Ok(Json(tasks::list(&state, &caller).await?))
}

/// One task, if the caller may see it.
#[utoipa::path(
    get,
    operation_id = "get_task",
    path = "/v1/tasks/{task_id}",
    tag = "tasks",
    params(("task_id" = String, Path, description = "The task.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The task, with an `ETag`.", body = TaskSchema),
        (status = 304, description = openapi::NOT_MODIFIED_304),
        CallerErrors, TaskNotFound,
    ),
)]
async fn one(State(state): State<AppState>, caller: Caller, Path(task_id): Path<String>) -> ApiResult<Json<Task>> {
    Ok(Json(tasks::visible_task(&state, &caller, task_id).await?))
}

/// The task with its team's names and certificates, if the caller may see the task.
#[utoipa::path(
    get,
    operation_id = "get_task_team",
    path = "/v1/tasks/{task_id}/team",
    tag = "tasks",
    params(("task_id" = String, Path, description = "The task.")),
    security(("bearer" = [])),
    responses(
        (
            status = 200,
            description = "The task, and each officer of its team with their name and certificates, with an \
                `ETag`.",
            body = TaskTeamSchema,
        ),
        (status = 304, description = openapi::NOT_MODIFIED_304),
        CallerErrors, TaskNotFound,
    ),
)]
async fn team(State(state): State<AppState>, caller: Caller, Path(task_id): Path<String>) -> ApiResult<Json<TaskTeam>> {
    Ok(Json(tasks::team(&state, &caller, task_id).await?))
}
