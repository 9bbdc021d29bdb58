//! Metasync's engine: the catalog's domain and the sync pipeline. It knows no Tauri,
//! no cloud SDK and no HTTP client; adapters implement its ports.

pub mod annotate;
pub mod config;
pub mod finding;
pub mod gen;
pub mod ingest;
pub mod keyset;
pub mod mapping;
pub mod pipeline;
pub mod ports;
pub mod ratelimit;
pub mod retry;
pub mod schema;
pub mod target;
pub mod text;
pub mod validate;
pub mod workbench;

pub use finding::{Code, Finding, Severity};
pub use schema::EntityType;
