//! The OpenAPI 3.1 description of the HTTP API, served on `GET /openapi.json`.
//!
//! utoipa builds it from the `#[utoipa::path]` attribute of every handler and the `ToSchema`
//! types of the server. The types of the `schemas` crate derive `schemars::JsonSchema`, not
//! `ToSchema`: handlers name them through stand-ins ([`ErrorBodySchema`], [`SyncRequestSchema`],
//! ...), and [`document`] replaces each stand-in with the schema schemars generates for the type
//! (`schemas::json_schemas()`, the same schemas as the files in `schemas/json/`), so the
//! description and those files cannot disagree. OpenAPI 3.1 schemas are JSON Schema 2020-12,
//! which is what schemars writes: only the `$ref`s move from `#/$defs/` to `#/components/schemas/`.
//!
//! Every error response names the stable `code`s it can carry; the constants below are the
//! descriptions many operations share.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, Response, ResponseBuilder, Schema};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::http::routes;

/// The name of the bearer-token security scheme that protected operations require
/// (`security(("bearer" = []))`: utoipa takes only a literal there).
pub const BEARER: &str = "bearer";

/// A 401 answer of every operation that takes the caller's access token.
/// The 404 answer of the operations on one record.
pub const RECORD_404: &str = "`not_found`: no such record, or the caller may not read it (an officer \
    who is neither a supervisor, a reviewer nor on the team of the record's task).";

pub const CALLER_401: &str = "Not authenticated. \
    `missing_token`: no `Authorization: Bearer` header. \
    `invalid_token`: the token is malformed, signed with an unknown key or another algorithm, \
    from another issuer or for another audience, or its account no longer exists, \
    or its device belongs to another officer. \
    `token_expired`: the access token has expired; refresh it. \
    `device_revoked`: the token's device has been revoked or is not enrolled. \
    `session_revoked`: the token's session has ended (logout, password change, reused refresh token, \
    device revoked); log in again.";

/// An identifier: 1 to 64 of `A-Z a-z 0-9 . _ -`.
#[derive(utoipa::ToSchema)]
#[schema(as = Identifier, pattern = "^[A-Za-z0-9._-]{1,64}$")]
#[allow(dead_code)]
pub struct IdentifierSchema(String);

/// A role an account may hold, as the API names it.
#[derive(utoipa::ToSchema)]
#[schema(as = Role)]
#[allow(dead_code)]
pub enum RoleSchema {
    #[schema(rename = "officer")]
    Officer,
    #[schema(rename = "supervisor")]
    Supervisor,
    #[schema(rename = "reviewer")]
    Reviewer,
    #[schema(rename = "admin")]
    Admin,
}

/// [`CALLER_401`] followed by the 401 codes of the operation itself.
pub fn caller_401(more: &str) -> String {
    format!("{CALLER_401} {more}")
}

/// The 422 answer of an operation that reads the JSON body `shape`, followed by the 422 codes
/// of the operation itself.
pub fn invalid_body_422(shape: &str, more: &str) -> String {
    let invalid = format!("`invalid_body`: the JSON does not match `{shape}` (`details.error` says how).");
    if more.is_empty() { invalid } else { format!("{invalid} {more}") }
}

/// The 400 answer of an operation that reads a device's body in CBOR or JSON, refused with
/// `code` when it is not `what`.
pub fn device_body_400(code: &str, what: &str) -> String {
    format!(
        "`{code}`: the body is not {what} in its content type (`details.error` says why). \
         `unreadable_body`: the body could not be read. \
         `invalid_content_encoding`: the body's `Content-Encoding` (zstd or gzip) does not decode."
    )
}

/// A 400 answer of every operation that reads a JSON body.
pub const JSON_400: &str = "`malformed_json`: the body is not valid JSON (`details.error` says where). \
    `unreadable_body`: the body could not be read.";

