//! The REST compatibility shim: thin handlers over the service layer, one module
//! per reference document.

pub mod activity;
pub mod artifacts;
pub mod error;
pub mod extract;
pub mod log;
pub mod openapi;
pub mod orgs;
pub mod params;
pub mod schemas;
pub mod viewer_tokens;
