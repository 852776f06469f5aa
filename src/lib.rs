//! activity-gateway: a GraphQL API and a REST compatibility shim over an org's
//! activity data. `main.rs` only parses the command line and dispatches here.

pub mod admission;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod docs;
pub mod domain;
pub mod graphiql;
pub mod graphql;
pub mod http_error;
pub mod json;
pub mod operations;
pub mod recording;
pub mod rest;
pub mod seed;
pub mod serve;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod viewer;
pub mod views;