/// A 304 answer of the task reads, which answer with an `ETag` (`http::wire::validators`).
pub const NOT_MODIFIED_304: &str = "Not modified: `If-None-Match` named this answer's `ETag`; no body.";

/// A 413 answer of every operation that reads its body through `ApiJson` or `ApiBytes`.
pub const BODY_413: &str = "`body_too_large`: the body is larger than this operation accepts \
    (`details.limit`, in bytes: 4 KiB for login, refresh, logout, password and device enrollment, \
    `Config::max_body_bytes` (16 MiB) for sync, log uploads, upload chunks and imports, 256 KiB for the \
    other forms); a declared `Content-Length` past it is refused before the body is read.";

/// A 415 answer of every operation that reads a JSON body.
pub const JSON_415: &str = "`unsupported_content_type`: the body is not sent as `application/json`.";

/// A 500 answer: any operation may fail this way.
pub const INTERNAL_500: &str = "`internal`: an unexpected failure (logged with the request id, never detailed here).";

/// A 503 answer of every operation that writes to the store.
pub const UNAVAILABLE_503: &str = "`unavailable`: the server is shutting down and its store takes no more writes.";

/// A 507 answer of every operation that writes to the store.
pub const STORAGE_FULL_507: &str = "`storage_full`: the disk is full; nothing was written.";

// The service's answers, as the document describes them: the service knows nothing of OpenAPI,
// so each answer it returns as it is has a stand-in here with the same fields, documentation and
// name. They are kept in step by hand: a field added to one goes into the other.

/// A draw as anyone may check it: exactly what `fieldsync verify-draw` reads.
#[derive(utoipa::ToSchema)]
#[schema(as = PublishedDraw)]
#[allow(dead_code)]
pub struct PublishedDrawSchema {
    /// `sync_core::draw::DrawInputs`, the seed revealed.
    #[schema(value_type = Object)]
    pub inputs: sync_core::draw::DrawInputs,
    /// `sync_core::draw::Draw`.
    #[schema(value_type = Object)]
    pub draw: sync_core::draw::Draw,
    /// SHA-256 of the server's seed, hex, published when the campaign was created.
    pub commitment: String,
    /// When the commitment was published, Unix milliseconds.
    pub committed_at_ms: i64,
    /// When the draw was made and the seed revealed, Unix milliseconds.
    pub drawn_at_ms: i64,
}

/// A task's published result, as the public sees it.
#[derive(utoipa::ToSchema)]
#[schema(as = PublicResult)]
#[allow(dead_code)]
pub struct PublicResultSchema {
    pub task_id: String,
    pub entity_id: String,
    /// The locked inspection record the result is taken from.
    pub record_id: String,
    /// The day the inspection ended, in the bureau's time zone.
    #[schema(value_type = String, format = Date)]
    pub inspected_on: sync_core::calendar::Date,
    /// The record's conclusion.
    pub conclusion: Option<String>,
    /// The day the result became public.
    #[schema(value_type = String, format = Date)]
    pub public_on: sync_core::calendar::Date,
    pub published_at_ms: i64,
}

/// A campaign as the public sees it: what was published at creation, and once its results are
/// all public or its period has ended, the draw with its revealed inputs.
#[derive(utoipa::ToSchema)]
#[schema(as = PublicCampaign)]
#[allow(dead_code)]
pub struct PublicCampaignSchema {
    pub campaign_id: String,
    #[serde(flatten)]
    pub spec: crate::store::CampaignSpec,
    /// Published at creation, before the draw.
    pub commitment: crate::store::CampaignCommitment,
    /// When the draw was made, if it was.
    pub drawn_at_ms: Option<i64>,
    /// The draw with its inputs (the seed revealed), once public.
    pub draw: Option<PublishedDrawSchema>,
    /// The day the draw became public.
    #[schema(value_type = Option<String>, format = Date)]
    pub draw_public_on: Option<sync_core::calendar::Date>,
    /// The published results of inspected tasks, in the draw's order.
    pub results: Vec<PublicResultSchema>,
}

