//! Roles, their permissions and their bindings to users, as the admin API manages them
//! (docs/security.md).
//!
//! A [`Permission`] has a one-line text form, which the CLI takes and every SDK passes through
//! as a string, so that no binding mirrors the structure:
//!
//! ```text
//! allow publish,describe topic:orders.*
//! deny consume subscription:orders.*/audit-*
//! allow describe tenant
//! allow all topic:*
//! ```
//!
//! The effect, then the actions (comma-separated, or `all`), then the resource: `topic:` or
//! `subscription:` with a name pattern (`topic/subscription` for subscriptions), or `tenant` /
//! `cluster` alone. A pattern is literal without wildcards, a prefix when its only wildcard is
//! one trailing `*`, and a glob (`*` any run of characters, `?` one) otherwise.

use std::fmt;
use std::str::FromStr;

use rapidmq_proto::v1;

use crate::error::{Error, Result};

/// What a permission allows or denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Publish,
    Consume,
    Create,
    Delete,
    Alter,
    Describe,
    /// Users, tokens, roles and bindings (on the tenant); tenants and quotas (on the cluster).
    Admin,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Publish,
        Action::Consume,
        Action::Create,
        Action::Delete,
        Action::Alter,
        Action::Describe,
        Action::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Consume => "consume",
            Action::Create => "create",
            Action::Delete => "delete",
            Action::Alter => "alter",
            Action::Describe => "describe",
            Action::Admin => "admin",
        }
    }
}

impl FromStr for Action {
    type Err = Error;

    fn from_str(s: &str) -> Result<Action> {
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown action `{s}`: one of publish, consume, create, delete, alter, describe, admin (or all)"
                ))
            })
    }
}

/// Whether a matching permission allows or denies. A matching deny wins over any allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// What a permission's pattern names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    /// Topic names.
    Topic,
    /// `topic/subscription`.
    Subscription,
    /// The caller's tenant (no pattern).
    Tenant,
    /// The whole broker (no pattern); reached only by roles bound at cluster scope.
    Cluster,
}

/// How a pattern matches names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternType {
    Literal,
    Prefix,
    /// `*` matches any run of characters, `?` one character.
    Glob,
}

/// One rule of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub effect: Effect,
    pub actions: Vec<Action>,
    pub resource: ResourceType,
    /// Empty for the tenant and the cluster; for a prefix, without the trailing `*`.
    pub pattern: String,
    pub pattern_type: PatternType,
}

impl FromStr for Permission {
    type Err = Error;

    fn from_str(text: &str) -> Result<Permission> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "permission `{text}`: {why} (expected `allow|deny ACTIONS RESOURCE`, e.g. `allow publish,describe topic:orders.*`)"
            ))
        };
        let words: Vec<&str> = text.split_whitespace().collect();
        let [effect, actions, resource] = words[..] else {
            return Err(bad("three words"));
        };
        let effect = match effect {
            "allow" => Effect::Allow,
            "deny" => Effect::Deny,
            _ => return Err(bad("it starts with allow or deny")),
        };
        let actions = if actions == "all" || actions == "*" {
            Action::ALL.to_vec()
        } else {
            actions
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<Action>>>()?
        };
        let (resource, pattern) = match resource.split_once(':') {
            Some(("topic", pattern)) => (ResourceType::Topic, pattern),
            Some(("subscription", pattern)) => (ResourceType::Subscription, pattern),
            None if resource == "tenant" => (ResourceType::Tenant, ""),
            None if resource == "cluster" => (ResourceType::Cluster, ""),
            _ => {
                return Err(bad(
                    "the resource is topic:PATTERN, subscription:TOPIC/SUB, tenant or cluster",
                ));
            }
        };
        let named = matches!(resource, ResourceType::Topic | ResourceType::Subscription);
        if named && pattern.is_empty() {
            return Err(bad("the pattern is empty (use * for every name)"));
        }
        if resource == ResourceType::Subscription && !pattern.contains('/') && pattern != "*" {
            return Err(bad("a subscription pattern is TOPIC/SUBSCRIPTION"));
        }
        let (pattern, pattern_type) = classify(pattern);
        Ok(Permission {
            effect,
            actions,
            resource,
            pattern,
            pattern_type,
        })
    }
}

