//! Inspection tasks: an entity, a team and a window. A supervisor creates one with a team of at
//! least two certified officers, none recused from the entity; each caller sees the tasks
//! [`Access`] lets them see, and a task they may not see is `not_found`.

use schemas::{TaskTeam, TeamMember};

use crate::service::access::{Access, today};
use crate::service::auth::Caller;
use crate::service::{ApiError, ApiResult, Context, now_ms};
use crate::store::{StoreError, Task};

/// A new task, as a supervisor asks for it.
pub struct NewTask {
    /// `T-` and a random UUID when absent.
    pub task_id: Option<String>,
    pub entity_id: String,
    pub matter: String,
    pub team: Vec<String>,
    pub window_start_ms: i64,
    pub window_end_ms: i64,
}

/// Creates an inspection task: for supervisors.
pub async fn create(context: &Context, caller: &Caller, new: NewTask) -> ApiResult<Task> {
    caller.require(&["supervisor"])?;
    let task_id = new.task_id.clone().unwrap_or_else(|| format!("T-{}", uuid::Uuid::new_v4()));
    sync_core::input::identifier("task_id", &task_id)
        .and_then(|()| sync_core::input::short_text("matter", &new.matter))
        .map_err(|e| ApiError::unprocessable("invalid_task", e.to_string()))?;
    if new.window_end_ms <= new.window_start_ms {
        return Err(ApiError::unprocessable("invalid_task", "the window must end after it starts"));
    }
    let entity_id = new.entity_id.clone();
    let team = new.team.clone();
    let (entity, certificates, recused) = context
        .blocking(move |store| {
            Ok((store.entity(&entity_id)?, store.certificates(Some(&team))?, store.recused_officers(&entity_id)?))
        })
        .await?;
    if entity.is_none() {
        return Err(ApiError::unprocessable("unknown_entity", format!("no entity {} in the registry", new.entity_id)));
    }
    sync_core::rules::check_team(&new.team, &certificates, &recused, new.window_start_ms).map_err(|problem| {
        let code = match problem {
            sync_core::rules::TeamProblem::Recused { .. } => "officer_recused",
            sync_core::rules::TeamProblem::NotCertified { .. } => "officer_not_certified",
            sync_core::rules::TeamProblem::Duplicate { .. } => "duplicate_officer",
            sync_core::rules::TeamProblem::TooFewCertified { .. } => "team_too_small",
        };
        ApiError::unprocessable(code, problem.to_string())
    })?;
    let task = Task {
        task_id,
        entity_id: new.entity_id,
        matter: new.matter,
        window_start_ms: new.window_start_ms,
        window_end_ms: new.window_end_ms,
        team: new.team,
        created_by: caller.officer_id.clone(),
        created_at_ms: now_ms(),
    };
    let stored = task.clone();
    context.blocking(move |store| store.create_task(&stored)).await.map_err(|error| match error {
        ApiError::Conflict { .. } => {
            ApiError::Conflict { code: "task_exists", message: "a task with this id exists".into() }
        }
        other => other,
    })?;
    Ok(task)
}

/// Officers see the tasks they are on; supervisors see all; reviewers see all but a campaign's
/// drawn tasks before its draw is public (the list is confidential until the inspection).
pub async fn list(context: &Context, caller: &Caller) -> ApiResult<Vec<Task>> {
    let officer = (!caller.has_role("supervisor") && !caller.has_role("reviewer")).then(|| caller.officer_id.clone());
    let caller = caller.clone();
    context
        .blocking(move |store| {
            let mut tasks = store.tasks(officer.as_deref())?;
            let hidden = Access::new(store, &caller, today()?).hidden_tasks()?.clone();
            tasks.retain(|task| !hidden.contains(&task.task_id));
            Ok(tasks)
        })
        .await
}

/// The task, if the caller may see it: supervisors see every task, reviewers every task but a
/// campaign's drawn tasks before the draw is public, an officer only the tasks whose team
/// includes them. A task the caller may not see is `not_found`, like
/// one that does not exist, so that its existence is not revealed.
pub async fn visible_task(context: &Context, caller: &Caller, task_id: String) -> ApiResult<Task> {
    let caller = caller.clone();
    context
        .blocking(move |store| {
            let Some(task) = store.task(&task_id)? else { return Ok(None) };
            Ok(Access::new(store, &caller, today()?).task(&task)?.then_some(task))
        })
        .await?
        .ok_or(ApiError::NotFound { what: "task" })
}

/// The task with its team's names and certificates, if the caller may see the task.
pub async fn team(context: &Context, caller: &Caller, task_id: String) -> ApiResult<TaskTeam> {
    let task = visible_task(context, caller, task_id).await?;
    let team = task.team.clone();
    let members = context
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
    Ok(TaskTeam { task, members })
}
