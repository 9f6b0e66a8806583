//! Authentication: bearer tokens mapped to identities.
//!
//! Three kinds of identity: the admin (group `system:masters`, never
//! checked by RBAC), ServiceAccounts (`system:serviceaccount:NS:NAME`,
//! groups `system:serviceaccounts`, `system:serviceaccounts:NS`,
//! `system:authenticated`), and the system identity the controllers use
//! (exempt from RBAC and from fault injection).

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use rand::Rng as _;

/// Who is making a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// User name, e.g. `system:serviceaccount:ns:sa`.
    pub user: String,
    /// Groups, e.g. `system:masters`.
    pub groups: Vec<String>,
    /// The controllers' identity: no RBAC, no faults.
    pub system: bool,
}

impl Identity {
    /// Whether RBAC is bypassed (system identity or `system:masters`).
    pub fn is_superuser(&self) -> bool {
        self.system || self.groups.iter().any(|g| g == "system:masters")
    }
}

/// The token table.
#[derive(Debug)]
pub struct Tokens {
    admin: String,
    system: String,
    map: RwLock<HashMap<String, Identity>>,
}

impl Default for Tokens {
    fn default() -> Self {
        Self::new()
    }
}

impl Tokens {
    /// Fresh random admin and system tokens.
    pub fn new() -> Self {
        let admin = format!("sandbox-admin-{}", random_hex());
        let system = format!("sandbox-system-{}", random_hex());
        let mut map = HashMap::new();
        map.insert(
            admin.clone(),
            Identity {
                user: "sandbox-admin".into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
                system: false,
            },
        );
        map.insert(
            system.clone(),
            Identity {
                user: "system:dbops-sandbox-controllers".into(),
                groups: vec!["system:masters".into(), "system:authenticated".into()],
                system: true,
            },
        );
        Self {
            admin,
            system,
            map: RwLock::new(map),
        }
    }

    /// The admin token (`system:masters`).
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// The controllers' token.
    pub fn system(&self) -> &str {
        &self.system
    }

    /// The identity of a bearer token.
    pub fn authenticate(&self, token: &str) -> Option<Identity> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    }

    /// The token of ServiceAccount `namespace/name` (the same token on every
    /// call).
    pub fn service_account(&self, namespace: &str, name: &str) -> String {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let mut map = self.map.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((token, _)) = map.iter().find(|(_, id)| id.user == user) {
            return token.clone();
        }
        let token = format!("sandbox-sa-{namespace}-{name}-{}", random_hex());
        let groups = vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{namespace}"),
            "system:authenticated".into(),
        ];
        map.insert(
            token.clone(),
            Identity {
                user,
                groups,
                system: false,
            },
        );
        token
    }

    /// A token for any user name and groups (for tests of RBAC by user or
    /// group subjects).
    pub fn user(&self, user: &str, groups: &[&str]) -> String {
        let token = format!("sandbox-user-{}", random_hex());
        let mut groups: Vec<String> = groups.iter().map(|g| (*g).to_string()).collect();
        groups.push("system:authenticated".into());
        let id = Identity {
            user: user.into(),
            groups,
            system: false,
        };
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), id);
        token
    }
}

fn random_hex() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_tokens_are_stable_and_map_to_the_account() {
        let t = Tokens::new();
        let a = t.service_account("ns", "deploy");
        assert_eq!(a, t.service_account("ns", "deploy"));
        let id = t.authenticate(&a).expect("known token");
        assert_eq!(id.user, "system:serviceaccount:ns:deploy");
        assert!(!id.is_superuser());
        assert!(t.authenticate(t.admin()).expect("admin").is_superuser());
        assert!(t.authenticate("nope").is_none());
    }
}
