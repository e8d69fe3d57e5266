//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations
//! as [`crate::router`] registers them.

use railyard_shared::{ErrorBody, ErrorCode, ErrorDetail};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Railyard API",
        description = "Self-hosted platform-as-a-service. Every error is the envelope \
                       `{\"error\":{\"code\",\"message\",\"request_id\"}}`.",
    ),
    components(schemas(ErrorBody, ErrorDetail, ErrorCode)),
    tags(
        (name = "system", description = "Health and metadata"),
        (name = "auth", description = "Sign-up, sign-in, sessions, CSRF, signing keys"),
        (name = "account", description = "The signed-in user"),
        (name = "workspaces", description = "Workspaces and their members"),
        (name = "projects", description = "Projects, environments and services"),
        (name = "deployments", description = "Builds and releases of a service, their logs, rollbacks"),
        (name = "variables", description = "Variables and secrets: per service and environment, shared, sealed"),
        (name = "github", description = "GitHub: the connection, repositories, webhooks and their deliveries, previews"),
        (name = "databases", description = "Apps' PostgreSQL databases: state, tables, credentials, backups and restores"),
    ),
)]
pub struct ApiDoc;
