//! This host, read under --host-root: no network, no cluster.

pub mod conntrack;
pub mod hosts;
pub mod hosts_block;
pub mod localpv_disk;
