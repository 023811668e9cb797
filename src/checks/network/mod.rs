//! Registries and chart repositories, probed the way an air-gapped site needs: every probe
//! at once, each bounded by --timeout, every failure named.

pub mod chart_repos;
pub mod images;
pub mod registry;
pub mod runtime_mirrors;
