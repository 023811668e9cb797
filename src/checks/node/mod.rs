//! This host, read under --host-root: no network, no cluster.

pub mod conntrack;
pub mod container_runtime_registries;
pub mod host_ports;
pub mod hosts;
pub mod hosts_block;
pub mod kernel_settings;
pub mod localpv_disk;
