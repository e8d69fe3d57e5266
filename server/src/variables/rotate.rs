//! Key rotation: after `railyard-server keys rotate` adds a key to the key file, every
//! stored ciphertext (variables, deployments' variables, token signing keys, GitHub tokens)
//! is re-encrypted under it, in batches, each row replaced only if nobody changed it
//! meanwhile. A run that dies mid-way loses nothing (every row opens under the old or the
//! new key) and the next run carries on: rows already on the current key are skipped.

use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use super::{aad, snapshot_aad};
use crate::{
    crypto::KeyRing,
    schema::{deployment_variables, signing_keys, users, variables},
};

/// Rows per batch.
const BATCH: i64 = 200;

/// Counts of one run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rotated {
    pub reencrypted: u64,
    pub already_current: u64,
}

/// The ciphertext under the current key, or `None` when it is on the current key already.
fn renew(keys: &KeyRing, sealed: &[u8], aad: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    if KeyRing::version_of(sealed) == Some(keys.current_version()) {
        return Ok(None);
    }
    let plain = keys.decrypt(sealed, aad)?;
    Ok(Some(keys.encrypt(&plain, aad)?))
}

/// Re-encrypts every stored secret under the current key; `progress` hears each batch.
pub async fn run(
    conn: &mut AsyncPgConnection,
    keys: &KeyRing,
    mut progress: impl FnMut(&str, Rotated),
) -> anyhow::Result<Rotated> {
    let mut total = Rotated::default();
    let count = |done: &mut Rotated, renewed: bool| {
        if renewed {
            done.reencrypted += 1;
        } else {
            done.already_current += 1;
        }
    };

    let mut done = Rotated::default();
    let mut after = Uuid::nil();
    loop {
        type Row = (Uuid, Uuid, Uuid, Option<Uuid>, String, Vec<u8>);
        let rows: Vec<Row> = variables::table
            .filter(variables::id.gt(after))
            .order(variables::id)
            .limit(BATCH)
            .select((
                variables::id,
                variables::workspace_id,
                variables::environment_id,
                variables::service_id,
                variables::name,
                variables::ciphertext,
            ))
            .load(conn)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (id, workspace, environment, service, name, sealed) in rows {
            let renewed = renew(keys, &sealed, &aad(workspace, environment, service, &name))?;
            if let Some(fresh) = &renewed {
                diesel::update(
                    variables::table
                        .filter(variables::id.eq(id))
                        .filter(variables::ciphertext.eq(&sealed)),
                )
                .set(variables::ciphertext.eq(fresh))
                .execute(conn)
                .await?;
            }
            count(&mut done, renewed.is_some());
        }
        progress("variables", done);
    }
    total.reencrypted += done.reencrypted;
    total.already_current += done.already_current;

    let mut done = Rotated::default();
    let mut after = Uuid::nil();
    loop {
        let rows: Vec<(Uuid, Vec<u8>)> = deployment_variables::table
            .filter(deployment_variables::deployment_id.gt(after))
            .order(deployment_variables::deployment_id)
            .limit(BATCH)
            .select((
                deployment_variables::deployment_id,
                deployment_variables::ciphertext,
            ))
            .load(conn)
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.0;
        for (id, sealed) in rows {
            let renewed = renew(keys, &sealed, &snapshot_aad(id))?;
            if let Some(fresh) = &renewed {
                diesel::update(
                    deployment_variables::table
                        .filter(deployment_variables::deployment_id.eq(id))
                        .filter(deployment_variables::ciphertext.eq(&sealed)),
                )
                .set(deployment_variables::ciphertext.eq(fresh))
                .execute(conn)
                .await?;
            }
            count(&mut done, renewed.is_some());
        }
        progress("deployment variables", done);
    }
    total.reencrypted += done.reencrypted;
    total.already_current += done.already_current;

    let mut done = Rotated::default();
    let rows: Vec<(String, Vec<u8>)> = signing_keys::table
        .select((signing_keys::kid, signing_keys::private_key))
        .load(conn)
        .await?;
    for (kid, sealed) in rows {
        let renewed = renew(keys, &sealed, &crate::auth::jwt::key_aad(&kid))?;
        if let Some(fresh) = &renewed {
            diesel::update(
                signing_keys::table
                    .filter(signing_keys::kid.eq(&kid))
                    .filter(signing_keys::private_key.eq(&sealed)),
            )
            .set(signing_keys::private_key.eq(fresh))
            .execute(conn)
            .await?;
        }
        count(&mut done, renewed.is_some());
    }
    progress("token signing keys", done);
    total.reencrypted += done.reencrypted;
    total.already_current += done.already_current;

    let mut done = Rotated::default();
    let rows: Vec<(Uuid, Option<Vec<u8>>)> = users::table
        .filter(users::github_token.is_not_null())
        .select((users::id, users::github_token))
        .load(conn)
        .await?;
    for (id, sealed) in rows {
        let Some(sealed) = sealed else { continue };
        let renewed = renew(keys, &sealed, &crate::models::user::User::github_token_aad(id))?;
        if let Some(fresh) = &renewed {
            diesel::update(
                users::table
                    .filter(users::id.eq(id))
                    .filter(users::github_token.eq(&sealed)),
            )
            .set(users::github_token.eq(fresh))
            .execute(conn)
            .await?;
        }
        count(&mut done, renewed.is_some());
    }
    progress("GitHub tokens", done);
    total.reencrypted += done.reencrypted;
    total.already_current += done.already_current;
    Ok(total)
}

/// `railyard-server keys rotate [--resume]`.
pub async fn command(config: crate::config::Config, resume: bool) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let file = KeyRing::file_of(&config.auth.master_key, &config.data_dir).context(
        "RAILYARD_MASTER_KEY holds a single key: to rotate, move it into a key file \
         (a line `1:<key>`) and name that file in RAILYARD_MASTER_KEY_FILE",
    )?;
    let say = |line: String| {
        #[allow(clippy::print_stdout)]
        {
            println!("{line}");
        }
    };
    if !resume {
        let version = crate::crypto::add_key(&file)?;
        say(format!("Added key version {version} to {}.", file.display()));
    }
    let keys = KeyRing::load(&config.auth.master_key, &config.data_dir)?;
    let url = crate::postgres::running_database(&config)?;
    let pool = crate::db::connect_pool(&config.database, &url).await?;
    let mut conn = pool.get().await?;
    say(format!(
        "Re-encrypting every stored secret under key version {}.",
        keys.current_version()
    ));
    let total = run(&mut conn, &keys, |what, done| {
        say(format!(
            "  {what}: {} re-encrypted, {} already current",
            done.reencrypted, done.already_current
        ));
    })
    .await?;
    say(format!(
        "Done: {} re-encrypted, {} already under the newest key.",
        total.reencrypted, total.already_current
    ));
    Ok(())
}