/// An inspected task whose result was not public within the deadline.
#[derive(utoipa::ToSchema)]
#[schema(as = OverdueResult)]
#[allow(dead_code)]
pub struct OverdueResultSchema {
    pub campaign_id: String,
    pub task_id: String,
    pub entity_id: String,
    pub record_id: String,
    #[schema(value_type = String, format = Date)]
    pub ended_on: sync_core::calendar::Date,
    /// The last day the result could be published in time.
    #[schema(value_type = String, format = Date)]
    pub deadline: sync_core::calendar::Date,
    /// `overdue` (not published yet) or `late` (published after the deadline).
    pub state: String,
    /// Working days past the deadline: until today, or until publication.
    pub working_days_late: u32,
    #[schema(value_type = Option<String>, format = Date)]
    pub published_on: Option<sync_core::calendar::Date>,
}

/// What a photo's EXIF claims. The device that took the photo wrote it, and anyone may have
/// edited it since: nothing checks it, and nothing should rely on it without saying so.
#[derive(utoipa::ToSchema)]
#[schema(as = ClaimedMetadata)]
#[allow(dead_code)]
pub struct ClaimedMetadataSchema {
    /// When the photo was taken, in the device's local time (ISO 8601 without an offset, for
    /// example `2026-05-04T10:20:30`), from `DateTimeOriginal`, or else `DateTime`.
    pub taken_at: Option<String>,
    /// The offset of that local time from UTC (`+08:00`), from `OffsetTimeOriginal`, or else
    /// `OffsetTime`.
    pub offset: Option<String>,
    /// Decimal degrees, north positive, from `GPSLatitude` and `GPSLatitudeRef`.
    pub latitude: Option<f64>,
    /// Decimal degrees, east positive, from `GPSLongitude` and `GPSLongitudeRef`.
    pub longitude: Option<f64>,
    /// The camera's maker (`Make`).
    pub make: Option<String>,
    /// The camera's model (`Model`).
    pub model: Option<String>,
    /// Why the EXIF could not be read whole; absent when the file has none or it read well.
    pub exif_error: Option<String>,
}

/// A stored record whose document does not load.
#[derive(utoipa::ToSchema)]
#[schema(as = RecordProblem)]
#[allow(dead_code)]
pub struct RecordProblemSchema {
    pub record_id: String,
    pub problem: String,
}

/// A stored blob whose file is not what its row says.
#[derive(utoipa::ToSchema)]
#[schema(as = BlobProblem)]
#[allow(dead_code)]
pub struct BlobProblemSchema {
    pub sha256: String,
    /// `missing`, `wrong_size` or `wrong_hash`, and what was found.
    pub problem: String,
}

/// What `check` found: the database, every blob's file, and the transparency log.
#[derive(utoipa::ToSchema)]
#[schema(as = CheckReport)]
#[allow(dead_code)]
pub struct CheckReportSchema {
    /// True when nothing below reports a problem.
    pub ok: bool,
    /// What SQLite's integrity check reports.
    pub database: Vec<String>,
    pub blobs_checked: usize,
    pub blobs: Vec<BlobProblemSchema>,
    pub records_checked: usize,
    /// Stored records whose document does not load from its bytes, with Automerge's reason.
    pub records: Vec<RecordProblemSchema>,
    /// Leaves, subtrees and checkpoints of the transparency log that do not hold.
    pub transparency_log: Vec<String>,
    /// P3: certificates whose officer's merged work falls after their suspension, revocation or
    /// surrender (entered with a past time), with the records it reaches. A finding for a
    /// reviewer, not a fault: it leaves `ok` as it is.
    pub work_while_suspended: Vec<crate::http::routes::certificates::CertificateAffectedEntry>,
}

/// An error answer described by `description`, with an [`ErrorBodySchema`] body: what
/// `(status = .., description = .., body = ErrorBodySchema)` makes in a `responses(...)` list.
fn error_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
        .build()
        .into()
}