/// Literal, prefix (one trailing `*`, dropped) or glob.
fn classify(pattern: &str) -> (String, PatternType) {
    let wild = |c: char| c == '*' || c == '?';
    match pattern.strip_suffix('*') {
        Some(stem) if !stem.contains(wild) => (stem.to_string(), PatternType::Prefix),
        _ if pattern.contains(wild) => (pattern.to_string(), PatternType::Glob),
        _ => (pattern.to_string(), PatternType::Literal),
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let effect = match self.effect {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        };
        let actions = if Action::ALL.iter().all(|a| self.actions.contains(a)) {
            "all".to_string()
        } else {
            let names: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
            names.join(",")
        };
        let star = if self.pattern_type == PatternType::Prefix {
            "*"
        } else {
            ""
        };
        match self.resource {
            ResourceType::Topic => write!(f, "{effect} {actions} topic:{}{star}", self.pattern),
            ResourceType::Subscription => {
                write!(f, "{effect} {actions} subscription:{}{star}", self.pattern)
            }
            ResourceType::Tenant => write!(f, "{effect} {actions} tenant"),
            ResourceType::Cluster => write!(f, "{effect} {actions} cluster"),
        }
    }
}

/// A role: built-in (admin, producer, consumer, viewer) or custom to the tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    /// Built-in roles cannot be changed or deleted.
    pub builtin: bool,
    pub permissions: Vec<Permission>,
}

/// Where a bound role applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BindingScope {
    /// In the user's tenant.
    #[default]
    Tenant,
    /// Across the broker (`admin` at cluster scope is a cluster admin).
    Cluster,
}

impl BindingScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingScope::Tenant => "tenant",
            BindingScope::Cluster => "cluster",
        }
    }
}

impl FromStr for BindingScope {
    type Err = Error;

    fn from_str(s: &str) -> Result<BindingScope> {
        match s {
            "" | "tenant" => Ok(BindingScope::Tenant),
            "cluster" => Ok(BindingScope::Cluster),
            _ => Err(Error::invalid(format!(
                "unknown binding scope `{s}`: tenant or cluster"
            ))),
        }
    }
}

/// A role bound to a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleBinding {
    pub tenant: String,
    pub user: String,
    pub role: String,
    pub scope: BindingScope,
}

impl From<Action> for v1::Action {
    fn from(a: Action) -> v1::Action {
        match a {
            Action::Publish => v1::Action::Publish,
            Action::Consume => v1::Action::Consume,
            Action::Create => v1::Action::Create,
            Action::Delete => v1::Action::Delete,
            Action::Alter => v1::Action::Alter,
            Action::Describe => v1::Action::Describe,
            Action::Admin => v1::Action::Admin,
        }
    }
}

impl From<&Permission> for v1::Permission {
    fn from(p: &Permission) -> v1::Permission {
        v1::Permission {
            effect: match p.effect {
                Effect::Allow => v1::Effect::Allow,
                Effect::Deny => v1::Effect::Deny,
            } as i32,
            actions: p
                .actions
                .iter()
                .map(|&a| v1::Action::from(a) as i32)
                .collect(),
            resource: match p.resource {
                ResourceType::Topic => v1::ResourceType::Topic,
                ResourceType::Subscription => v1::ResourceType::Subscription,
                ResourceType::Tenant => v1::ResourceType::Tenant,
                ResourceType::Cluster => v1::ResourceType::Cluster,
            } as i32,
            pattern: p.pattern.clone(),
            pattern_type: match p.pattern_type {
                PatternType::Literal => v1::PatternType::Literal,
                PatternType::Prefix => v1::PatternType::Prefix,
                PatternType::Glob => v1::PatternType::Glob,
            } as i32,
        }
    }
}

impl TryFrom<v1::Permission> for Permission {
    type Error = Error;

