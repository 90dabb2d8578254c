//! The administrator's pages for the lists the bureau keeps: the entity registry's CSV import, the matter list, the working calendar.

use super::*;

// The entity registry.

#[derive(Template)]
#[template(path = "console/admin/entities.html")]
pub(super) struct EntitiesPage {
    pub(super) c: Chrome,
    pub(super) total: usize,
    pub(super) entities: Vec<Entity>,
    pub(super) pages: Pagination,
    pub(super) filter: String,
    pub(super) imported: Option<usize>,
    pub(super) csv: String,
    pub(super) problem: Option<String>,
    /// The bad lines of a refused import.
    pub(super) problems: Vec<CsvLine>,
}

/// One bad line of a refused CSV import, as the API reports it.
#[derive(Deserialize)]
pub(super) struct CsvLine {
    pub(super) line: usize,
    #[serde(default)]
    pub(super) column: Option<usize>,
    #[serde(default)]
    pub(super) field: Option<String>,
    pub(super) problem: String,
}

#[derive(Deserialize, Default)]
pub(super) struct EntitiesQuery {
    #[serde(default)]
    pub(super) page: Option<usize>,
    #[serde(default)]
    pub(super) q: Option<String>,
    #[serde(default)]
    pub(super) imported: Option<usize>,
}

pub(super) struct Import {
    pub(super) csv: String,
    pub(super) problem: Option<(StatusCode, String)>,
    pub(super) problems: Vec<CsvLine>,
}

pub(super) async fn entities_view(
    state: &AppState,
    console: Console,
    query: EntitiesQuery,
    import: Import,
) -> PageResult {
    console.require(ROLE)?;
    let filter = query.q.unwrap_or_default().trim().to_string();
    let mut all = admin::entities(state, &console.caller).await.map_err(|e| console.error(e))?;
    let total = all.len();
    if !filter.is_empty() {
        let lower = filter.to_lowercase();
        all.retain(|e| {
            e.entity_id.to_lowercase().contains(&lower)
                || e.name.contains(&filter)
                || e.credit_code.to_lowercase().contains(&lower)
        });
    }
    let pages = Pagination::new(query.page, all.len());
    let entities = pages.slice(&all).to_vec();
    let lang = console.chrome.lang;
    let page = EntitiesPage {
        c: console.chrome,
        total,
        entities,
        pages,
        filter,
        imported: query.imported,
        csv: import.csv,
        problem: text(&import.problem),
        problems: import.problems,
    };
    answer(&page, lang, &import.problem)
}

pub(super) async fn entities_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<EntitiesQuery>,
) -> PageResult {
    entities_view(&state, console, query, Import { csv: String::new(), problem: None, problems: Vec::new() }).await
}

#[derive(Deserialize)]
pub(super) struct CsvForm {
    pub(super) csv: String,
}

/// Imports the registry from pasted CSV, as `POST /v1/admin/entities` does: any bad line refuses
/// the whole file, and the page lists every bad line by line and column.
pub(super) async fn import_entities(
    State(state): State<AppState>,
    Posted { console, form }: Posted<CsvForm>,
) -> PageResult {
    console.require(ROLE)?;
    match admin::import_entities(&state, &console.caller, form.csv.as_bytes()).await {
        Ok(count) => see_other(&format!("/admin/entities?imported={count}")),
        Err(error) => {
            let Some(problem) = problem_of(&error) else { return Err(console.error(error)) };
            let problems = match &error {
                ApiError::Unprocessable { details: Some(details), .. } => {
                    serde_json::from_value(details["problems"].clone()).unwrap_or_default()
                }
                _ => Vec::new(),
            };
            let import = Import { csv: form.csv, problem: Some(problem), problems };
            entities_view(&state, console, EntitiesQuery::default(), import).await
        }
    }
}

// The matter list.

#[derive(Template)]
#[template(path = "console/admin/matters.html")]
pub(super) struct MattersPage {
    pub(super) c: Chrome,
    pub(super) note: String,
    pub(super) matters: Vec<Matter>,
    pub(super) imported: Option<usize>,
    pub(super) json: String,
    pub(super) problem: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct ImportedQuery {
    #[serde(default)]
    pub(super) imported: Option<usize>,
}

pub(super) async fn matters_view(
    state: &AppState,
    console: Console,
    imported: Option<usize>,
    json: String,
    problem: Option<(StatusCode, String)>,
) -> PageResult {
    console.require(ROLE)?;
    let (note, matters) = match registries::public_matters(state).await {
        Ok(list) => (list.note, list.matters),
        Err(ApiError::NotFound { .. }) => (String::new(), Vec::new()),
        Err(error) => return Err(console.error(error)),
    };
    let lang = console.chrome.lang;
    let page = MattersPage { c: console.chrome, note, matters, imported, json, problem: text(&problem) };
    answer(&page, lang, &problem)
}

pub(super) async fn matters_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ImportedQuery>,
) -> PageResult {
    matters_view(&state, console, query.imported, String::new(), None).await
}

