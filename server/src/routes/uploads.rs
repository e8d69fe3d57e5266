//! Source uploads (`railyard up`): a tarball in the request body becomes a deployment.

use axum::{
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode, header},
};
use futures_util::StreamExt as _;
use railyard_shared::{ErrorCode, auth::Role, deployments::DeploymentResponse};
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

use super::{
    request_deployment,
    scope::{authorize_service, environment_of, require_storage},
};
use crate::{
    app::AppState,
    auth::{Caller, RequestMeta},
    error::{AppError, AppResult},
    extract::{Path, Query},
    layout::Layout,
    models::deployment::NewDeployment,
    uploads::{self, Limits, UnpackError},
};

const ACCEPTED: &[&str] = &[
    "application/gzip",
    "application/x-gzip",
    "application/x-tar",
    "application/octet-stream",
];

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct UploadParams {
    /// Environment id (default: `production`).
    pub environment: Option<Uuid>,
}

/// Deploy uploaded source: the body is a tarball (gzip-compressed or plain) of the code.
#[utoipa::path(
    post,
    path = "/api/v1/services/{id}/uploads",
    tag = "deployments",
    params(("id" = Uuid, Path, description = "Service id"), UploadParams),
    request_body(content = Vec<u8>, content_type = "application/gzip", description = "A .tar.gz (or .tar) of the source"),
    responses(
        (status = 201, description = "Uploaded and queued", body = DeploymentResponse),
        (status = 403, description = "Viewers cannot deploy", body = railyard_shared::ErrorBody),
        (status = 404, description = "No such service or environment of yours", body = railyard_shared::ErrorBody),
        (status = 413, description = "Larger than RAILYARD_UPLOAD_LIMIT_BYTES", body = railyard_shared::ErrorBody),
        (status = 415, description = "Not a tarball content type", body = railyard_shared::ErrorBody),
        (status = 422, description = "Not a tarball, or an entry that is refused (named)", body = railyard_shared::ErrorBody),
    ),
)]
pub async fn create_upload(
    State(state): State<AppState>,
    caller: Caller,
    meta: RequestMeta,
    Path(id): Path<Uuid>,
    Query(params): Query<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<(StatusCode, axum::Json<DeploymentResponse>)> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    if let Some(content_type) = &content_type
        && !ACCEPTED.contains(&content_type.as_str())
    {
        return Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "send the source as application/gzip (a .tar.gz) or application/x-tar",
        ));
    }
    let (service, workspace, environment, room) = {
        let mut conn = state.db.get().await?;
        let (service, workspace) = authorize_service(&mut conn, &caller, id, Role::Member).await?;
        let environment = environment_of(&mut conn, service.project_id.uuid(), params.environment).await?;
        let room = require_storage(&mut conn, &state.config, workspace).await?;
        (service, workspace, environment, room)
    };

    let layout = Layout::new(&state.config.data_dir);
    let upload = Uuid::new_v4();
    let incoming_dir = layout.data_dir.join("uploads").join(".incoming");
    tokio::fs::create_dir_all(&incoming_dir)
        .await
        .map_err(AppError::internal)?;
    let archive = incoming_dir.join(format!("{upload}.tar"));
    let received = receive(body, &archive, state.config.pipeline.upload_limit).await;
    let dest = layout.upload(upload);
    let unpacked = match received {
        Ok(()) => {
            let (archive, dest) = (archive.clone(), dest.clone());
            let limits = Limits {
                // Never more than the workspace has room for.
                max_bytes: state.config.pipeline.upload_limit.saturating_mul(4).min(room),
                max_entries: 200_000,
            };
            tokio::task::spawn_blocking(move || uploads::unpack(&archive, &dest, limits))
                .await
                .map_err(AppError::internal)?
        }
        Err(err) => {
            let _ = tokio::fs::remove_file(&archive).await;
            return Err(err);
        }
    };
    let _ = tokio::fs::remove_file(&archive).await;
    match unpacked {
        Ok(_) => {}
        Err(UnpackError::Refused(reason)) => {
            let _ = tokio::fs::remove_dir_all(&dest).await;
            let reason = without_server_paths(&reason, &dest, &layout.data_dir);
            return Err(AppError::unprocessable(format!("upload refused: {reason}")));
        }
        Err(UnpackError::Io(err)) => return Err(AppError::internal(anyhow::anyhow!(err))),
    }

    let new = NewDeployment {
        service: service.id.uuid(),
        environment,
        source_kind: "upload",
        branch: None,
        commit: None,
        upload: Some(upload),
        release_of: None,
        promoted_from: None,
    };
    let mut conn = state.db.get().await?;
    request_deployment(&mut conn, &meta, &caller, workspace, "deployment.upload", new).await
}

/// Streams the body to `path`, refusing more than `limit` bytes (413).
async fn receive(body: Body, path: &std::path::Path, limit: u64) -> Result<(), AppError> {
    let mut file = tokio::fs::File::create(path).await.map_err(AppError::internal)?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| AppError::bad_request("the upload was interrupted"))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(AppError::new(
                ErrorCode::PayloadTooLarge,
                format!("the upload is larger than {limit} bytes (RAILYARD_UPLOAD_LIMIT_BYTES)"),
            ));
        }
        file.write_all(&chunk).await.map_err(AppError::internal)?;
    }
    if size == 0 {
        return Err(AppError::unprocessable(
            "the upload is empty: send a .tar.gz of the source",
        ));
    }
    file.flush().await.map_err(AppError::internal)?;
    Ok(())
}

/// `reason` with the server's own paths taken out (an unpack error of the archive library
/// names where it was writing): paths inside the upload stay, relative to it.
fn without_server_paths(reason: &str, dest: &std::path::Path, data_dir: &std::path::Path) -> String {
    let mut reason = reason.to_owned();
    for dir in [
        dest.to_path_buf(),
        std::fs::canonicalize(dest).unwrap_or_default(),
    ] {
        let dir = dir.display().to_string();
        if !dir.is_empty() {
            reason = reason.replace(&format!("{dir}/"), "").replace(&dir, ".");
        }
    }
    reason.replace(&data_dir.display().to_string(), "<data>")
}

#[cfg(test)]
mod tests {
    use super::without_server_paths;
    use std::path::Path;

    #[test]
    fn refusals_name_no_server_path() {
        let dest = Path::new("/srv/railyard/uploads/1234");
        let reason = "a/b: failed to unpack `/srv/railyard/uploads/1234/a/b` into `/srv/railyard/uploads/1234`: \
                      failed to create /srv/railyard/other";
        let shown = without_server_paths(reason, dest, Path::new("/srv/railyard"));
        assert_eq!(
            shown,
            "a/b: failed to unpack `a/b` into `.`: failed to create <data>/other"
        );
    }
}
