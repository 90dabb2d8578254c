//! Inspection tasks: an entity, a matter, a team and a window. A supervisor creates one with a
//! team of at least two certified officers, none recused from the entity; each caller sees the
//! tasks [`Access`] lets them see, and a task they may not see is `not_found`. A task's team
//! travels to the device with the checklist of its matter ([`checklist_of`]).

use schemas::{TaskTeam, TeamMember};

use crate::service::access::{Access, today};
use crate::service::auth::Caller;
use crate::service::{ApiError, ApiResult, Context, now_ms};
use crate::store::{MatterList, StoreError, Task};

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
    check_team(context, &new.entity_id, &new.team, new.window_start_ms).await?;
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

/// Refuses a team for a task of `entity_id` starting at `window_start_ms` that the law would
/// not send: fewer than two certified officers (P1, P2), a recused officer (P4), an officer twice,
/// or an entity not in the registry.
async fn check_team(context: &Context, entity_id: &str, team: &[String], window_start_ms: i64) -> ApiResult<()> {
    let (entity, team_ids) = (entity_id.to_string(), team.to_vec());
    let (entity, certificates, recused) = context
        .blocking(move |store| {
            Ok((store.entity(&entity)?, store.certificates(Some(&team_ids))?, store.recused_officers(&entity)?))
        })
        .await?;
    if entity.is_none() {
        return Err(ApiError::unprocessable("unknown_entity", format!("no entity {entity_id} in the registry")));
    }
    sync_core::rules::check_team(team, &certificates, &recused, window_start_ms).map_err(|problem| {
        let code = match problem {
            sync_core::rules::TeamProblem::Recused { .. } => "officer_recused",
            sync_core::rules::TeamProblem::NotCertified { .. } => "officer_not_certified",
            sync_core::rules::TeamProblem::Duplicate { .. } => "duplicate_officer",
            sync_core::rules::TeamProblem::TooFewCertified { .. } => "team_too_small",
        };
        ApiError::unprocessable(code, problem.to_string())
    })
}

/// Every task with whether it is confidential today (a campaign's drawn task before its draw is
/// public) and whether it was drawn: for supervisors.
pub async fn supervised(context: &Context, caller: &Caller) -> ApiResult<Vec<SupervisedTask>> {
    caller.require(&["supervisor"])?;
    context
        .blocking(|store| {
            let today = today()?;
            let confidential = crate::service::campaigns::confidential_tasks(store, today)?;
            let mut drawn = std::collections::BTreeSet::new();
            for campaign in store.campaigns()? {
                drawn.extend(store.campaign_tasks(&campaign.campaign_id)?.into_iter().map(|t| t.task_id));
            }
            Ok(store
                .tasks(None)?
                .into_iter()
                .map(|task| SupervisedTask {
                    confidential: confidential.contains(&task.task_id),
                    drawn: drawn.contains(&task.task_id),
                    task,
                })
                .collect())
        })
        .await
}

/// A task as supervisors see it.
pub struct SupervisedTask {
    pub task: Task,
    /// A campaign's drawn task whose draw is not public yet: only its team and supervisors see it.
    pub confidential: bool,
    /// Drawn by a campaign: its team is the draw's and cannot be reassigned.
    pub drawn: bool,
}

/// Gives a task another team: for supervisors. The team is checked as a new task's is; a drawn
/// task's team is the draw's (`drawn_task`), and a task with a record keeps the team that
/// recorded it (`task_started`).
pub async fn reassign(context: &Context, caller: &Caller, task_id: String, team: Vec<String>) -> ApiResult<Task> {
    caller.require(&["supervisor"])?;
    let id = task_id.clone();
    let (task, drawn) = context.blocking(move |store| Ok((store.task(&id)?, store.campaign_task(&id)?))).await?;
    let task = task.ok_or(ApiError::NotFound { what: "task" })?;
    if drawn.is_some() {
        return Err(ApiError::Conflict {
            code: "drawn_task",
            message: "a drawn task's team is the draw's: it cannot be reassigned".into(),
        });
    }
    check_team(context, &task.entity_id, &team, task.window_start_ms).await?;
    let new_team = team.clone();
    let reassigned = context.blocking(move |store| store.reassign_task(&task_id, &new_team)).await?;
    if !reassigned {
        return Err(ApiError::Conflict {
            code: "task_started",
            message: "a record of this task exists: its team is the one that recorded it".into(),
        });
    }
    let mut team = team;
    team.sort();
    Ok(Task { team, ..task })
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
    let matter = task.matter.clone();
    let checklist = context.blocking(move |store| Ok(checklist_of(store.matters()?.as_ref(), &matter))).await?;
    Ok(TaskTeam { task, members, checklist })
}

/// The checklist item codes of a task's `matter` in the matter list: the matter whose code is the
/// task's matter, or its first word (a task's matter may be written `M01 排污许可证执行情况检查`).
/// `None` when no matter list was imported or the matter is not in it: the task then takes any
/// well-formed checklist code.
pub fn checklist_of(matters: Option<&MatterList>, matter: &str) -> Option<Vec<String>> {
    let code = matter.split_whitespace().next()?;
    matters?.matters.iter().find(|m| m.code == code).map(|m| m.checklist.clone())
}
