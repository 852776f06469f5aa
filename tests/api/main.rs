//! Every test in one binary: the crate is linked once, and all tests share
//! one pool of test threads. Each module is one capability; `common` is the
//! harness (databases on both backends, the application on a real port).

#[macro_use]
mod common;

mod abuse;
mod answers;
mod artifacts;
mod auth;
mod backpressure;
mod batching;
mod demo;
mod durability;
mod feeds;
mod foundation;
mod graphiql;
mod graphql_limits;
mod graphql_over_http;
mod ingest;
mod layers;
mod live;
mod log;
mod metrics;
mod openapi;
mod operator;
mod planned;
mod problems;
mod proofs;
mod readiness;
mod recording;
mod refusal_speed;
mod replicas;
mod retention;
mod schema;
mod sessions;
mod streams;
mod summaries;
mod traces;
mod trust;
mod viewer;
mod viewer_tokens;
