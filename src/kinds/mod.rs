//! The registry of resource kinds: the one list of every kind deckhand manages. Inventory, prune,
//! destroy and status walk [`KINDS`]; none of them names a kind. A new kind is its own file here
//! (its [`StackKind`]) and one line in [`KINDS`].
//!
//! [`KINDS`] lists the kinds in the order things are built (what others use first), which is the
//! order `status` shows them in. Deletion runs the other way, dependents first: the order is
//! computed from each kind's [`StackKind::deleted_after`] (a topological order), and among kinds
//! that no relation orders, the later-built is deleted first.

pub mod inventory;
pub mod stack_kind;

pub mod alarm;
mod autoscaling;
mod certificate;
mod cluster;
mod dns_record;
pub mod ecr_repository;
mod elastic_ip;
pub mod internet_gateway;
mod listener;
mod listener_rule;
mod load_balancer;
mod log_group;
mod nat_gateway;
mod role;
mod route_table;
mod security_group;
mod service;
mod subnet;
mod target_group;
mod task_definition;
pub mod vpc;
mod vpc_endpoint;

use std::sync::OnceLock;

pub use inventory::{Entry, Inventory};
pub use stack_kind::{Deleting, Kind, Pending, Showing, Shown, StackKind, StatusReads, done};

/// Every kind, in the order things are built (and `status` shows them).
pub static KINDS: &[&dyn StackKind] = &[
    &role::Roles,
    &log_group::LogGroups,
    &ecr_repository::Repositories,
    &vpc::Vpcs,
    &internet_gateway::InternetGateways,
    &subnet::Subnets,
    &security_group::SecurityGroups,
    &route_table::RouteTables,
    &vpc_endpoint::VpcEndpoints,
    &elastic_ip::ElasticIps,
    &nat_gateway::NatGateways,
    &certificate::Certificates,
    &target_group::TargetGroups,
    &load_balancer::LoadBalancers,
    &listener::Listeners,
    &listener_rule::ListenerRules,
    &alarm::Alarms,
    &cluster::Clusters,
    &task_definition::TaskDefinitions,
    &service::Services,
    &autoscaling::ScalableTargets,
    &dns_record::DnsRecords,
];

/// The declaration of `kind`. Every [`Kind`] of an [`Entry`] comes from a registered kind.
pub fn of(kind: Kind) -> &'static dyn StackKind {
    *KINDS.iter().find(|k| k.kind() == kind).expect("every entry's kind is registered")
}

/// The declaration of the kind scripts name `name`, if it is a registered kind.
pub fn named(name: &str) -> Option<&'static dyn StackKind> {
    KINDS.iter().find(|k| k.kind().name() == name).copied()
}

/// Where `kind` stands in the deletion order (0 is deleted first).
pub fn deletion_rank(kind: Kind) -> usize {
    deletion_order().iter().position(|k| *k == kind).expect("every entry's kind is registered")
}

/// Every kind in deletion order: a kind comes after every kind it is [`StackKind::deleted_after`];
/// among those free to go next, the one registered last (built last) goes first.
pub fn deletion_order() -> &'static [Kind] {
    static ORDER: OnceLock<Vec<Kind>> = OnceLock::new();
    ORDER.get_or_init(|| topological(KINDS.iter().map(|k| (k.kind(), k.deleted_after())).collect()))
}

/// Kahn's algorithm over `kinds` (each with the kinds it comes after), ties to the last listed.
fn topological(kinds: Vec<(Kind, &[&str])>) -> Vec<Kind> {
    let mut order: Vec<Kind> = Vec::with_capacity(kinds.len());
    while order.len() < kinds.len() {
        let next = kinds
            .iter()
            .rev()
            .find(|(kind, after)| {
                !order.contains(kind) && after.iter().all(|a| order.iter().any(|done| done.name() == *a))
            })
            .unwrap_or_else(|| panic!("the kinds' deleted_after relations form a cycle (ordered so far: {order:?})"));
        order.push(next.0);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_relation_names_a_registered_kind() {
        for kind in KINDS {
            for after in kind.deleted_after() {
                assert!(named(after).is_some(), "{} is deleted after {after}, which is not registered", kind.kind().0);
            }
        }
    }

    /// The order these kinds had when it was an enum's variant order (destroy's and prune's
    /// integration tests rely on it); kinds added since fall in between by their own relations.
    #[test]
    fn kinds_delete_dependents_first() {
        let order: Vec<&str> =
            deletion_order().iter().map(|k| k.name()).filter(|k| BEFORE_THE_REGISTRY.contains(k)).collect();
        assert_eq!(order, BEFORE_THE_REGISTRY);
    }

    const BEFORE_THE_REGISTRY: [&str; 18] = [
        "dns_record",
        "autoscaling",
        "service",
        "task_definition",
        "cluster",
        "listener_rule",
        "listener",
        "load_balancer",
        "target_group",
        "certificate",
        "nat_gateway",
        "elastic_ip",
        "vpc_endpoint",
        "route_table",
        "security_group",
        "subnet",
        "log_group",
        "role",
    ];

    #[test]
    fn relations_order_kinds_whatever_their_place_in_the_list() {
        let order = topological(vec![(Kind("subnet"), &["service"]), (Kind("service"), &[]), (Kind("role"), &[])]);
        assert_eq!(order, [Kind("role"), Kind("service"), Kind("subnet")]);
    }
}
