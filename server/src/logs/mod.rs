//! Log writers that builds (`pipeline`) and apps (`runtime`) both use: what a stored line
//! is ([`line`]), a deployment's build log ([`build`]), the shipping of app output from the
//! monitors' files into `service_logs` ([`ship`]), and the rotation of those files
//! ([`rotate`]).

pub mod build;
pub mod line;
pub mod rotate;
pub mod ship;

pub use build::BuildLog;
pub use line::{MAX_LINE, Stream, clean_line};
