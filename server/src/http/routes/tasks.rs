//! Inspection tasks: a supervisor names the entity, the team and the window; the team's
//! officers fetch the task, and with it what their devices need to sign its records offline.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use schemas::{TaskTeam, TeamMember};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::http::ApiJson;
use crate::http::AppState;
use crate::http::openapi::{self, ErrorBodySchema, TaskSchema, TaskTeamSchema};
use crate::service::access::Access;
use crate::service::auth::Caller;
use crate::service::error::{ApiError, ApiResult};
use crate::service::now_ms;
use crate::store::{StoreError, Task};

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
        (status = 400, description = openapi::JSON_400, body = ErrorBodySchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 403, description = "`role_required`: the caller is not a `supervisor`.", body = ErrorBodySchema),
        (status = 409, description = "`task_exists`: a task with this id exists.", body = ErrorBodySchema),
        (status = 413, description = openapi::BODY_413, body = ErrorBodySchema),
        (status = 415, description = openapi::JSON_415, body = ErrorBodySchema),
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
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
        (status = 503, description = openapi::UNAVAILABLE_503, body = ErrorBodySchema),
        (status = 507, description = openapi::STORAGE_FULL_507, body = ErrorBodySchema),
    ),
)]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(request): ApiJson<NewTask>,
) -> ApiResult<Json<Task>> {
    caller.require(&["supervisor"])?;
    let task_id = request.task_id.clone().unwrap_or_else(|| format!("T-{}", uuid::Uuid::new_v4()));
    sync_core::input::identifier("task_id", &task_id)
        .and_then(|()| sync_core::input::short_text("matter", &request.matter))
        .map_err(|e| ApiError::unprocessable("invalid_task", e.to_string()))?;
    if request.window_end_ms <= request.window_start_ms {
        return Err(ApiError::unprocessable("invalid_task", "the window must end after it starts"));
    }
    let entity_id = request.entity_id.clone();
    let team = request.team.clone();
    let (entity, certificates, recused) = state
        .blocking(move |store| {
            Ok((store.entity(&entity_id)?, store.certificates(Some(&team))?, store.recused_officers(&entity_id)?))
        })
        .await?;
    if entity.is_none() {
        return Err(ApiError::unprocessable(
            "unknown_entity",
            format!("no entity {} in the registry", request.entity_id),
        ));
    }
    sync_core::rules::check_team(&request.team, &certificates, &recused, request.window_start_ms).map_err(
        |problem| {
            let code = match problem {
                sync_core::rules::TeamProblem::Recused { .. } => "officer_recused",
                sync_core::rules::TeamProblem::NotCertified { .. } => "officer_not_certified",
                sync_core::rules::TeamProblem::Duplicate { .. } => "duplicate_officer",
                sync_core::rules::TeamProblem::TooFewCertified { .. } => "team_too_small",
            };
            ApiError::unprocessable(code, problem.to_string())
        },
    )?;
    let task = Task {
        task_id,
        entity_id: request.entity_id,
        matter: request.matter,
        window_start_ms: request.window_start_ms,
        window_end_ms: request.window_end_ms,
        team: request.team,
        created_by: caller.officer_id.clone(),
        created_at_ms: now_ms(),
    };
    let stored = task.clone();
    state.blocking(move |store| store.create_task(&stored)).await.map_err(|error| match error {
        ApiError::Conflict { .. } => {
            ApiError::Conflict { code: "task_exists", message: "a task with this id exists".into() }
        }
        other => other,
    })?;
    Ok(Json(task))
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
        (status = 200, description = "The tasks the caller may see.", body = Vec<TaskSchema>),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Vec<Task>>> {
    let officer = (!caller.has_role("supervisor") && !caller.has_role("reviewer")).then(|| caller.officer_id.clone());
    Ok(Json(
        state
            .blocking(move |store| {
                let mut tasks = store.tasks(officer.as_deref())?;
                let hidden = Access::new(store, &caller, crate::service::access::today()?).hidden_tasks()?.clone();
                tasks.retain(|task| !hidden.contains(&task.task_id));
                Ok(tasks)
            })
            .await?,
    ))
}

/// The task, if the caller may see it: supervisors see every task, reviewers every task but a
/// campaign's drawn tasks before the draw is public, an officer only the tasks whose team
/// includes them. A task the caller may not see is `not_found`, like
/// one that does not exist, so that its existence is not revealed.
async fn visible_task(state: &AppState, caller: &Caller, task_id: String) -> ApiResult<Task> {
    let caller = caller.clone();
    state
        .blocking(move |store| {
            let Some(task) = store.task(&task_id)? else { return Ok(None) };
            Ok(Access::new(store, &caller, crate::service::access::today()?).task(&task)?.then_some(task))
        })
        .await?
        .ok_or(ApiError::NotFound { what: "task" })
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
        (status = 200, description = "The task.", body = TaskSchema),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 404,
            description = "`not_found`: no such task, or the caller is an officer not on its team.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn one(State(state): State<AppState>, caller: Caller, Path(task_id): Path<String>) -> ApiResult<Json<Task>> {
    Ok(Json(visible_task(&state, &caller, task_id).await?))
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
            description = "The task, and each officer of its team with their name and certificates.",
            body = TaskTeamSchema,
        ),
        (status = 401, description = openapi::CALLER_401, body = ErrorBodySchema),
        (
            status = 404,
            description = "`not_found`: no such task, or the caller is an officer not on its team.",
            body = ErrorBodySchema,
        ),
        (status = 500, description = openapi::INTERNAL_500, body = ErrorBodySchema),
    ),
)]
async fn team(State(state): State<AppState>, caller: Caller, Path(task_id): Path<String>) -> ApiResult<Json<TaskTeam>> {
    let task = visible_task(&state, &caller, task_id).await?;
    let team = task.team.clone();
    let members = state
        .blocking(move |store| {
            let certificates = store.certificates(Some(&team))?;
            team.into_iter()
                .map(|officer_id| {
                    // The team's officers are accounts (a foreign key): one missing is corruption.
                    let account = store
                        .account(&officer_id)?
                        .ok_or_else(|| StoreError::Other(format!("officer {officer_id} of a team has no account")))?;
                    let certificates = certificates.iter().filter(|c| c.officer_id == officer_id).cloned().collect();
                    Ok(TeamMember { officer_id, name: account.name, certificates })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
    Ok(Json(TaskTeam { task, members }))
}
