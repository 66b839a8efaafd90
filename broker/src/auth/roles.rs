//! Roles and their permissions (docs/adr/0004-security.md §6, docs/security.md): the four
//! built-in roles, present in every tenant and immutable, and the checks a custom role's
//! permissions pass before it is stored.

use std::fmt;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::Action;
use crate::error::{Error, Result};

/// Whether a matching permission allows or denies. A matching deny wins over any allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

/// What a permission's pattern names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    /// Topic names.
    Topic,
    /// `topic/subscription`.
    Subscription,
    /// The caller's tenant (no pattern).
    Tenant,
    /// The whole broker (no pattern); reached only through cluster-scope bindings.
    Cluster,
}

/// How a pattern matches names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatternType {
    Literal,
    /// Every name starting with the pattern (stored without a trailing `*`).
    Prefix,
    /// `*` matches any run of characters, `?` one character.
    Glob,
}

/// One rule of a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    pub effect: Effect,
    pub actions: Vec<Action>,
    pub resource: ResourceType,
    /// Empty for the tenant and the cluster.
    pub pattern: String,
    pub pattern_type: PatternType,
}

impl Permission {
    /// A permission on the tenant or the cluster (no pattern).
    fn on(effect: Effect, actions: &[Action], resource: ResourceType) -> Permission {
        Permission {
            effect,
            actions: actions.to_vec(),
            resource,
            pattern: String::new(),
            pattern_type: PatternType::Literal,
        }
    }

    /// A permission on every topic or every subscription.
    fn on_every(effect: Effect, actions: &[Action], resource: ResourceType) -> Permission {
        Permission {
            pattern_type: PatternType::Prefix,
            ..Permission::on(effect, actions, resource)
        }
    }

    /// Builds a permission from its parts as a request sent them (`pattern_type` may be left
    /// out on the tenant and the cluster), or says what is wrong with it: no actions, a
    /// pattern on the tenant or the cluster, none on a topic or subscription, or characters
    /// that no name can contain.
    pub fn new(
        effect: Effect,
        actions: Vec<Action>,
        resource: ResourceType,
        pattern: String,
        pattern_type: Option<PatternType>,
    ) -> Result<Permission> {
        let mut actions = actions;
        actions.sort_by_key(|a| *a as u8);
        actions.dedup();
        if actions.is_empty() {
            return Err(Error::invalid("a permission needs at least one action"));
        }
        let pattern_type = match resource {
            ResourceType::Tenant | ResourceType::Cluster => {
                if !pattern.is_empty() {
                    return Err(Error::invalid(format!(
                        "a permission on the {} takes no pattern (got `{}`)",
                        resource,
                        pattern.escape_debug()
                    )));
                }
                PatternType::Literal
            }
            ResourceType::Topic | ResourceType::Subscription => {
                let kind = pattern_type.ok_or_else(|| {
                    Error::invalid(format!(
                        "a permission on a {resource} needs a pattern type: literal, prefix or glob"
                    ))
                })?;
                check_pattern(resource, &pattern, kind)?;
                kind
            }
        };
        Ok(Permission {
            effect,
            actions,
            resource,
            pattern,
            pattern_type,
        })
    }

    /// Whether the permission names `action`.
    pub fn covers(&self, action: Action) -> bool {
        self.actions.contains(&action)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResourceType::Topic => "topic",
            ResourceType::Subscription => "subscription",
            ResourceType::Tenant => "tenant",
            ResourceType::Cluster => "cluster",
        })
    }
}

/// The longest pattern: a subscription's `topic/subscription`.
const MAX_PATTERN_LEN: usize = 2 * rapidmq_proto::MAX_NAME_LEN + 1;

/// A pattern can match something: name characters, a `/` between topic and subscription, and
/// wildcards only in globs.
fn check_pattern(resource: ResourceType, pattern: &str, kind: PatternType) -> Result<()> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "{resource} pattern `{}` ({}): {why}",
            pattern.escape_debug(),
            match kind {
                PatternType::Literal => "literal",
                PatternType::Prefix => "prefix",
                PatternType::Glob => "glob",
            }
        ))
    };
    if pattern.is_empty() && kind != PatternType::Prefix {
        return Err(bad(
            "it is empty (an empty prefix matches every name, as `*` does in a glob)",
        ));
    }
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(bad(&format!(
            "it is longer than {MAX_PATTERN_LEN} characters"
        )));
    }
    let wildcards = kind == PatternType::Glob;
    let slashes = resource == ResourceType::Subscription;
    if let Some(c) = pattern.chars().find(|&c| {
        !(c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '-')
            || (wildcards && matches!(c, '*' | '?'))
            || (slashes && c == '/'))
    }) {
        let why = match c {
            '*' | '?' => "only a glob has wildcards".to_string(),
            '/' => {
                "only a subscription pattern has a `/` (between topic and subscription)".to_string()
            }
            c => format!(
                "`{}` is in no name (names use [A-Za-z0-9._-])",
                c.escape_debug()
            ),
        };
        return Err(bad(&why));
    }
    if slashes && pattern.matches('/').count() > 1 {
        return Err(bad("it has more than one `/`"));
    }
    if slashes && kind == PatternType::Literal && !pattern.contains('/') {
        return Err(bad("a literal subscription is `topic/subscription`"));
    }
    Ok(())
}

