//! Plugins: loading libraries, the registry of plugins and provider instances, the services
//! the host gives each instance, and live management (the registry follows the folder).

mod call;
pub mod conformance;
pub mod errors;
mod fingerprint;
pub mod instance;
pub mod live;
pub mod loader;
pub mod outcome;
pub mod registry;
pub mod services;
pub mod trust;
pub mod watch;

pub use errors::{CallError, RegistryError};
pub use instance::Instance;
pub use live::SyncReport;
pub use loader::LoadError;
pub use registry::{InstanceRow, PluginRow, Registry};
