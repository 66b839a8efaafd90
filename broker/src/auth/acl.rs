//! The authorization state in memory (docs/adr/0004-security.md §3, §6): custom roles,
//! bindings, and per user one compiled [`UserAcl`] that merges every role bound to it.
//!
//! [`super::Auth`] keeps it as `RwLock<Arc<AclSnapshot>>`. A change takes the write lock and
//! edits the snapshot through `Arc::make_mut` (which copies it only while a reader still holds
//! the old one), recompiling just the users it touches. `authorize` holds the read lock for a
//! few hash lookups, never across `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::pattern::PatternSet;
use super::records::{BindingRecord, BindingScope, RoleRecord};
use super::roles::{self, Effect, Permission, ResourceType};
use super::{Action, Resource};

/// One effect's rules of a user, by resource and action.
#[derive(Debug, Default)]
struct Rules {
    topic: [PatternSet; Action::ALL.len()],
    subscription: [PatternSet; Action::ALL.len()],
    /// A bit per action (`1 << action as u8`).
    tenant: u8,
    cluster: u8,
}

impl Rules {
    fn add(&mut self, permission: &Permission) {
        for &action in &permission.actions {
            let i = action as usize;
            match permission.resource {
                ResourceType::Topic => {
                    self.topic[i].insert(&permission.pattern, permission.pattern_type)
                }
                ResourceType::Subscription => {
                    self.subscription[i].insert(&permission.pattern, permission.pattern_type)
                }
                ResourceType::Tenant => self.tenant |= 1 << i,
                ResourceType::Cluster => self.cluster |= 1 << i,
            }
        }
    }

    fn seal(&mut self) {
        for set in self.topic.iter_mut().chain(&mut self.subscription) {
            set.seal();
        }
    }

    fn matches(&self, action: Action, resource: Resource<'_>) -> bool {
        let i = action as usize;
        match resource {
            Resource::Topic(name) => self.topic[i].matches(name),
            Resource::Subscription { topic, name } => {
                let set = &self.subscription[i];
                !set.is_empty() && set.matches(&format!("{topic}/{name}"))
            }
            Resource::Tenant => self.tenant & (1 << i) != 0,
            Resource::Cluster => self.cluster & (1 << i) != 0,
        }
    }
}

/// Everything the roles bound to one user allow and deny, merged.
#[derive(Debug, Default)]
pub struct UserAcl {
    deny: Rules,
    allow: Rules,
}

impl UserAcl {
    /// Merges `roles` (each with the scope it is bound at): a role's cluster permissions count
    /// only at cluster scope, where `admin` also gets everything on the cluster.
    fn compile<'a>(
        roles: impl IntoIterator<Item = (&'a [Permission], BindingScope, bool)>,
    ) -> UserAcl {
        let mut acl = UserAcl::default();
        for (permissions, scope, admin) in roles {
            let at_cluster = scope == BindingScope::Cluster;
            for permission in permissions {
                if permission.resource == ResourceType::Cluster && !at_cluster {
                    continue;
                }
                acl.add(permission);
            }
            if admin && at_cluster {
                acl.add(&roles::cluster_admin());
            }
        }
        acl.deny.seal();
        acl.allow.seal();
        acl
    }

    fn add(&mut self, permission: &Permission) {
        match permission.effect {
            Effect::Deny => self.deny.add(permission),
            Effect::Allow => self.allow.add(permission),
        }
    }

    /// A matching deny refuses, else a matching allow permits; nothing matching refuses.
    pub fn permits(&self, action: Action, resource: Resource<'_>) -> bool {
        !self.deny.matches(action, resource) && self.allow.matches(action, resource)
    }
}

/// Custom roles, bindings and the compiled ACL of every user with a binding.
#[derive(Debug, Clone, Default)]
pub struct AclSnapshot {
    /// Custom roles by `(tenant, name)`.
    roles: BTreeMap<(String, String), Arc<RoleRecord>>,
    /// Bindings by `(tenant, user, role)`.
    bindings: BTreeMap<(String, String, String), BindingScope>,
    /// By tenant, then user.
    users: HashMap<String, HashMap<String, Arc<UserAcl>>>,
}

impl AclSnapshot {
    pub fn user(&self, tenant: &str, user: &str) -> Option<&Arc<UserAcl>> {
        self.users.get(tenant)?.get(user)
    }

    pub fn role(&self, tenant: &str, name: &str) -> Option<&Arc<RoleRecord>> {
        self.roles.get(&(tenant.to_string(), name.to_string()))
    }

    /// The custom roles of `tenant`, by name.
    pub fn roles(&self, tenant: &str) -> impl Iterator<Item = &Arc<RoleRecord>> {
        self.roles
            .range((tenant.to_string(), String::new())..)
            .take_while(move |((t, _), _)| t == tenant)
            .map(|(_, role)| role)
    }

