use serde::{Deserialize, Serialize};

/// Overall state reported by `GET /api/v1/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Every configured dependency answers.
    Ok,
    /// At least one dependency the server needs does not answer.
    Unavailable,
}

/// State of one dependency in the health report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Ok,
    Unavailable,
    /// Optional dependency that this instance runs without (e.g. no `REDIS_URL`).
    Disabled,
}

/// Body of `GET /api/v1/health`, the same shape for 200 and 503.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    pub status: HealthStatus,
    /// PostgreSQL: `ok` when a pooled connection answers a query in time.
    pub database: ComponentStatus,
    /// Redis (the shared log bus): `disabled` when no `REDIS_URL` is configured.
    pub redis: ComponentStatus,
    /// Version of the running server binary.
    pub version: String,
}

impl HealthResponse {
    pub fn is_ok(&self) -> bool {
        self.status == HealthStatus::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_uses_snake_case_on_the_wire() {
        let body = HealthResponse {
            status: HealthStatus::Unavailable,
            database: ComponentStatus::Unavailable,
            redis: ComponentStatus::Disabled,
            version: "1.2.3".into(),
        };
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "status": "unavailable",
                "database": "unavailable",
                "redis": "disabled",
                "version": "1.2.3"
            })
        );
        let back: HealthResponse = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
        assert!(!back.is_ok());
    }
}
