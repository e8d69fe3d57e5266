//! The states of deployments and app instances, with their one mapping to the strings the
//! database and the wire carry. Nothing else spells a state as a string.

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every state, in order.
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// How it reads on a page: `rolled back`, `not deployed`, …
            pub fn label(self) -> String {
                self.as_str().replace('_', " ")
            }

            /// The state a stored or sent string names.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(text: &str) -> Result<Self, String> {
                Self::parse(text).ok_or_else(|| format!("`{text}` is not a {}", stringify!($name)))
            }
        }
    };
}

string_enum! {
    /// Where a deployment is: queued → building → deploying → active | failed | cancelled;
    /// superseded / rolled_back for ones that were active.
    DeploymentState {
        Queued => "queued",
        Building => "building",
        Deploying => "deploying",
        Active => "active",
        Failed => "failed",
        Cancelled => "cancelled",
        Superseded => "superseded",
        RolledBack => "rolled_back",
    }
}

impl DeploymentState {
    /// Whether `self → to` is a transition of the state machine.
    pub fn can_become(self, to: Self) -> bool {
        use DeploymentState::*;
        matches!(
            (self, to),
            (Queued, Building)
                | (Building, Deploying)
                // A rollback reuses a release: nothing to build.
                | (Queued, Deploying)
                | (Deploying, Active)
                | (Queued | Building | Deploying, Failed | Cancelled)
                | (Active, Superseded | RolledBack)
        )
    }

    /// No further transition except leaving `active`.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Failed | Self::Cancelled | Self::Superseded | Self::RolledBack
        )
    }

    /// Not yet live and not ended: a newer deployment supersedes it.
    pub fn is_pending(self) -> bool {
        matches!(self, Self::Queued | Self::Building | Self::Deploying)
    }
}

string_enum! {
    /// Where one process of a release is.
    InstanceState {
        /// Started, not yet healthy.
        Starting => "starting",
        Running => "running",
        Stopping => "stopping",
        Stopped => "stopped",
        /// Gave up after too many fast failures.
        Crashed => "crashed",
    }
}

impl InstanceState {
    /// A process may be running (what deleting or draining must stop).
    pub const LIVE: &[InstanceState] = &[Self::Starting, Self::Running, Self::Crashed];
}

string_enum! {
    /// Where a service is in one environment: its newest instance's state, or not deployed.
    ServiceState {
        NotDeployed => "not_deployed",
        Starting => "starting",
        Running => "running",
        Stopping => "stopping",
        Stopped => "stopped",
        Crashed => "crashed",
    }
}

impl From<InstanceState> for ServiceState {
    fn from(state: InstanceState) -> Self {
        match state {
            InstanceState::Starting => Self::Starting,
            InstanceState::Running => Self::Running,
            InstanceState::Stopping => Self::Stopping,
            InstanceState::Stopped => Self::Stopped,
            InstanceState::Crashed => Self::Crashed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeploymentState::*;
    use super::*;

    #[test]
    fn the_state_machine() {
        assert!(Queued.can_become(Building));
        assert!(Building.can_become(Deploying));
        assert!(Deploying.can_become(Active));
        assert!(Active.can_become(Superseded) && Active.can_become(RolledBack));
        for from in [Queued, Building, Deploying] {
            assert!(from.can_become(Failed) && from.can_become(Cancelled), "{from:?}");
        }
        assert!(!Queued.can_become(Active), "no skipping the deploy");
        assert!(Queued.can_become(Deploying), "rollbacks reuse a release");
        assert!(!Failed.can_become(Building), "final states stay final");
        assert!(!Active.can_become(Building));
        assert!(!Cancelled.can_become(Active));
        assert!(Failed.is_final() && Superseded.is_final() && !Active.is_final());
    }

    #[test]
    fn strings_round_trip() {
        for state in DeploymentState::ALL {
            assert_eq!(DeploymentState::parse(state.as_str()), Some(*state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        for state in InstanceState::ALL {
            assert_eq!(state.as_str().parse::<InstanceState>(), Ok(*state));
            assert_eq!(
                ServiceState::from(*state).as_str(),
                state.as_str(),
                "one word for both"
            );
        }
        for state in ServiceState::ALL {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(DeploymentState::parse("done"), None);
    }
}