#[derive(Deserialize)]
pub(super) struct MattersForm {
    pub(super) matters: String,
}

/// Replaces the matter list with the pasted `matters.json`, as `POST /v1/admin/matters` does.
pub(super) async fn import_matters(
    State(state): State<AppState>,
    Posted { console, form }: Posted<MattersForm>,
) -> PageResult {
    console.require(ROLE)?;
    // As the API reads its body: JSON, its integral numbers as integers.
    let matters =
        serde_json::from_str::<serde_json::Value>(&form.matters).map_err(|e| e.to_string()).map(|mut value| {
            crate::http::integral_numbers(&mut value);
            serde_json::to_vec(&value).unwrap_or_default()
        });
    match registries::import_matters(&state, &console.caller, matters).await {
        Ok(count) => see_other(&format!("/admin/matters?imported={count}")),
        Err(error) => match problem_of(&error) {
            Some(problem) => matters_view(&state, console, None, form.matters, Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}

// The working calendar.

#[derive(Template)]
#[template(path = "console/admin/calendar.html")]
pub(super) struct CalendarPage {
    pub(super) c: Chrome,
    pub(super) year: String,
    pub(super) calendar: Option<WorkingCalendar>,
    pub(super) json: String,
    pub(super) problem: Option<String>,
}

/// A year of the calendar as the API reads and writes it.
#[derive(serde::Serialize, Deserialize)]
pub(super) struct CalendarYear {
    pub(super) holidays: Vec<Date>,
    pub(super) working_weekends: Vec<Date>,
}

#[derive(Deserialize, Default)]
pub(super) struct YearQuery {
    #[serde(default)]
    pub(super) year: Option<String>,
}

pub(super) fn this_year() -> String {
    registries::today().map(|d| d.year().to_string()).unwrap_or_default()
}

pub(super) async fn calendar_view(
    state: &AppState,
    console: Console,
    year: String,
    json: Option<String>,
    problem: Option<(StatusCode, String)>,
) -> PageResult {
    console.require(ROLE)?;
    // A year that is not one: this year's page, with the problem.
    let (year, problem) = match year.parse::<i16>() {
        Ok(y) if (1..=9999).contains(&y) => (year, problem),
        _ => {
            let refused = ApiError::bad_request("invalid_year", format!("{year:?} is not a year"));
            (this_year(), problem.or_else(|| problem_of(&refused)))
        }
    };
    let calendar = match registries::calendar_year(state, &console.caller, &year).await {
        Ok(calendar) => Some(calendar),
        Err(ApiError::NotFound { .. }) => None,
        Err(error) => return Err(console.error(error)),
    };
    let json = json.unwrap_or_else(|| {
        let shown =
            calendar.as_ref().map_or(CalendarYear { holidays: Vec::new(), working_weekends: Vec::new() }, |c| {
                CalendarYear {
                    holidays: c.holidays.iter().copied().collect(),
                    working_weekends: c.working_weekends.iter().copied().collect(),
                }
            });
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    });
    let lang = console.chrome.lang;
    let page = CalendarPage { c: console.chrome, year, calendar, json, problem: text(&problem) };
    answer(&page, lang, &problem)
}

pub(super) async fn calendar_page(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<YearQuery>,
) -> PageResult {
    let year = query.year.map(|y| y.trim().to_string()).filter(|y| !y.is_empty()).unwrap_or_else(this_year);
    calendar_view(&state, console, year, None, None).await
}

#[derive(Deserialize)]
pub(super) struct CalendarForm {
    pub(super) year: String,
    pub(super) calendar: String,
}

/// Replaces a year of the calendar with the pasted JSON (`{"holidays": [...],
/// "working_weekends": [...]}`), as `PUT /v1/admin/calendar/{year}` does.
pub(super) async fn put_calendar(
    State(state): State<AppState>,
    Posted { console, form }: Posted<CalendarForm>,
) -> PageResult {
    console.require(ROLE)?;
    let year = form.year.trim().to_string();
    let put = match serde_json::from_str::<CalendarYear>(&form.calendar) {
        Ok(shown) => {
            let calendar = WorkingCalendar {
                holidays: shown.holidays.into_iter().collect(),
                working_weekends: shown.working_weekends.into_iter().collect(),
            };
            registries::put_calendar_year(&state, &console.caller, &year, calendar).await
        }
        Err(e) => Err(ApiError::unprocessable("invalid_calendar", format!("not a calendar year: {e}"))),
    };
    match put {
        Ok(_) => see_other(&format!("/admin/calendar?year={}", urlencoding(&year))),
        Err(error) => match problem_of(&error) {
            Some(problem) => calendar_view(&state, console, year, Some(form.calendar), Some(problem)).await,
            None => Err(console.error(error)),
        },
    }
}
