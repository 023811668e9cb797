#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
// A helper that ends a check returns its Outcome as `Err` (`or_return!`): once per check,
// never in a loop, so its size (findings, fix, starved) costs nothing worth a Box.
#![allow(clippy::result_large_err)]
//! preflight: checks a host, its network and its Kubernetes cluster before `helm install`
//! / `helmfile sync`, and says the exact fix for each problem.

pub mod check;
pub mod checks;
pub mod cli;
pub mod engine;
pub mod exec;
pub mod fix;
pub mod fsutil;
pub mod gobin;
pub mod install;
pub mod kube;
pub mod net;
pub mod nodes;
pub mod oci;
pub mod openapi_v2;
pub mod profile;
pub mod quantity;
pub mod registry;
pub mod report;
pub mod resolve;
pub mod run;
pub mod runtime_config;
pub mod values;
pub mod vocab;