    fn try_from(p: v1::Permission) -> Result<Permission> {
        let unknown = |what: &str| Error::invalid(format!("the broker sent an unknown {what}"));
        let actions = p
            .actions()
            .map(|a| match a {
                v1::Action::Publish => Ok(Action::Publish),
                v1::Action::Consume => Ok(Action::Consume),
                v1::Action::Create => Ok(Action::Create),
                v1::Action::Delete => Ok(Action::Delete),
                v1::Action::Alter => Ok(Action::Alter),
                v1::Action::Describe => Ok(Action::Describe),
                v1::Action::Admin => Ok(Action::Admin),
                v1::Action::Unspecified => Err(unknown("action")),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Permission {
            effect: match p.effect() {
                v1::Effect::Allow => Effect::Allow,
                v1::Effect::Deny => Effect::Deny,
                v1::Effect::Unspecified => return Err(unknown("effect")),
            },
            actions,
            resource: match p.resource() {
                v1::ResourceType::Topic => ResourceType::Topic,
                v1::ResourceType::Subscription => ResourceType::Subscription,
                v1::ResourceType::Tenant => ResourceType::Tenant,
                v1::ResourceType::Cluster => ResourceType::Cluster,
                v1::ResourceType::Unspecified => return Err(unknown("resource type")),
            },
            pattern_type: match p.pattern_type() {
                v1::PatternType::Literal => PatternType::Literal,
                v1::PatternType::Prefix => PatternType::Prefix,
                v1::PatternType::Glob => PatternType::Glob,
                v1::PatternType::Unspecified => return Err(unknown("pattern type")),
            },
            pattern: p.pattern,
        })
    }
}

impl TryFrom<v1::RoleInfo> for RoleInfo {
    type Error = Error;

    fn try_from(r: v1::RoleInfo) -> Result<RoleInfo> {
        Ok(RoleInfo {
            name: r.name,
            builtin: r.builtin,
            permissions: r
                .permissions
                .into_iter()
                .map(Permission::try_from)
                .collect::<Result<_>>()?,
        })
    }
}

impl From<BindingScope> for v1::BindingScope {
    fn from(s: BindingScope) -> v1::BindingScope {
        match s {
            BindingScope::Tenant => v1::BindingScope::Tenant,
            BindingScope::Cluster => v1::BindingScope::Cluster,
        }
    }
}

impl From<v1::RoleBinding> for RoleBinding {
    fn from(b: v1::RoleBinding) -> RoleBinding {
        RoleBinding {
            scope: match b.scope() {
                v1::BindingScope::Cluster => BindingScope::Cluster,
                v1::BindingScope::Tenant | v1::BindingScope::Unspecified => BindingScope::Tenant,
            },
            tenant: b.tenant,
            user: b.user,
            role: b.role,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips_and_infers_the_pattern_type() {
        for (text, pattern, kind) in [
            (
                "allow publish,describe topic:orders",
                "orders",
                PatternType::Literal,
            ),
            (
                "allow consume topic:orders.*",
                "orders.",
                PatternType::Prefix,
            ),
            (
                "deny consume subscription:orders.*/audit-*",
                "orders.*/audit-*",
                PatternType::Glob,
            ),
            ("allow all topic:*", "", PatternType::Prefix),
            ("allow describe,admin tenant", "", PatternType::Literal),
            ("allow admin cluster", "", PatternType::Literal),
            ("allow describe topic:log-??", "log-??", PatternType::Glob),
        ] {
            let p: Permission = text.parse().unwrap();
            assert_eq!(
                (p.pattern.as_str(), p.pattern_type),
                (pattern, kind),
                "{text}"
            );
            assert_eq!(p.to_string(), text);
            let wire = v1::Permission::from(&p);
            assert_eq!(Permission::try_from(wire).unwrap(), p);
        }
    }

    #[test]
    fn bad_permissions_say_what_is_wrong() {
        for (text, says) in [
            ("allow publish", "three words"),
            ("permit publish topic:a", "allow or deny"),
            ("allow publsh topic:a", "unknown action `publsh`"),
            ("allow publish queue:a", "the resource is"),
            ("allow publish topic:", "the pattern is empty"),
            ("allow consume subscription:orders", "TOPIC/SUBSCRIPTION"),
        ] {
            let err = text.parse::<Permission>().unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
    }
}
