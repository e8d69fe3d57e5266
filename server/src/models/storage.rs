//! What a service keeps on disk, and a workspace's storage against its quota
//! (`RAILYARD_WORKSPACE_STORAGE_LIMIT_BYTES`). A service is measured after each of its
//! builds (its releases, unpacked uploads, pushed repository, homes with their build
//! caches, app log files: disk blocks, links not followed); a workspace uses the sum.

use std::{os::unix::fs::MetadataExt as _, path::PathBuf};

use chrono::Utc;
use diesel::{ExpressionMethods as _, QueryDsl as _, upsert::excluded};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::{
    layout::Layout,
    schema::{deployments, projects, releases, service_storage, services},
};

/// Measures `service` on disk now and records it; the bytes.
pub async fn measure(conn: &mut AsyncPgConnection, layout: &Layout, service: Uuid) -> anyhow::Result<u64> {
    let releases: Vec<String> = releases::table
        .filter(releases::service_id.eq(service))
        .filter(releases::pruned_at.is_null())
        .select(releases::path)
        .load(conn)
        .await?;
    let uploads: Vec<Option<Uuid>> = deployments::table
        .filter(deployments::service_id.eq(service))
        .filter(deployments::upload_id.is_not_null())
        .select(deployments::upload_id)
        .load(conn)
        .await?;
    let mut dirs: Vec<PathBuf> = releases.iter().map(|p| layout.data_dir.join(p)).collect();
    dirs.extend(uploads.into_iter().flatten().map(|u| layout.upload(u)));
    dirs.extend([
        layout.push_repo(service),
        layout.cache(service),
        layout.service_logs(service),
    ]);
    let bytes = tokio::task::spawn_blocking(move || dirs.iter().map(|d| disk_usage(d)).sum::<u64>()).await?;
    let stored = i64::try_from(bytes).unwrap_or(i64::MAX);
    diesel::insert_into(service_storage::table)
        .values((
            service_storage::service_id.eq(service),
            service_storage::bytes.eq(stored),
        ))
        .on_conflict(service_storage::service_id)
        .do_update()
        .set((
            service_storage::bytes.eq(excluded(service_storage::bytes)),
            service_storage::measured_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(bytes)
}

/// Bytes on disk under `path` (allocated blocks; links are counted, not followed; what
/// cannot be read counts nothing).
pub fn disk_usage(path: &std::path::Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for entry in entries.flatten() {
            total += disk_usage(&entry.path());
        }
    }
    total
}

/// What `workspace`'s services keep on disk, as last measured.
pub async fn used_by(conn: &mut AsyncPgConnection, workspace: Uuid) -> diesel::QueryResult<u64> {
    Ok(of_workspace(conn, workspace)
        .await?
        .iter()
        .map(|(_, bytes)| bytes)
        .sum())
}

/// The refusal of anything that would keep more on disk, when `used` reached `limit`.
pub fn over_quota(used: u64, limit: u64) -> Option<String> {
    (used >= limit).then(|| {
        format!(
            "this workspace keeps {} MiB on disk and its limit is {} MiB \
             (RAILYARD_WORKSPACE_STORAGE_LIMIT_BYTES): delete services it no longer needs",
            used.div_ceil(1024 * 1024),
            limit / (1024 * 1024)
        )
    })
}

/// Each service of `workspace` with what it was last measured at, largest first.
pub async fn of_workspace(
    conn: &mut AsyncPgConnection,
    workspace: Uuid,
) -> diesel::QueryResult<Vec<(Uuid, u64)>> {
    let rows: Vec<(Uuid, i64)> = service_storage::table
        .inner_join(services::table.inner_join(projects::table))
        .filter(projects::workspace_id.eq(workspace))
        .order(service_storage::bytes.desc())
        .select((service_storage::service_id, service_storage::bytes))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, bytes)| (id, u64::try_from(bytes).unwrap_or(0)))
        .collect())
}