/// The built-in roles' names, in the order they are listed.
pub const BUILTIN_ROLES: [&str; 4] = ["admin", "producer", "consumer", "viewer"];

/// The built-in role that makes a cluster admin when bound at cluster scope.
pub const ADMIN_ROLE: &str = "admin";

static BUILTINS: LazyLock<[Vec<Permission>; 4]> = LazyLock::new(|| {
    use Action::*;
    use Effect::Allow;
    use ResourceType::{Subscription, Tenant, Topic};
    let all = [Publish, Consume, Create, Delete, Alter, Describe, Admin];
    [
        vec![
            Permission::on_every(Allow, &all, Topic),
            Permission::on_every(Allow, &all, Subscription),
            Permission::on(Allow, &all, Tenant),
        ],
        vec![Permission::on_every(Allow, &[Publish, Describe], Topic)],
        vec![
            Permission::on_every(Allow, &[Consume, Describe], Topic),
            Permission::on_every(Allow, &[Consume, Create, Describe], Subscription),
        ],
        vec![
            Permission::on_every(Allow, &[Describe], Topic),
            Permission::on_every(Allow, &[Describe], Subscription),
            Permission::on(Allow, &[Describe], Tenant),
        ],
    ]
});

/// The permissions of a built-in role; `None` for any other name.
pub fn builtin(name: &str) -> Option<&'static [Permission]> {
    let i = BUILTIN_ROLES.iter().position(|&n| n == name)?;
    Some(&BUILTINS[i])
}

/// What `admin` adds when bound at cluster scope: everything on the cluster.
pub fn cluster_admin() -> Permission {
    Permission::on(Effect::Allow, &Action::ALL, ResourceType::Cluster)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(pattern: &str, kind: PatternType) -> Result<Permission> {
        Permission::new(
            Effect::Allow,
            vec![Action::Publish],
            ResourceType::Topic,
            pattern.into(),
            Some(kind),
        )
    }

    #[test]
    fn invalid_permissions_are_refused_with_a_reason() {
        let cases: Vec<(Result<Permission>, &str)> = vec![
            (
                Permission::new(
                    Effect::Allow,
                    vec![],
                    ResourceType::Topic,
                    "a".into(),
                    Some(PatternType::Literal),
                ),
                "at least one action",
            ),
            (
                Permission::new(
                    Effect::Allow,
                    vec![Action::Admin],
                    ResourceType::Tenant,
                    "a".into(),
                    None,
                ),
                "takes no pattern",
            ),
            (
                Permission::new(
                    Effect::Allow,
                    vec![Action::Admin],
                    ResourceType::Topic,
                    "a".into(),
                    None,
                ),
                "needs a pattern type",
            ),
            (topic("", PatternType::Literal), "it is empty"),
            (topic("a*", PatternType::Literal), "only a glob"),
            (topic("a*", PatternType::Prefix), "only a glob"),
            (topic("a/b", PatternType::Glob), "only a subscription"),
            (topic("a b", PatternType::Glob), "is in no name"),
            (topic(&"a".repeat(402), PatternType::Prefix), "longer than"),
            (
                Permission::new(
                    Effect::Deny,
                    vec![Action::Consume],
                    ResourceType::Subscription,
                    "orders".into(),
                    Some(PatternType::Literal),
                ),
                "topic/subscription",
            ),
            (
                Permission::new(
                    Effect::Deny,
                    vec![Action::Consume],
                    ResourceType::Subscription,
                    "a/b/c".into(),
                    Some(PatternType::Glob),
                ),
                "more than one",
            ),
        ];
        for (result, says) in cases {
            let err = result.unwrap_err();
            assert_eq!(err.code(), rapidmq_proto::ErrorCode::InvalidArgument);
            assert!(err.message().contains(says), "{err}: not `{says}`");
        }
    }

    #[test]
    fn valid_permissions_are_normalised() {
        let p = Permission::new(
            Effect::Allow,
            vec![Action::Describe, Action::Publish, Action::Describe],
            ResourceType::Tenant,
            String::new(),
            None,
        )
        .unwrap();
        assert_eq!(p.actions, [Action::Publish, Action::Describe]);
        assert_eq!(p.pattern_type, PatternType::Literal);
        topic("", PatternType::Prefix).unwrap();
        topic("orders.*.eu-?", PatternType::Glob).unwrap();
        Permission::new(
            Effect::Deny,
            vec![Action::Consume],
            ResourceType::Subscription,
            "orders.*/audit-*".into(),
            Some(PatternType::Glob),
        )
        .unwrap();
    }

    #[test]
    fn the_builtin_roles_are_the_documented_ones() {
        assert!(
            builtin("admin")
                .unwrap()
                .iter()
                .all(|p| p.actions.len() == 7)
        );
        assert_eq!(
            builtin("producer").unwrap()[0].actions,
            [Action::Publish, Action::Describe]
        );
        assert!(builtin("editor").is_none());
    }
}
