//! Typed ids: a `ServiceId` cannot be passed where a `DeploymentId` is meant. On the wire
//! and in the database each is its UUID (serde `transparent`), so the JSON is unchanged.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! ids {
    ($($(#[$meta:meta])* $name:ident,)+) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(text: &str) -> Result<Self, uuid::Error> {
                text.parse().map(Self)
            }
        }
    )+};
}

ids! {
    /// A workspace (a team).
    WorkspaceId,
    /// A user account.
    UserId,
    /// A project.
    ProjectId,
    /// One environment of a project (`production`, `staging`, …).
    EnvironmentId,
    /// A service of a project.
    ServiceId,
    /// One deployment of a service in an environment.
    DeploymentId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_uuid_on_the_wire() {
        let uuid = Uuid::from_u128(7);
        let id = ServiceId(uuid);
        assert_eq!(
            serde_json::to_value(id).unwrap(),
            serde_json::json!(uuid.to_string())
        );
        assert_eq!(
            serde_json::from_value::<ServiceId>(serde_json::json!(uuid)).unwrap(),
            id
        );
        assert_eq!(id.to_string().parse::<ServiceId>().unwrap(), id);
        assert!("nope".parse::<DeploymentId>().is_err());
    }
}
