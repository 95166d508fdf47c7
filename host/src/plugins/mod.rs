//! Plugins: loading libraries, the registry of plugins and provider instances, and the
//! services the host gives each instance.

pub mod loader;
pub mod registry;
pub mod services;

pub use loader::{LoadError, Metadata};
pub use registry::{CallError, Instance, InstanceRow, PluginRow, Registry, RegistryError};
