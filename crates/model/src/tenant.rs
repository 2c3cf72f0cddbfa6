use std::fmt;
use std::sync::Arc;

/// The tenant used when a request names none.
pub const DEFAULT_TENANT: &str = "single-tenant";

/// Longest accepted tenant id (the same bound Tempo and Mimir use).
const MAX_TENANT_LEN: usize = 150;

/// A validated tenant id. Cheap to clone: batches and stored items all carry one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant(Arc<str>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantError {
    #[error("tenant id is empty")]
    Empty,
    #[error("tenant id is longer than {MAX_TENANT_LEN} characters")]
    TooLong,
    #[error("tenant id may not be '.' or '..'")]
    Dots,
    #[error("tenant id contains {0:?}; allowed are letters, digits and ! - _ . * ' ( )")]
    BadCharacter(char),
}

impl Tenant {
    /// Parses a tenant id as sent in `X-Scope-OrgID`: letters, digits and `! - _ . * ' ( )`, like Tempo.
    pub fn parse(id: &str) -> Result<Self, TenantError> {
        if id.is_empty() {
            return Err(TenantError::Empty);
        }
        if id.len() > MAX_TENANT_LEN {
            return Err(TenantError::TooLong);
        }
        if id == "." || id == ".." {
            return Err(TenantError::Dots);
        }
        if let Some(bad) = id.chars().find(|c| !(c.is_ascii_alphanumeric() || "!-_.*'()".contains(*c))) {
            return Err(TenantError::BadCharacter(bad));
        }
        Ok(Self(Arc::from(id)))
    }

    /// The tenant of requests that name none.
    pub fn default_tenant() -> Self {
        Self(Arc::from(DEFAULT_TENANT))
    }

    /// Reads an optional header value: absent means the default tenant.
    pub fn from_header(value: Option<&str>) -> Result<Self, TenantError> {
        match value {
            None => Ok(Self::default_tenant()),
            Some(v) => Self::parse(v.trim()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Tenant {
    fn default() -> Self {
        Self::default_tenant()
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tenant({})", &self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_tempo_style_ids() {
        for id in ["single-tenant", "team_a", "a.b", "x!*'()-_", "A1"] {
            assert_eq!(Tenant::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!(Tenant::parse(""), Err(TenantError::Empty));
        assert_eq!(Tenant::parse(".."), Err(TenantError::Dots));
        assert_eq!(Tenant::parse("a/b"), Err(TenantError::BadCharacter('/')));
        assert_eq!(Tenant::parse("a|b"), Err(TenantError::BadCharacter('|')));
        assert_eq!(Tenant::parse(&"x".repeat(151)), Err(TenantError::TooLong));
    }

    #[test]
    fn absent_header_is_default_tenant() {
        assert_eq!(Tenant::from_header(None).unwrap().as_str(), DEFAULT_TENANT);
    }
}
