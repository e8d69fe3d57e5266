//! Ports: a free one from the range, or the service's fixed one, recorded with the
//! instance (the unique index on live ports settles races between replicas).

use diesel::ExpressionMethods as _;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};
use railyard_shared::InstanceState;
use uuid::Uuid;

use super::Releaser;
use crate::schema::instances;

impl Releaser {
    /// Picks a free port in the range and records the instance on it (the unique index on
    /// live ports settles races between replicas).
    pub(super) async fn reserve(
        &self,
        conn: &mut AsyncPgConnection,
        row: (Uuid, Uuid, Uuid),
        instance: Uuid,
    ) -> anyhow::Result<u16> {
        let (low, high) = (*self.config.ports.start(), *self.config.ports.end());
        let span = u32::from(high - low) + 1;
        let offset = crate::auth::secret::random_bytes::<4>()
            .map(u32::from_be_bytes)
            .unwrap_or(0)
            % span;
        for i in 0..span.min(2000) {
            let port = low + u16::try_from((offset + i) % span).unwrap_or(0);
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
                && Self::record(conn, row, instance, port).await?
            {
                return Ok(port);
            }
        }
        anyhow::bail!("no free port in RAILYARD_PORT_RANGE")
    }

    /// Records a `starting` instance on `port`; false if another live instance holds it.
    async fn record(
        conn: &mut AsyncPgConnection,
        (deployment, service, environment): (Uuid, Uuid, Uuid),
        instance: Uuid,
        port: u16,
    ) -> diesel::QueryResult<bool> {
        let inserted = diesel::insert_into(instances::table)
            .values((
                instances::id.eq(instance),
                instances::deployment_id.eq(deployment),
                instances::service_id.eq(service),
                instances::environment_id.eq(environment),
                instances::state.eq(InstanceState::Starting.as_str()),
                instances::port.eq(i32::from(port)),
            ))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?;
        Ok(inserted == 1)
    }

    /// Records the instance on the service's fixed `port`; why not, if it is taken.
    pub(super) async fn reserve_fixed(
        &self,
        conn: &mut AsyncPgConnection,
        row: (Uuid, Uuid, Uuid),
        instance: Uuid,
        port: u16,
    ) -> anyhow::Result<Result<(), String>> {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return Ok(Err(format!(
                "port {port} (fixed in the settings) is in use by another process"
            )));
        }
        Ok(if Self::record(conn, row, instance, port).await? {
            Ok(())
        } else {
            Err(format!(
                "port {port} (fixed in the settings) is taken by another app"
            ))
        })
    }
}
