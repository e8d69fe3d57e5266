//! The sandbox user of each service in each environment (see `sandbox::jail`): made on
//! first use, deleted with its service or environment.

use diesel::{ExpressionMethods as _, OptionalExtension as _, QueryDsl as _, QueryResult};
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use uuid::Uuid;

use crate::schema::sandbox_users;

/// The number of the sandbox user of `service` in `environment`, made on first use.
pub async fn number(conn: &mut AsyncPgConnection, service: Uuid, environment: Uuid) -> QueryResult<u32> {
    let find = sandbox_users::table
        .filter(sandbox_users::service_id.eq(service))
        .filter(sandbox_users::environment_id.eq(environment))
        .select(sandbox_users::number);
    let number = match find.first::<i32>(conn).await.optional()? {
        Some(number) => number,
        None => {
            diesel::insert_into(sandbox_users::table)
                .values((
                    sandbox_users::service_id.eq(service),
                    sandbox_users::environment_id.eq(environment),
                ))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?;
            find.first::<i32>(conn).await?
        }
    };
    Ok(u32::try_from(number).unwrap_or(u32::MAX))
}