/// Declares a set of error answers that many operations share, for their `responses(...)` list
/// (`responses((status = 200, ...), CallerErrors, WriteErrors)`): each status with its
/// description, and the sets it includes. An operation whose answer to one of these statuses
/// says more writes that row itself and does not list the set.
macro_rules! error_set {
    ($(#[$doc:meta])* $set:ident { $($status:literal => $description:expr),* $(,)? } $(+ $($inner:ident),+)?) => {
        $(#[$doc])*
        pub struct $set;

        impl IntoResponses for $set {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                #[allow(unused_mut)]
                let mut responses = BTreeMap::new();
                $($(responses.append(&mut $inner::responses());)+)?
                $(responses.insert($status.to_string(), error_response($description));)*
                responses
            }
        }
    };
}

error_set!(
    /// 401: the caller's access token is missing or refused.
    Unauthenticated { "401" => CALLER_401 }
);
error_set!(
    /// 500: an unexpected failure.
    InternalError { "500" => INTERNAL_500 }
);
error_set!(
    /// 401 and 500: every operation that takes the caller's access token.
    CallerErrors {} + Unauthenticated, InternalError
);
error_set!(
    /// 503: the store takes no more writes.
    Unavailable { "503" => UNAVAILABLE_503 }
);
error_set!(
    /// 507: the disk is full.
    StorageFull { "507" => STORAGE_FULL_507 }
);
error_set!(
    /// 503 and 507: every operation that writes to the store.
    WriteErrors {} + Unavailable, StorageFull
);
error_set!(
    /// 400: the body is not JSON.
    MalformedJson { "400" => JSON_400 }
);
error_set!(
    /// 413: the body is larger than the operation takes.
    BodyTooLarge { "413" => BODY_413 }
);
error_set!(
    /// 415: the body is not sent as JSON.
    NotJson { "415" => JSON_415 }
);
error_set!(
    /// 400, 413 and 415: every operation that reads a JSON body.
    JsonBodyErrors {} + MalformedJson, BodyTooLarge, NotJson
);
error_set!(
    /// 404: the operations on one record.
    RecordNotFound { "404" => RECORD_404 }
);
error_set!(
    /// 403: only admins.
    AdminOnly { "403" => "`role_required`: the caller is not an `admin`." }
);
error_set!(
    /// 403: only admins and supervisors.
    AdminOrSupervisor { "403" => "`role_required`: the caller is neither an `admin` nor a `supervisor`." }
);
error_set!(
    /// 403: only supervisors.
    SupervisorOnly { "403" => "`role_required`: the caller is not a `supervisor`." }
);
error_set!(
    /// 403: only officers.
    OfficerOnly { "403" => "`role_required`: the caller is not an `officer`." }
);
error_set!(
    /// 403: the operations only a device may call.
    DeviceOnly { "403" => "`device_required`: the access token was not issued to an enrolled device." }
);
error_set!(
    /// 404: the operations on one upload.
    UploadNotFound { "404" => "`not_found`: no such upload, or it belongs to another device (or was discarded \
        after a hash mismatch)." }
);
error_set!(
    /// 404: the operations on one officer.
    OfficerNotFound { "404" => "`not_found`: no such officer." }
);
error_set!(
    /// 404: the operations on one certificate.
    CertificateNotFound { "404" => "`not_found`: no such certificate." }
);
error_set!(
    /// 404: the operations on one campaign.
    CampaignNotFound { "404" => "`not_found`: no such campaign." }
);
error_set!(
    /// 404: the operations on one task.
    TaskNotFound { "404" => "`not_found`: no such task, or the caller is an officer not on its team." }
);
error_set!(
    /// 500: the operations that read a stored record's document.
    UnreadableRecord { "500" => "`internal`: an unexpected failure, or the stored document does not load or read." }
);
error_set!(
    /// 400: the pages of the public listing.
    InvalidPublicPage { "400" => "`invalid_query`: `limit` is not a number from 1 to `Config::max_public_page`." }
);
error_set!(
    /// 415: the devices' bodies, in CBOR or JSON.
    NotCborOrJson { "415" => "`unsupported_content_type`: the body is neither `application/cbor` nor `application/json`. \
    `unsupported_content_encoding`: the body's `Content-Encoding` is none of `zstd`, `gzip`, `identity` (the \
    answer's `Accept-Encoding` names those taken)." }
);
error_set!(
    /// 400: a query string of the record listings that does not parse.
    InvalidRecordQuery { "400" => "`invalid_query`: the query string does not parse (a `limit` that is not a number \
    from 1 to 1000, a parameter given twice)." }
);
error_set!(
    /// 400: a query string of the transparency log's proofs that does not parse.
    InvalidProofQuery { "400" => "`invalid_query`: the query string does not parse (a required parameter missing, a \
    size or index that is not a non-negative integer)." }
);

/// The extension that marks a stand-in schema, valued with the Rust type it stands for.
const STAND_IN: &str = "x-fieldsync-stand-in";

/// Declares a stand-in for a type of the `schemas` crate, named like the schema schemars
/// generates for it (its `title`).
macro_rules! stand_in {
    ($(#[$doc:meta])* $stand_in:ident => $name:literal, $rust:literal) => {
        $(#[$doc])*
        pub struct $stand_in;

        impl utoipa::PartialSchema for $stand_in {
            fn schema() -> RefOr<Schema> {
                stand_in_schema($rust)
            }
        }

        impl utoipa::ToSchema for $stand_in {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

stand_in!(
    /// [`schemas::ErrorBody`], the body of every error answer (`schemas/json/error_body.json`).
    ErrorBodySchema => "ErrorBody", "schemas::ErrorBody"
);
stand_in!(
    /// [`schemas::SyncRequest`] (`schemas/json/sync_request.json`).
    SyncRequestSchema => "SyncRequest", "schemas::SyncRequest"
);
stand_in!(
    /// [`schemas::SyncResponse`] (`schemas/json/sync_response.json`).
    SyncResponseSchema => "SyncResponse", "schemas::SyncResponse"
);
stand_in!(
    /// [`schemas::InspectionRecord`] (`schemas/json/inspection_record.json`).
    InspectionRecordSchema => "InspectionRecord", "schemas::InspectionRecord"
);
stand_in!(
    /// [`schemas::Certificate`] (`schemas/json/certificate.json`).
    CertificateSchema => "Certificate", "schemas::Certificate"
);
stand_in!(
    /// [`schemas::Task`] (`schemas/json/task.json`).
    TaskSchema => "Task", "schemas::Task"
);
stand_in!(
    /// [`schemas::TaskTeam`] (`schemas/json/task_team.json`).
    TaskTeamSchema => "TaskTeam", "schemas::TaskTeam"
);
stand_in!(
    /// [`schemas::CertificateStatus`] (a definition inside `schemas/json/certificate.json`).
    CertificateStatusSchema => "CertificateStatus", "schemas::CertificateStatus"
);
stand_in!(
    /// [`schemas::RejectionReason`] (a definition inside `schemas/json/change_rejection.json`).
    RejectionReasonSchema => "RejectionReason", "schemas::RejectionReason"
);
stand_in!(
    /// [`schemas::log::LogUpload`] (`schemas/json/log_upload.json`).
    LogUploadSchema => "LogUpload", "schemas::log::LogUpload"
);
stand_in!(
    /// [`schemas::log::LogUploadResponse`] (`schemas/json/log_upload_response.json`).
    LogUploadResponseSchema => "LogUploadResponse", "schemas::log::LogUploadResponse"
);
stand_in!(
    /// [`schemas::log::InclusionProof`] (`schemas/json/inclusion_proof.json`).
    InclusionProofSchema => "InclusionProof", "schemas::log::InclusionProof"
);
stand_in!(
    /// [`schemas::log::ConsistencyProof`] (`schemas/json/consistency_proof.json`).
    ConsistencyProofSchema => "ConsistencyProof", "schemas::log::ConsistencyProof"
);
stand_in!(
    /// [`schemas::log::RecordLog`] (`schemas/json/record_log.json`).
    RecordLogSchema => "RecordLog", "schemas::log::RecordLog"
);

stand_in!(
    /// [`schemas::log::RecordLogEntry`] (a definition inside `schemas/json/record_log.json`).
    RecordLogEntrySchema => "RecordLogEntry", "schemas::log::RecordLogEntry"
);

fn stand_in_schema(rust: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .description(Some(format!("Stands for `{rust}`; replaced by its schemars-generated JSON Schema.")))
        .extensions(Some(Extensions::builder().add(STAND_IN, rust).build()))
        .build()
        .into()
}

#[derive(OpenApi)]
#[openapi(
    info(description = "The bureau's fieldsync server: identity, devices, the admin registry, \
        inspection tasks, records, the validated sync exchange, the records' photos as \
        content-addressed blobs, and the enforcement log with the transparency log over it.\n\n\
        Every failure answers with a status and an `ErrorBody` whose `code` is stable; each \
        operation lists the codes it can answer with. Requests to an unknown path answer 404 \
        with the code `not_found`; a known path with another method answers 405 with the code \
        `method_not_allowed`. An account still on its one-time password gets 403 \
        `password_change_required` everywhere but `POST /v1/auth/password`. A path that is not UTF-8 once percent-decoded answers 400 `invalid_path`. \
        The `Authorization` scheme's name is case-insensitive (`bearer` is `Bearer`).\n\n\
        Every operation that takes a body may also answer 408 `body_timeout` (the whole body did not \
        arrive within `Config::body_read_timeout`, two minutes by default) or 503 `server_busy` with \
        `Retry-After` (the request bodies held in memory reached `Config::max_body_memory_bytes`); \
        either closes the connection. Bodies are limited by route: 4 KiB for login, refresh, logout, \
        password and device enrollment, 16 MiB for sync, log uploads, upload chunks and the registry, \
        matter and calendar imports, 256 KiB for every other form (413 `body_too_large`, \
        `details.limit`).\n\n\
        The schemas of the `schemas` crate's types are its schemars-generated JSON Schemas \
        (`schemas/json/`), embedded unchanged but for their `$ref`s."),
    paths(
        routes::ops::healthz,
        routes::ops::readyz,
        routes::ops::metrics,
        routes::ops::openapi_json,
        routes::auth::login,
        routes::auth::login_challenge,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::change_password,
        routes::devices::challenge,
        routes::devices::enroll,
        routes::devices::list,
        routes::devices::revoke,
        routes::admin::create_officer,
        routes::admin::check,
        routes::admin::backup,
        routes::admin::list_officers,
        routes::admin::grant_role,
        routes::admin::revoke_role,
        routes::admin::issue_certificate,
        routes::admin::list_certificates,
        routes::admin::renew_certificate,
        routes::admin::change_certificate_status,
        routes::certificates::surrender,
        routes::certificates::review,
        routes::certificates::review_due,
        routes::certificates::affected,
        routes::admin::import_entities,
        routes::admin::add_recusal,
        routes::tasks::create,
        routes::tasks::list,
        routes::tasks::one,
        routes::tasks::team,
        routes::records::list,
        routes::records::one,
        routes::records::history,
        routes::records::quarantine,
        routes::review::held,
        routes::review::decide,
        routes::recusals::recused_teams,
        routes::sync::sync,
        routes::blobs::create_upload,
        routes::blobs::upload_state,
        routes::blobs::upload_offset,
        routes::blobs::append_upload,
        routes::blobs::finish_upload,
        routes::blobs::blob,
        routes::blobs::metadata,
        routes::blobs::thumbnail,
        routes::blobs::missing_blobs,
        routes::enforcement_log::upload,
        routes::transparency::checkpoint,
        routes::transparency::key,
        routes::transparency::inclusion,
        routes::transparency::consistency,
        routes::enforcement_log::record_log,
        routes::transparency::evidence,
        routes::campaigns::public_matters,
        routes::campaigns::import_matters,
        routes::campaigns::entity_history,
        routes::campaigns::calendar_year,
        routes::campaigns::put_calendar_year,
        routes::campaigns::inspectors,
        routes::campaigns::create,
        routes::campaigns::list,
        routes::campaigns::one,
        routes::campaigns::draw,
        routes::campaigns::publish,
        routes::campaigns::overdue,
        routes::campaigns::public_list,
        routes::campaigns::public_one,
    ),
    components(schemas(ErrorBodySchema, RoleSchema, IdentifierSchema)),
    modifiers(&BearerScheme),
    tags(
        (name = "ops", description = "Liveness, readiness, metrics and this description."),
        (name = "auth", description = "Login, refresh, logout and password change."),
        (name = "devices", description = "Device enrollment by signed challenge, and revocation."),
        (name = "admin", description = "Officers, roles, certificates, the entity registry and recusals."),
        (name = "tasks", description = "Inspection tasks: the entity, the team and the window."),
        (name = "records", description = "The merged records, their history and the quarantine of refused changes."),
        (name = "sync", description = "The batched, validated Automerge sync exchange."),
        (name = "blobs", description = "Photos and other media as content-addressed blobs, uploaded in resumable chunks."),
        (name = "log", description = "Devices' enforcement-log chains and the transparency log: signed checkpoints, \
            inclusion and consistency proofs, and each record's log with its proven time intervals."),
        (name = "campaigns", description = "Random inspection (双随机、一公开): the matter list, the registries' \
            history, the inspector registry, campaigns with a commit–reveal draw, the publication of results, the \
            public listing, the bureau's working-day calendar and the report of results not public in time."),
    )
)]
struct ApiDoc;

/// Adds the bearer-token security scheme the protected operations name.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `/v1/auth/login`, `/v1/auth/refresh` or `/v1/devices` \
                         (HS256, 10 minutes). The sync and upload endpoints need a token issued to a device.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, built once.
pub fn document() -> Result<&'static Value, String> {
    static DOCUMENT: LazyLock<Result<Value, String>> = LazyLock::new(build);
    DOCUMENT.as_ref().map_err(Clone::clone)
}

/// utoipa's document with the stand-ins replaced by the schemars schemas, checked so that no
/// stand-in is left, every `$ref` resolves, every security requirement names a scheme and no two
/// operations share an id.
fn build() -> Result<Value, String> {
    let mut document = serde_json::to_value(ApiDoc::openapi()).map_err(|e| e.to_string())?;
    let components = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
        .ok_or("the document has no components.schemas")?;
    for (file, schema) in schemas::json_schemas() {
        let Value::Object(mut schema) = schema else { return Err(format!("{file} is not an object")) };
        schema.remove("$schema");
        let definitions = match schema.remove("$defs") {
            Some(Value::Object(definitions)) => definitions,
            Some(_) => return Err(format!("the $defs of {file} are not an object")),
            None => Map::new(),
        };
        let name = schema.get("title").and_then(Value::as_str).ok_or(format!("{file} has no title"))?.to_string();
        for (name, mut schema) in definitions.into_iter().chain([(name, Value::Object(schema))]) {
            move_refs(&mut schema);
            embed(components, name, schema)?;
        }
    }
    if let Some((name, _)) = components.iter().find(|(_, schema)| schema.get(STAND_IN).is_some()) {
        return Err(format!("no schemars schema replaced the stand-in {name}"));
    }
    let mut unresolved = Vec::new();
    unresolved_refs(&document, &document, &mut unresolved);
    if !unresolved.is_empty() {
        return Err(format!("unresolved references: {unresolved:?}"));
    }
    let schemes = document.pointer("/components/securitySchemes").and_then(Value::as_object);
    let operations = document["paths"].as_object().into_iter().flat_map(|paths| paths.values());
    let mut ids = std::collections::HashSet::new();
    for operation in operations.filter_map(Value::as_object).flat_map(|item| item.values()) {
        if let Some(id) = operation["operationId"].as_str()
            && !ids.insert(id)
        {
            return Err(format!("two operations have the id {id}"));
        }
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().into_iter().flat_map(|r| r.keys()) {
                if schemes.is_none_or(|schemes| !schemes.contains_key(scheme)) {
                    return Err(format!("no security scheme {scheme}"));
                }
            }
        }
    }
    Ok(document)
}

/// Adds one schemars schema under `name`. It replaces a stand-in; a definition that several
/// schemas share is added once (the top-level copy also carries a `title`); any other schema
/// of that name is a clash.
fn embed(components: &mut Map<String, Value>, name: String, schema: Value) -> Result<(), String> {
    let without_title = |schema: &Value| {
        let mut schema = schema.clone();
        if let Some(object) = schema.as_object_mut() {
            object.remove("title");
        }
        schema
    };
    let keep_existing = match components.get(&name) {
        None => false,
        Some(existing) if existing.get(STAND_IN).is_some() => false,
        // The same definition again: keep the copy with a title.
        Some(existing) if without_title(existing) == without_title(&schema) => existing.get("title").is_some(),
        Some(_) => return Err(format!("two different schemas are named {name}")),
    };
    if !keep_existing {
        components.insert(name, schema);
    }
    Ok(())
}

/// Rewrites schemars' `#/$defs/Name` references to `#/components/schemas/Name`.
fn move_refs(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                match value {
                    Value::String(target) if key == "$ref" => {
                        if let Some(name) = target.strip_prefix("#/$defs/") {
                            *target = format!("#/components/schemas/{name}");
                        }
                    }
                    other => move_refs(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(move_refs),
        _ => {}
    }
}

/// Collects every `$ref` of `value` that does not point into `document`.
fn unresolved_refs(document: &Value, value: &Value, unresolved: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                match value {
                    Value::String(target) if key == "$ref" => {
                        let found = target.strip_prefix('#').and_then(|pointer| document.pointer(pointer));
                        if found.is_none() {
                            unresolved.push(target.clone());
                        }
                    }
                    other => unresolved_refs(document, other, unresolved),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| unresolved_refs(document, item, unresolved)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_builds_and_embeds_every_schemars_schema() {
        let document = document().expect("the document builds");
        let components = document["components"]["schemas"].as_object().unwrap();
        for (file, schema) in schemas::json_schemas() {
            let name = schema["title"].as_str().unwrap();
            assert_eq!(components[name]["title"], name, "{file}");
        }
    }

    #[test]
    fn a_clash_of_names_is_refused() {
        let mut components = Map::new();
        embed(&mut components, "Recusal".into(), serde_json::json!({ "type": "object" })).unwrap();
        embed(&mut components, "Recusal".into(), serde_json::json!({ "type": "object", "title": "Recusal" })).unwrap();
        assert_eq!(components["Recusal"]["title"], "Recusal");
        assert!(embed(&mut components, "Recusal".into(), serde_json::json!({ "type": "string" })).is_err());
    }

    #[test]
    fn a_dangling_reference_is_found() {
        let document = serde_json::json!({
            "components": { "schemas": { "A": { "$ref": "#/components/schemas/B" } } },
        });
        let mut unresolved = Vec::new();
        unresolved_refs(&document, &document, &mut unresolved);
        assert_eq!(unresolved, ["#/components/schemas/B"]);
    }
}