    /// The bindings of `tenant` (of one user when `user` is set), by user then role.
    pub fn bindings<'a>(
        &'a self,
        tenant: &'a str,
        user: Option<&'a str>,
    ) -> impl Iterator<Item = BindingRecord> + 'a {
        let start = (
            tenant.to_string(),
            user.unwrap_or_default().to_string(),
            String::new(),
        );
        self.bindings
            .range(start..)
            .take_while(move |((t, u, _), _)| t == tenant && user.is_none_or(|user| u == user))
            .map(|((tenant, user, role), &scope)| BindingRecord {
                tenant: tenant.clone(),
                user: user.clone(),
                role: role.clone(),
                scope,
            })
    }

    pub fn binding(&self, tenant: &str, user: &str, role: &str) -> Option<BindingScope> {
        self.bindings
            .get(&(tenant.to_string(), user.to_string(), role.to_string()))
            .copied()
    }

    /// Whether any binding exists at all (a data directory from before roles has none).
    pub fn has_bindings(&self) -> bool {
        !self.bindings.is_empty()
    }

    pub fn put_role(&mut self, role: RoleRecord) {
        let (tenant, name) = (role.tenant.clone(), role.name.clone());
        self.roles
            .insert((tenant.clone(), name.clone()), Arc::new(role));
        self.recompile_role(&tenant, &name);
    }

    pub fn delete_role(&mut self, tenant: &str, name: &str, bindings: &[String]) {
        self.roles.remove(&(tenant.to_string(), name.to_string()));
        for user in bindings {
            self.bindings
                .remove(&(tenant.to_string(), user.clone(), name.to_string()));
            self.recompile_user(tenant, user);
        }
    }

    pub fn put_binding(&mut self, binding: &BindingRecord) {
        self.bindings.insert(
            (
                binding.tenant.clone(),
                binding.user.clone(),
                binding.role.clone(),
            ),
            binding.scope,
        );
        self.recompile_user(&binding.tenant, &binding.user);
    }

    pub fn delete_binding(&mut self, tenant: &str, user: &str, role: &str) {
        self.bindings
            .remove(&(tenant.to_string(), user.to_string(), role.to_string()));
        self.recompile_user(tenant, user);
    }

    /// Recompiles every user of `tenant` bound to role `name`.
    fn recompile_role(&mut self, tenant: &str, name: &str) {
        let users: Vec<String> = self
            .bindings(tenant, None)
            .filter(|b| b.role == name)
            .map(|b| b.user)
            .collect();
        for user in users {
            self.recompile_user(tenant, &user);
        }
    }

    fn recompile_user(&mut self, tenant: &str, user: &str) {
        let bindings: Vec<BindingRecord> = self.bindings(tenant, Some(user)).collect();
        if bindings.is_empty() {
            if let Some(users) = self.users.get_mut(tenant) {
                users.remove(user);
                if users.is_empty() {
                    self.users.remove(tenant);
                }
            }
            return;
        }
        let acl = UserAcl::compile(bindings.iter().filter_map(|b| {
            let permissions = match roles::builtin(&b.role) {
                Some(permissions) => permissions,
                None => &self.role(tenant, &b.role)?.permissions,
            };
            Some((permissions, b.scope, b.role == roles::ADMIN_ROLE))
        }));
        self.users
            .entry(tenant.to_string())
            .or_default()
            .insert(user.to_string(), Arc::new(acl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::roles::PatternType;

    fn binding(user: &str, role: &str, scope: BindingScope) -> BindingRecord {
        BindingRecord {
            tenant: "default".into(),
            user: user.into(),
            role: role.into(),
            scope,
        }
    }

    fn permission(text: (Effect, &[Action], ResourceType, &str, PatternType)) -> Permission {
        let (effect, actions, resource, pattern, kind) = text;
        Permission::new(
            effect,
            actions.to_vec(),
            resource,
            pattern.into(),
            Some(kind),
        )
        .unwrap()
    }

    fn permits(acl: &AclSnapshot, user: &str, action: Action, resource: Resource<'_>) -> bool {
        acl.user("default", user)
            .is_some_and(|a| a.permits(action, resource))
    }

    const SUB: Resource<'static> = Resource::Subscription {
        topic: "orders",
        name: "billing",
    };

    #[test]
    fn the_builtin_roles_allow_what_they_say_and_nothing_else() {
        let mut acl = AclSnapshot::default();
        for role in roles::BUILTIN_ROLES {
            acl.put_binding(&binding(role, role, BindingScope::Tenant));
        }
        use Action::*;
        let topic = Resource::Topic("orders");
        for (user, action, resource, expected) in [
            ("admin", Admin, Resource::Tenant, true),
            ("admin", Delete, topic, true),
            ("admin", Alter, SUB, true),
            ("admin", Describe, Resource::Cluster, false),
            ("producer", Publish, topic, true),
            ("producer", Describe, topic, true),
            ("producer", Consume, topic, false),
            ("producer", Consume, SUB, false),
            ("producer", Describe, Resource::Tenant, false),
            ("consumer", Consume, topic, true),
            ("consumer", Consume, SUB, true),
            ("consumer", Create, SUB, true),
            ("consumer", Delete, SUB, false),
            ("consumer", Publish, topic, false),
            ("consumer", Create, topic, false),
            ("viewer", Describe, topic, true),
            ("viewer", Describe, SUB, true),
            ("viewer", Describe, Resource::Tenant, true),
            ("viewer", Publish, topic, false),
            ("viewer", Admin, Resource::Tenant, false),
            ("nobody", Describe, topic, false),
        ] {
            assert_eq!(
                permits(&acl, user, action, resource),
                expected,
                "{user} {action:?} {resource:?}"
            );
        }
    }

    #[test]
    fn the_cluster_is_reached_only_through_cluster_scope_bindings() {
        let mut acl = AclSnapshot::default();
        acl.put_binding(&binding("root", "admin", BindingScope::Cluster));
        acl.put_binding(&binding("local", "admin", BindingScope::Tenant));
        acl.put_role(RoleRecord {
            tenant: "default".into(),
            name: "ops".into(),
            permissions: vec![
                Permission::new(
                    Effect::Allow,
                    vec![Action::Describe],
                    ResourceType::Cluster,
                    String::new(),
                    None,
                )
                .unwrap(),
            ],
            created_at_ms: 0,
        });
        acl.put_binding(&binding("ops-t", "ops", BindingScope::Tenant));
        acl.put_binding(&binding("ops-c", "ops", BindingScope::Cluster));
        assert!(permits(&acl, "root", Action::Admin, Resource::Cluster));
        assert!(permits(&acl, "root", Action::Publish, Resource::Topic("x")));
        assert!(!permits(&acl, "local", Action::Admin, Resource::Cluster));
        assert!(!permits(&acl, "ops-t", Action::Describe, Resource::Cluster));
        assert!(permits(&acl, "ops-c", Action::Describe, Resource::Cluster));
        assert!(!permits(&acl, "ops-c", Action::Admin, Resource::Cluster));
    }

    #[test]
    fn a_matching_deny_wins_over_any_allow_from_any_role() {
        let mut acl = AclSnapshot::default();
        acl.put_role(RoleRecord {
            tenant: "default".into(),
            name: "no-audit".into(),
            permissions: vec![
                permission((
                    Effect::Deny,
                    &[Action::Consume],
                    ResourceType::Subscription,
                    "orders*/audit-*",
                    PatternType::Glob,
                )),
                permission((
                    Effect::Deny,
                    &[Action::Publish],
                    ResourceType::Topic,
                    "secret.",
                    PatternType::Prefix,
                )),
            ],
            created_at_ms: 0,
        });
        acl.put_binding(&binding("alice", "admin", BindingScope::Tenant));
        acl.put_binding(&binding("alice", "no-audit", BindingScope::Tenant));
        let audit = Resource::Subscription {
            topic: "orders.eu",
            name: "audit-1",
        };
        assert!(!permits(&acl, "alice", Action::Consume, audit));
        assert!(permits(&acl, "alice", Action::Describe, audit));
        assert!(permits(&acl, "alice", Action::Consume, SUB));
        assert!(!permits(
            &acl,
            "alice",
            Action::Publish,
            Resource::Topic("secret.x")
        ));
        assert!(permits(
            &acl,
            "alice",
            Action::Publish,
            Resource::Topic("secret")
        ));

        // Deleting the role (and the bindings listed with it) lifts the denies.
        acl.delete_role("default", "no-audit", &["alice".into()]);
        assert!(permits(&acl, "alice", Action::Consume, audit));
        assert_eq!(acl.bindings("default", Some("alice")).count(), 1);
    }

    #[test]
    fn changing_a_role_or_a_binding_recompiles_its_users() {
        let mut acl = AclSnapshot::default();
        let orders = |pattern: &str, kind| RoleRecord {
            tenant: "default".into(),
            name: "orders-writer".into(),
            permissions: vec![permission((
                Effect::Allow,
                &[Action::Publish],
                ResourceType::Topic,
                pattern,
                kind,
            ))],
            created_at_ms: 0,
        };
        acl.put_role(orders("orders", PatternType::Literal));
        acl.put_binding(&binding("bob", "orders-writer", BindingScope::Tenant));
        assert!(permits(
            &acl,
            "bob",
            Action::Publish,
            Resource::Topic("orders")
        ));
        assert!(!permits(
            &acl,
            "bob",
            Action::Publish,
            Resource::Topic("orders.eu")
        ));
        acl.put_role(orders("orders", PatternType::Prefix));
        assert!(permits(
            &acl,
            "bob",
            Action::Publish,
            Resource::Topic("orders.eu")
        ));
        acl.delete_binding("default", "bob", "orders-writer");
        assert!(acl.user("default", "bob").is_none());
        // Another tenant's user of the same name is someone else.
        assert!(acl.user("acme", "bob").is_none());
    }
}
